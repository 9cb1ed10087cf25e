"""Planning a published release's SMS broadcast (issue 17): the intents it takes and its mark, in one transaction.

Who is reached is decided by handlers/incidents/broadcast.py: an actual release, the subscribers of its areas (read
from store/subscriptions.py now); an exercise release, the live participants of the drill its incident belongs to
and nobody else. `plan_broadcast` then writes those intents into the notification ledger and the release's
`release_broadcasts` row together: a second planner (another worker, a restart, a replayed message) meets the row
and plans nothing, so a broadcast is planned once and each number gets at most one SMS of a release.
"""

from collections.abc import Iterable
from datetime import datetime

from pingan.handlers.incidents.broadcast import (
    participant_intents,
    release_area_codes,
    subscriber_intents,
    wants_delivery,
    wants_sms,
    webhook_intents,
)
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.areas import District
from pingan.schemas.common import utcnow
from pingan.schemas.directory import Person
from pingan.schemas.notification import Channel, Notification
from pingan.schemas.release import Release, ReleaseState
from pingan.store.drills import DrillStore
from pingan.store.repository import Store
from pingan.store.subscriptions import SubscriptionStore

ACTOR = "system:broadcast"


def broadcast_intents(store: Store, release: Release, district: District, people: Iterable[Person],
                      live_override: frozenset[str] | None = None, now: datetime | None = None,
                      webhooks: Iterable[str] = (), cap_url: str | None = None) -> list[Notification]:
    """The intents the release's broadcast takes now: its SMS (subscribers, or a drill's live participants) and
    its signed webhooks (`webhooks`: the receivers' URLs); none for a release not published."""
    now = now or utcnow()
    if release.state is not ReleaseState.published or not wants_delivery(release):
        return []
    hooks = webhook_intents(release, webhooks, cap_url, now)
    if not wants_sms(release):
        return hooks
    if not release.is_exercise:
        return subscriber_intents(release, district, SubscriptionStore(store).subscribers(), now) + hooks
    incident = store.get_incident(release.incident_id)
    run = incident.labels.get("drill_run") if incident is not None else None
    # As the notifier reads them (streams/stages._live_for): the operator's list, else the run's registration.
    live = live_override if live_override is not None else DrillStore(store).live_participants(run)
    return participant_intents(release, people, live, run, now)


def plan_broadcast(store: Store, release: Release, district: District, people: Iterable[Person],
                   live_override: frozenset[str] | None = None, now: datetime | None = None,
                   webhooks: Iterable[str] = (), cap_url: str | None = None) -> list[Notification] | None:
    """Plan the release's broadcast once: its intents, or None when it was planned already (nothing written).
    One log entry says what was planned; the public's numbers stay out of the log (the ledger keeps each SMS)."""
    now = now or utcnow()
    intents = broadcast_intents(store, release, district, people, live_override, now, webhooks, cap_url)
    sms = [n for n in intents if n.channel is Channel.twilio_sms]
    codes = release_area_codes(release, district)
    draft = ActionDraft(
        incident_id=release.incident_id, at=now, actor=ACTOR, kind=ActionKind.release_broadcast,
        idempotency_key=f"release_broadcast:{release.id}"[:200], details={
            "release": release.id, "sms": len(sms), "webhooks": len(intents) - len(sms),
            "to": "drill live participants" if release.is_exercise else "subscribers",
            "areas": "all" if codes is None else sorted(codes)})
    if not SubscriptionStore(store).plan(release.id, release.incident_id, intents, [draft]):
        return None
    return intents

"""The worker's broadcast job (issue 17): published releases with an SMS broadcast or the webhook channel not yet
planned are planned, and their intents go to the notifications topic like a plan's, to the concurrent notifier
(streams/notifier.py: throttled per sender number, 429-aware, exactly one claim per intent). The webhook's go to
each receiver of PINGAN_RELEASE_WEBHOOKS, signed with its own secret, at least once with one Idempotency-Key.

It runs on the escalation scheduler's sweep thread (streams/scheduler.py), at most every INTERVAL_S. Each release
is planned in one transaction with its mark (store/release_broadcast.py), so two workers, a restart between the
commit and the publish, or a replay never plan one twice; an intent whose message is lost after the commit is
re-published by the scheduler's retries like any other `intended` row.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from pingan.bootstrap import Services
from pingan.handlers.incidents.broadcast import wants_delivery
from pingan.schemas.areas import District, district_from_geojson
from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification
from pingan.schemas.release import Release
from pingan.settings import Settings
from pingan.store.release_broadcast import plan_broadcast
from pingan.store.repository import Store
from pingan.store.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)
INTERVAL_S = 2.0

ReleaseSource = Callable[[Store, datetime], list[Release]]


def published_releases(store: Store, since: datetime) -> list[Release]:
    """Releases published since `since`, exercise ones included (those reach a drill's live participants only)."""
    from pingan.store.releases import list_published

    return list_published(store, since=since, include_exercise=True)


def cap_url(settings: Settings, release: Release) -> str | None:
    """Where the release's CAP alert is served (web/public.py), when the public address is known."""
    if not settings.public_url or not release.cap_identifier:
        return None
    return f"{settings.public_url.rstrip('/')}/public/cap/{quote(release.cap_identifier, safe='')}.xml"


def _district(services: Services) -> District:
    if services.areas is not None:
        return services.areas.district
    path: Path = services.settings.district_areas
    return district_from_geojson(path.read_text(encoding="utf-8"), str(path))


class Broadcaster:
    def __init__(self, services: Services, releases: ReleaseSource = published_releases,
                 interval_s: float = INTERVAL_S) -> None:
        self.services = services
        self.releases = releases
        self.interval_s = interval_s
        self.subs = SubscriptionStore(services.store)
        self.last = 0.0
        self.planned = 0  # releases this worker planned, since start
        self._district: District | None = None

    def due(self, force: bool = False) -> list[Notification]:
        """Plan every published release whose broadcast is not planned yet; the intents planned now."""
        if not force and time.monotonic() - self.last < self.interval_s:
            return []
        self.last = time.monotonic()
        store = self.services.store
        # Only releases whose CAP alert has not expired (PINGAN_CAP_EXPIRES_H): a worker that was down for days, or
        # the first start of this feature, must not text the public an old warning or all-clear.
        since = utcnow() - timedelta(hours=self.services.settings.cap_expires_h)
        try:
            wanted = [r for r in self.releases(store, since) if wants_delivery(r)]
            done = self.subs.planned([r.id for r in wanted])
        except Exception:  # the sweep's retries go out all the same
            log.exception("published releases could not be read; their broadcasts wait for the next sweep")
            return []
        out: list[Notification] = []
        for release in wanted:
            if release.id in done:
                continue
            try:
                intents = self._plan(release)
            except Exception:  # one release that cannot be planned must not hold the others, nor the sweep's retries
                log.exception("release %s: its broadcast could not be planned; tried again on the next sweep",
                              release.id)
                continue
            if intents is None:
                continue  # another worker planned it first
            self.planned += 1
            log.info("release %s: SMS broadcast planned, %d message(s)%s", release.id, len(intents),
                     " (exercise: live participants only)" if release.is_exercise else "")
            out += intents
        return out

    def _plan(self, release: Release) -> list[Notification] | None:
        if self._district is None:
            self._district = _district(self.services)
        settings = self.services.settings
        people = self.services.plans.directory.people.values()
        return plan_broadcast(self.services.store, release, self._district, people, settings.live_participants,
                              webhooks=settings.release_webhook_targets, cap_url=cap_url(settings, release))

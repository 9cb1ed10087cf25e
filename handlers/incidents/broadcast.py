"""The SMS broadcast of a published release (issue 17): which subscribers it reaches and the one intent each gets.
Pure: a Release, the district and the subscriptions in, ledger intents (schemas/notification.py) out.

- Areas. A release's areas (CAP areas: names, geocodes) are read as district areas by code (a geocode equal to or
  below an area's code) or by name (a name or alias of the area). A subscriber is reached when their area and one
  of the release's are on one line of the district's tree: a subscription to the town covers a release for one of
  its communities, and a release for the town reaches the subscribers of its communities. A release with no area,
  or naming the whole district or an area enclosing it (the city, the province), reaches every subscriber.
  Polygons and circles are not read here: the release workflow names areas.
- Exercise releases never reach subscribers: their intents go to the drill's live participants only, and the
  notifier's sandbox rule (streams/stages.channel_for) checks that again at send time.
- One intent per phone number and release, keyed `release:<release id>:sms:<phone>`, so a replayed or repeated
  planning writes nothing new (the ledger's key is unique).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pingan.handlers.incidents.subscriptions import ALL_AREAS
from pingan.schemas.areas import AlertArea, District
from pingan.schemas.directory import Person
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.release import Release, ReleaseChannel

PLAN_ID = "release"  # the ledger's plan id for release traffic (a release is not a plan step)
STEP_PREFIX = "release:"  # Notification.step of a broadcast: release:<release id>
SUBSCRIBER_PREFIX = "subscriber:"  # Recipient.id of a public subscriber (a person of the directory has their id)
MAX_SMS = 1600  # Twilio's limit for one message body (it splits it into segments)
KEY_MAX = 64  # the ledger's key column


@dataclass(frozen=True)
class Subscriber:
    phone: str
    area_codes: frozenset[str]
    lang: str = "zh"


def broadcast_key(release_id: str, phone: str, kind: str = "sms") -> str:
    """`release:<release id>:sms:<phone>` (a webhook's: `release:<release id>:webhook:<hash of its URL>`); a release
    id too long for the ledger's key is shortened to its hash."""
    key = f"release:{release_id}:{kind}:{phone}"
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(release_id.encode()).hexdigest()[:16]
    return f"release:{digest}:{kind}:{phone}"[:KEY_MAX]


def webhook_key(release_id: str, url: str) -> str:
    return broadcast_key(release_id, hashlib.sha256(url.encode()).hexdigest()[:12], "webhook")


def is_broadcast(n: Notification) -> bool:
    return n.step.startswith(STEP_PREFIX)


def is_public(n: Notification) -> bool:
    """A broadcast to a public subscriber (not a drill's participant): unsubscribing stops it until it is sent."""
    return is_broadcast(n) and n.recipient.id.startswith(SUBSCRIBER_PREFIX)


def wants_sms(release: Release) -> bool:
    return ReleaseChannel.sms_broadcast in release.channels


def wants_delivery(release: Release) -> bool:
    """A release the broadcast job plans: an SMS broadcast, or (actual releases) the signed webhook."""
    return wants_sms(release) or (ReleaseChannel.webhook in release.channels and not release.is_exercise)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def release_area_codes(release: Release, district: District) -> frozenset[str] | None:
    """The district area codes a release concerns, or None for the whole district (every subscriber)."""
    areas = [a for a in release.areas if not a.is_empty()]
    if not areas:
        return None
    codes: set[str] = set()
    for area in areas:
        matched = _codes_of(area, district)
        if matched is None:
            return None
        codes |= matched
    return frozenset(codes)


def _codes_of(area: AlertArea, district: District) -> set[str] | None:
    enclosing_codes = {e.code for e in district.enclosing if e.code}
    enclosing_names = {_fold(n) for e in district.enclosing for n in e.names}
    found: set[str] = set()
    for geocode in area.geocodes:
        value = geocode.value.strip()
        if value in enclosing_codes or any(a.code.startswith(value) and a.parent not in
                                           {b.code for b in district.areas} for a in district.areas):
            return None  # the whole district, or a code above its top area
        below = [a.code for a in district.areas if value.startswith(a.code)]
        if below:
            found.add(max(below, key=len))  # the most specific area whose code the geocode falls under
    if area.name:
        for part in _parts(area.name):
            if part in enclosing_names or part == _fold(district.name):
                return None
            found |= {a.code for a in district.areas if part in {_fold(n) for n in a.names()}}
    return found


def _parts(name: str) -> list[str]:
    """A CAP areaDesc may list several places: 唐家社区、鸡山社区 / Tangjia, Jishan."""
    for sep in ("、", "，", ",", ";", "；", "/"):
        name = name.replace(sep, "\n")
    return [p for p in (_fold(x) for x in name.splitlines()) if p]


def _lineage(district: District) -> dict[str, set[str]]:
    """Each area's code -> itself and every area above it."""
    by_code = {a.code: a for a in district.areas}
    out: dict[str, set[str]] = {}
    for area in district.areas:
        up, parent = {area.code}, area.parent
        while parent in by_code and parent not in up:
            up.add(parent)
            parent = by_code[parent].parent
        out[area.code] = up
    return out


def reached(release_codes: frozenset[str] | None, subscribed: Iterable[str], district: District) -> bool:
    """Whether a subscription to `subscribed` areas covers a release for `release_codes` (None: everywhere)."""
    subscribed = set(subscribed) - {ALL_AREAS}
    if release_codes is None:
        return bool(subscribed)
    lineage = _lineage(district)
    for mine in subscribed:
        for theirs in release_codes:
            if mine in lineage.get(theirs, {theirs}) or theirs in lineage.get(mine, {mine}):
                return True
    return False


def sms_text(release: Release, lang: str, public: bool = True) -> str:
    """The SMS: 【平安】 headline, description and instruction in the reader's language, marked 演练 / DRILL for an
    exercise, with how to unsubscribe for the public."""
    texts = release.texts
    parts = [texts.headline.pick(lang), texts.description.pick(lang)]
    if texts.instruction is not None:
        parts.append(texts.instruction.pick(lang))
    if lang == "en":
        head, foot = "[Pingan] ", " Reply STOP to unsubscribe."
        mark = "[DRILL] "
    else:
        head, foot = "【平安】", "回复TD退订。"
        mark = "【演练】"
    body = (" " if lang == "en" else "").join(p.strip() for p in parts if p.strip())
    if release.is_exercise and mark.strip("[]【】 ") not in body[:40]:
        head += mark
    tail = foot if public else ""
    room = MAX_SMS - len(head) - len(tail)
    if len(body) > room:
        body = body[: room - 1] + "…"
    return head + body + tail


def subscriber_intents(release: Release, district: District, subscribers: Iterable[Subscriber],
                       now: datetime) -> list[Notification]:
    """One intent per subscriber the release reaches (an actual release only; an exercise reaches nobody here)."""
    if release.is_exercise or not wants_sms(release):
        return []
    codes = release_area_codes(release, district)
    out: dict[str, Notification] = {}
    for sub in subscribers:
        if sub.phone in out or not reached(codes, sub.area_codes, district):
            continue
        lang = sub.lang if sub.lang in ("zh", "en") else "zh"
        out[sub.phone] = _intent(release, Recipient(
            id=f"{SUBSCRIBER_PREFIX}{sub.phone}"[:100], name="订阅用户 subscriber", channel=Channel.twilio_sms,
            address=sub.phone, lang=lang), sms_text(release, lang), now, None)
    return list(out.values())


def participant_intents(release: Release, people: Iterable[Person], live: frozenset[str] | None,
                        drill_run: str | None, now: datetime) -> list[Notification]:
    """An exercise release's intents: one per live participant of its drill with a mobile number, none else."""
    if not release.is_exercise or not wants_sms(release) or not live:
        return []
    out: dict[str, Notification] = {}
    for person in people:
        phone = person.contacts.sms
        if person.id not in live or phone is None or phone in out:
            continue
        out[phone] = _intent(release, Recipient(id=person.id, name=person.name, channel=Channel.twilio_sms,
                                                address=phone, lang=person.lang),
                             sms_text(release, person.lang, public=False), now, drill_run)
    return list(out.values())


def _intent(release: Release, recipient: Recipient, text: str, now: datetime, drill_run: str | None) -> Notification:
    return Notification(
        idempotency_key=broadcast_key(release.id, recipient.address), incident_id=release.incident_id,
        incident_status=release.status, plan_id=release.plan_id or PLAN_ID, plan_version=release.revision,
        step=f"{STEP_PREFIX}{release.id}"[:200], recipient=recipient, channel=Channel.twilio_sms, text=text,
        created_at=now, drill_run=drill_run)


def release_document(release: Release, cap_url: str | None) -> dict[str, object]:
    """What the release webhook carries: the release as published, and its CAP alert's identifier and URL."""
    return {"type": "pingan.release", "release": release.model_dump(mode="json"),
            "cap": {"identifier": release.cap_identifier, "url": cap_url}}


def webhook_intents(release: Release, urls: Iterable[str], cap_url: str | None, now: datetime) -> list[Notification]:
    """One signed webhook per configured receiver for an actual release naming the webhook channel; an exercise
    release leaves the sandbox for nobody but a drill's live participants, so never by webhook."""
    if release.is_exercise or ReleaseChannel.webhook not in release.channels:
        return []
    document = release_document(release, cap_url)
    out = []
    for url in dict.fromkeys(urls):
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        n = _intent(release, Recipient(id=f"release-webhook:{digest}", name=url[:200], channel=Channel.webhook,
                                       address=url[:200]), release.texts.headline.zh[:MAX_SMS], now, None)
        out.append(n.model_copy(update={"idempotency_key": webhook_key(release.id, url), "channel": Channel.webhook,
                                        "document": document}))
    return out

"""Public SMS subscriptions and release broadcasts in the store (issue 17), on SQLite and PostgreSQL.

- `sms_subscriptions` keeps every subscribe and unsubscribe with its time; nothing is overwritten. A number's live
  subscriptions are its subscribe rows with no later unsubscribe of that area or of every area ("*").
- `plan()` writes a release's broadcast intents into the notification ledger and its `release_broadcasts` row in
  one transaction: the row's key is the release id, so a second planner (another worker, a restart, a replay)
  fails on it and writes nothing, and each intent's key (`release:<id>:sms:<phone>`) is unique besides.
- `opted_out()` is what the notifier asks just before a public broadcast SMS goes (streams/notifier.py): a number
  that unsubscribed after planning is not sent to.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pingan.handlers.incidents.broadcast import Subscriber, broadcast_key
from pingan.handlers.incidents.subscriptions import ALL_AREAS
from pingan.schemas.action import ActionDraft
from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification
from pingan.store.engine import write_tx
from pingan.store.ledger import CHUNK, ledger_row
from pingan.store.log import append_actions
from pingan.store.repository import Store
from pingan.store.tables import notifications, release_broadcasts, sms_subscriptions

UNSUBSCRIBED = "unsubscribed before sending"  # the ledger detail of a broadcast SMS stopped at send time


@dataclass(frozen=True)
class Change:
    phone: str
    action: str
    area_code: str
    lang: str
    at: datetime


@dataclass
class BroadcastFigures:
    """One release's broadcast, from the ledger: how many were planned and what became of them."""

    release_id: str
    planned: int = 0
    planned_at: datetime | None = None
    states: dict[str, int] = field(default_factory=dict)  # intended / sending / sent / delivered / failed
    unsubscribed: int = 0  # of the failed: stopped at send time because the number had unsubscribed
    throttled: int = 0  # provider 429 answers met (each waited out and sent again)

    @property
    def sent(self) -> int:
        return self.states.get("sent", 0) + self.states.get("delivered", 0)

    @property
    def failed(self) -> int:
        return self.states.get("failed", 0) - self.unsubscribed

    def as_dict(self) -> dict[str, object]:
        return {"release_id": self.release_id, "planned": self.planned, "sent": self.sent, "failed": self.failed,
                "unsubscribed": self.unsubscribed, "throttled": self.throttled,
                "pending": self.states.get("intended", 0) + self.states.get("sending", 0), "states": self.states}




def _live_rows():  # type: ignore[no-untyped-def]
    """subscribe rows with no later unsubscribe of the same area or of every area."""
    later = sms_subscriptions.alias("later")
    return select(sms_subscriptions.c.phone, sms_subscriptions.c.area_code, sms_subscriptions.c.lang,
                  sms_subscriptions.c.id).where(and_(
        sms_subscriptions.c.action == "subscribe",
        ~select(later.c.id).where(and_(
            later.c.phone == sms_subscriptions.c.phone, later.c.action == "unsubscribe",
            later.c.area_code.in_([sms_subscriptions.c.area_code, ALL_AREAS]),
            later.c.id > sms_subscriptions.c.id)).exists()))


class SubscriptionStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    # -- changes ---------------------------------------------------------------------------------------------

    def _record(self, phone: str, action: str, area_code: str, lang: str, message_sid: str | None) -> bool:
        """One change; False when the same message (its MessageSid) was recorded already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(sms_subscriptions).values(
                    phone=phone, action=action, area_code=area_code, lang=lang, message_sid=message_sid,
                    at=utcnow()))
        except IntegrityError:
            return False
        return True

    def subscribe(self, phone: str, area_code: str, lang: str = "zh", message_sid: str | None = None) -> bool:
        return self._record(phone, "subscribe", area_code, lang, message_sid)

    def unsubscribe_all(self, phone: str, lang: str = "zh", message_sid: str | None = None) -> bool:
        """Always recorded, for any number (one never subscribed included): the next broadcast skips it."""
        return self._record(phone, "unsubscribe", ALL_AREAS, lang, message_sid)

    # -- reads -----------------------------------------------------------------------------------------------

    def history(self, phone: str) -> list[Change]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sms_subscriptions).where(sms_subscriptions.c.phone == phone)
                                .order_by(sms_subscriptions.c.id)).all()
        return [Change(r.phone, r.action, r.area_code, r.lang, r.at) for r in rows]

    def lang_of(self, phone: str) -> str | None:
        """The language of the number's latest message about subscriptions, if it ever sent one."""
        with self.engine.connect() as conn:
            return conn.scalar(select(sms_subscriptions.c.lang).where(sms_subscriptions.c.phone == phone)
                               .order_by(sms_subscriptions.c.id.desc()).limit(1))

    def active(self, phone: str) -> set[str]:
        live = _live_rows().where(sms_subscriptions.c.phone == phone)
        with self.engine.connect() as conn:
            return {r.area_code for r in conn.execute(live)}

    def subscribers(self) -> list[Subscriber]:
        """Every number with a live subscription: its areas, and the language of its newest subscription."""
        with self.engine.connect() as conn:
            rows = conn.execute(_live_rows().order_by(sms_subscriptions.c.id)).all()
        areas: dict[str, set[str]] = {}
        langs: dict[str, str] = {}
        for r in rows:
            areas.setdefault(r.phone, set()).add(r.area_code)
            langs[r.phone] = r.lang
        return [Subscriber(phone, frozenset(codes), langs[phone]) for phone, codes in areas.items()]

    def opted_out(self, phones: Iterable[str]) -> set[str]:
        """Of `phones`, those with no live subscription now (unsubscribed, or never subscribed)."""
        wanted = list(dict.fromkeys(phones))
        live: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), CHUNK):
                live |= set(conn.scalars(_live_rows().with_only_columns(sms_subscriptions.c.phone)
                                         .where(sms_subscriptions.c.phone.in_(wanted[i:i + CHUNK]))))
        return set(wanted) - live

    def unsubscribed_since(self, after_id: int) -> tuple[set[str], int]:
        """Numbers that unsubscribed from everything in changes after `after_id`, and the newest change's id: the
        notifier polls this while a batch goes, so a 退订 that arrives mid-broadcast stops the rest."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(sms_subscriptions.c.id, sms_subscriptions.c.phone, sms_subscriptions.c.action,
                                       sms_subscriptions.c.area_code)
                                .where(sms_subscriptions.c.id > after_id).order_by(sms_subscriptions.c.id)).all()
        out: set[str] = set()
        for r in rows:
            if r.action == "unsubscribe" and r.area_code == ALL_AREAS:
                out.add(r.phone)
            elif r.action == "subscribe":
                out.discard(r.phone)  # subscribed again since: theirs to have
        return out, max((r.id for r in rows), default=after_id)

    def last_change(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.max(sms_subscriptions.c.id))) or 0

    # -- broadcasts ------------------------------------------------------------------------------------------

    def planned(self, release_ids: Sequence[str]) -> set[str]:
        if not release_ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.scalars(select(release_broadcasts.c.release_id)
                                    .where(release_broadcasts.c.release_id.in_(list(release_ids)))))

    def plan(self, release_id: str, incident_id: str, intents: Sequence[Notification],
             drafts: Sequence[ActionDraft] = ()) -> bool:
        """The release's intents, its broadcast row and its log entries, in one transaction; False (nothing
        written) if it was planned already."""
        now = utcnow()
        try:
            with write_tx(self.engine) as conn:
                conn.execute(insert(release_broadcasts).values(
                    release_id=release_id, incident_id=incident_id, planned=len(intents), planned_at=now,
                    throttled=0))
                rows = [ledger_row(n, now) for n in intents]
                for i in range(0, len(rows), CHUNK):
                    conn.execute(insert(notifications), rows[i:i + CHUNK])
                append_actions(conn, drafts)
        except IntegrityError:
            return False
        return True

    def add_throttled(self, counts: dict[str, int]) -> None:
        """Provider 429s met while sending, per release id (the notifier adds them after each batch)."""
        with self.engine.begin() as conn:
            for release_id, n in counts.items():
                conn.execute(update(release_broadcasts).where(release_broadcasts.c.release_id == release_id)
                             .values(throttled=release_broadcasts.c.throttled + n))

    def figures(self, release_id: str) -> BroadcastFigures:
        prefix = broadcast_key(release_id, "")
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        out = BroadcastFigures(release_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(release_broadcasts).where(release_broadcasts.c.release_id == release_id)).first()
            if row is not None:
                out.planned, out.planned_at, out.throttled = row.planned, row.planned_at, row.throttled
            mine = notifications.c.idempotency_key.like(like, escape="\\")
            out.states = {s: n for s, n in conn.execute(select(notifications.c.state, func.count())
                                                         .where(mine).group_by(notifications.c.state))}
            out.unsubscribed = conn.scalar(select(func.count()).where(and_(
                mine, notifications.c.state == "failed", notifications.c.detail.like(UNSUBSCRIBED + "%")))) or 0
        return out

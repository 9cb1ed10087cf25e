"""The notification ledger: one row per intent, claimed before the channel is called, so each is sent once.

The concurrent notifier (streams/notifier.py) works in batches: claim_many() takes a batch of intents in one
transaction, renew() keeps the claims of sends still waiting (a throttled one) younger than the sending lease,
and settle() writes the batch's results, releases and log entries in one transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, bindparam, select, update

from pingan.schemas.action import Action, ActionDraft
from pingan.schemas.common import utcnow
from pingan.schemas.notification import DeliveryState, Notification
from pingan.store.engine import write_tx
from pingan.store.log import append_actions
from pingan.store.tables import notifications

CHUNK = 500  # keys per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
# The detail of an intent the notifier held back unsent behind an earlier message to the same recipient, never tried
# before: its attempt counts (so the scheduler brings it back on the same backoff as the one it waits for), but its
# next attempt is a first try, not a retry that asks the channel about an earlier send.
HELD_BACK_UNTRIED = "waits for an earlier message to the same recipient (not tried yet)"
HELD_BACK = "waits for an earlier message to the same recipient"


@dataclass(frozen=True)
class Claim:
    attempt: int
    tried_before: bool  # an earlier attempt may have reached the channel: ask it (reconcile) before sending again


@dataclass(frozen=True)
class Settlement:
    """One intent's end of an attempt: `state` intended releases it for a retry (`unclaim`: it was never tried,
    so the attempt is given back); any other state records the result and `drafts` are logged."""

    key: str
    state: DeliveryState
    detail: str
    provider_id: str | None = None
    drafts: Sequence[ActionDraft] = ()
    unclaim: bool = False


@dataclass(frozen=True)
class LedgerEntry:
    notification: Notification
    state: DeliveryState
    attempts: int
    provider_id: str | None
    detail: str
    updated_at: datetime | None = None



def ledger_row(n: Notification, now: datetime) -> dict[str, object]:
    return {
        "idempotency_key": n.idempotency_key,
        "incident_id": n.incident_id,
        "channel": n.channel.value,
        "recipient_id": n.recipient.id,
        "recipient_address": n.recipient.address,
        "state": DeliveryState.intended.value,
        "attempts": 0,
        "provider_id": None,
        "detail": "",
        "body": n.model_dump_json(),
        "created_at": now,
        "updated_at": now,
    }



def ledger_entry_of(row) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(
        notification=Notification.model_validate_json(row.body),
        state=DeliveryState(row.state),
        attempts=row.attempts,
        provider_id=row.provider_id,
        detail=row.detail,
        updated_at=row.updated_at,
    )


class LedgerStore:
    """Claim -> send -> record, and the lookups replies and status callbacks need."""

    engine: Engine

    def ledger_entry(self, key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(notifications).where(notifications.c.idempotency_key == key)).first()
        return ledger_entry_of(row) if row else None

    def latest_to(self, address: str, limit: int = 20) -> list[LedgerEntry]:
        """The newest notifications sent to a phone number or address: what a bare reply answers."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(notifications).where(notifications.c.recipient_address == address)
                                .order_by(notifications.c.created_at.desc()).limit(limit)).all()
        return [ledger_entry_of(r) for r in rows]

    def ledger_by_provider_id(self, provider_id: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(notifications).where(notifications.c.provider_id == provider_id)).first()
        return ledger_entry_of(row) if row else None

    def ledger_for(self, incident_id: str) -> list[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.incident_id == incident_id)
                .order_by(notifications.c.created_at, notifications.c.idempotency_key)
            ).all()
        return [ledger_entry_of(r) for r in rows]

    def claim(self, key: str) -> bool:
        """intended -> sending, committed before the channel is called. False: someone already has it."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(notifications)
                .where(and_(notifications.c.idempotency_key == key, notifications.c.state == "intended"))
                .values(state="sending", attempts=notifications.c.attempts + 1, updated_at=utcnow())
            )
        return result.rowcount == 1

    def claim_many(self, keys: Sequence[str]) -> dict[str, "Claim"]:
        """claim() for a batch in one transaction: key -> its Claim, for the keys still `intended` (the others are
        sent, sending or finished already and are left alone)."""
        claimed: dict[str, Claim] = {}
        unique = list(dict.fromkeys(keys))
        with self.engine.begin() as conn:
            for i in range(0, len(unique), CHUNK):
                rows = conn.execute(
                    update(notifications)
                    .where(and_(notifications.c.idempotency_key.in_(unique[i:i + CHUNK]),
                                notifications.c.state == "intended"))
                    .values(state="sending", attempts=notifications.c.attempts + 1, updated_at=utcnow())
                    .returning(notifications.c.idempotency_key, notifications.c.attempts, notifications.c.detail))
                claimed.update({r[0]: Claim(r[1], r[1] > 1 and r[2] != HELD_BACK_UNTRIED) for r in rows})
        return claimed

    def renew(self, keys: Sequence[str]) -> None:
        """Keep claims that are still being worked on (a send waiting out Retry-After) inside the sending lease,
        so that no scheduler takes them for a lost worker's."""
        with self.engine.begin() as conn:
            for i in range(0, len(keys), CHUNK):
                conn.execute(update(notifications).where(and_(
                    notifications.c.idempotency_key.in_(list(keys[i:i + CHUNK])),
                    notifications.c.state == "sending")).values(updated_at=utcnow()))

    def take_sending_on(self, channels: Sequence[str]) -> list[LedgerEntry]:
        """Every row left `sending` on these (at-least-once) channels, whatever its age, renewed for this caller:
        at start, what a killed worker had in flight there is sent again at once rather than after the lease."""
        if not channels:
            return []
        with self.engine.begin() as conn:
            keys = list(conn.scalars(update(notifications).where(and_(
                notifications.c.state == "sending", notifications.c.channel.in_(list(channels))))
                .values(updated_at=utcnow()).returning(notifications.c.idempotency_key)))
        return [e for e in (self.ledger_entry(k) for k in keys) if e is not None]

    def settle(self, settlements: Sequence[Settlement]) -> list[Action]:
        """Every result of a batch in one transaction: releases (sending -> intended) and results, then the log."""
        if not settlements:
            return []
        now = utcnow()
        key = bindparam("k")
        with write_tx(self.engine) as conn:
            releases = [{"k": s.key, "d": s.detail, "u": 1 if s.unclaim else 0} for s in settlements
                        if s.state is DeliveryState.intended]
            if releases:
                conn.execute(update(notifications).where(and_(notifications.c.idempotency_key == key,
                                                              notifications.c.state == "sending"))
                             .values(state="intended", detail=bindparam("d"), updated_at=now,
                                     attempts=notifications.c.attempts - bindparam("u")), releases)
            results = [{"k": s.key, "s": s.state.value, "p": s.provider_id, "d": s.detail} for s in settlements
                       if s.state is not DeliveryState.intended]
            if results:
                conn.execute(update(notifications).where(notifications.c.idempotency_key == key)
                             .values(state=bindparam("s"), provider_id=bindparam("p"), detail=bindparam("d"),
                                     updated_at=now), results)
            return append_actions(conn, [d for s in settlements for d in s.drafts])

    def release(self, key: str, detail: str) -> None:
        """sending -> intended: reconciliation proved it never went out, so it may be sent."""
        with self.engine.begin() as conn:
            conn.execute(
                update(notifications)
                .where(and_(notifications.c.idempotency_key == key, notifications.c.state == "sending"))
                .values(state="intended", detail=detail, updated_at=utcnow())
            )

    def record_result(self, key: str, state: DeliveryState, provider_id: str | None, detail: str,
                      drafts: Sequence[ActionDraft]) -> list[Action]:
        with write_tx(self.engine) as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.idempotency_key == key)
                .values(state=state.value, provider_id=provider_id, detail=detail, updated_at=utcnow())
            )
            return append_actions(conn, drafts)

    def ledger_in_state(self, state: DeliveryState, limit: int = 10_000) -> list[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.state == state.value)
                .order_by(notifications.c.created_at)
                .limit(limit)
            ).all()
        return [ledger_entry_of(r) for r in rows]

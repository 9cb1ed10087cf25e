"""The response's durable state: escalation deadlines, commands, role holders, roll-call confirmations.

Whoever writes or moves a deadline in this process calls the listeners registered with `on_deadline_written` (the
escalation scheduler's wake-up), so a timer waiting for the next due time learns of an earlier one at once.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pingan.handlers.incidents.escalation import CommandDecision, Deadline, due_at
from pingan.schemas.action import Action, ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.incident import Incident
from pingan.schemas.notification import DeliveryState, Notification
from pingan.store.engine import write_tx
from pingan.store.ledger import LedgerEntry, ledger_entry_of, ledger_row
from pingan.store.log import append_actions
from pingan.store.repository import Store
from pingan.store.tables import (
    actions,
    confirmations,
    escalations,
    incidents,
    notifications,
    responses,
    role_holders,
)

log = logging.getLogger(__name__)
_listeners: list[Callable[[], None]] = []
_held = threading.local()  # `written` is not None inside wakeups_held() on this thread


def on_deadline_written(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` (cheap, thread-safe: it only wakes a thread) after each commit that adds or moves a deadline
    in this process; returns the function that unregisters it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


@contextmanager
def wakeups_held() -> Iterator[None]:
    """Hold this thread's deadline wake-ups for the block, then wake once if a deadline was written in it. For a
    batch's transaction (streams/batches.py): the scheduler cannot see its deadlines before the commit, so waking it
    for each one only spent its queries; once after the commit it sees them all (issue 15)."""
    outer = getattr(_held, "written", None)
    _held.written = False
    try:
        yield
    finally:
        written, _held.written = _held.written, outer
    if written:
        _deadline_written()


def _deadline_written() -> None:
    if getattr(_held, "written", None) is not None:  # inside wakeups_held(): once, when it ends
        _held.written = True
        return
    for listener in list(_listeners):
        try:
            listener()
        except Exception:  # a wake-up must never fail the write that was committed
            log.exception("deadline listener failed")


@dataclass(frozen=True)
class DueRow:
    id: int
    incident_id: str
    plan_id: str
    plan_version: int
    grade: str
    step_id: str
    kind: str
    attempt: int
    due_at: datetime


class ResponseStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def schedule(self, incident_id: str, plan_id: str, plan_version: int, grade: str, activated_at: datetime,
                 rows: Sequence[Deadline], time_scale: float) -> int:
        """Insert the level's deadlines once, in one transaction; a replay inserts nothing (unique slot)."""
        if not rows:
            return 0
        now = utcnow()
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        values = [{"incident_id": incident_id, "plan_id": plan_id, "plan_version": plan_version, "grade": grade,
                   "step_id": d.step_id, "kind": d.kind.value, "attempt": d.attempt,
                   "due_at": due_at(activated_at, d.minute, time_scale), "cancel_on_ack": int(d.cancel_on_ack),
                   "state": "pending", "created_at": now} for d in rows]
        with self.engine.begin() as conn:
            # One statement for the level (SQLAlchemy's insertmanyvalues), not one per deadline (issue 15).
            added = len(conn.execute(insert(escalations).on_conflict_do_nothing().returning(escalations.c.id),
                                     values).all())
        if added:
            _deadline_written()
        return added

    def next_due(self) -> datetime | None:
        """The earliest pending deadline's due time: what the scheduler's timer waits for."""
        with self.engine.connect() as conn:
            return conn.scalar(select(func.min(escalations.c.due_at)).where(escalations.c.state == "pending"))

    def due(self, now: datetime, limit: int = 200) -> list[DueRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(escalations).where(and_(escalations.c.state == "pending",
                                                               escalations.c.due_at <= now))
                                .order_by(escalations.c.due_at, escalations.c.id).limit(limit)).all()
        return [DueRow(r.id, r.incident_id, r.plan_id, r.plan_version, r.grade, r.step_id, r.kind, r.attempt,
                       r.due_at) for r in rows]

    def pending(self, incident_id: str) -> list[DueRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(escalations).where(and_(escalations.c.incident_id == incident_id,
                                                               escalations.c.state == "pending"))
                                .order_by(escalations.c.due_at)).all()
        return [DueRow(r.id, r.incident_id, r.plan_id, r.plan_version, r.grade, r.step_id, r.kind, r.attempt,
                       r.due_at) for r in rows]

    def fire(self, row: DueRow, orders: Sequence[Notification],
             drafts: Sequence[ActionDraft]) -> list[Action] | None:
        """pending -> fired with its intents and log entries, once: the entries written (none for a plain delayed
        step, which logs only its sends), or None for a second caller. Not [] for both: the scheduler took "fired,
        nothing logged" for "another worker fired it" and never published a delayed step's orders (issue 14)."""
        now = utcnow()
        with write_tx(self.engine) as conn:
            claimed = conn.execute(update(escalations).where(and_(escalations.c.id == row.id,
                                                                  escalations.c.state == "pending"))
                                   .values(state="fired")).rowcount
            if claimed != 1:
                return None
            known = set(conn.scalars(select(notifications.c.idempotency_key).where(
                notifications.c.idempotency_key.in_([n.idempotency_key for n in orders]))))
            fresh = [n for n in orders if n.idempotency_key not in known]
            if fresh:
                conn.execute(notifications.insert(), [ledger_row(n, now) for n in fresh])
            return append_actions(conn, drafts)

    def apply_command(self, incident: Incident, decision: CommandDecision, role: str | None = None,
                      to: str | None = None) -> list[Action]:
        """The command's state change, log entry and effect on the deadlines, in one transaction."""
        now = utcnow()
        changed = incident.model_copy(update={"state": decision.state})
        with write_tx(self.engine) as conn:
            conn.execute(update(incidents).where(incidents.c.id == incident.id).values(
                state=decision.state.value, body=changed.model_dump_json()))
            pending = and_(escalations.c.incident_id == incident.id, escalations.c.state == "pending")
            if decision.cancel == "all":
                conn.execute(update(escalations).where(pending).values(state="cancelled"))
            elif decision.cancel == "ack":
                conn.execute(update(escalations).where(and_(pending, escalations.c.cancel_on_ack == 1))
                             .values(state="cancelled"))
            if decision.fire_next_step:
                nxt = conn.execute(select(escalations.c.id).where(and_(pending, escalations.c.kind.in_(
                    ["step", "escalate"]))).order_by(escalations.c.due_at).limit(1)).scalar()
                if nxt is not None:
                    conn.execute(update(escalations).where(escalations.c.id == nxt).values(due_at=now))
            if role and to:
                conn.execute(role_holders.delete().where(and_(role_holders.c.incident_id == incident.id,
                                                              role_holders.c.role == role)))
                conn.execute(role_holders.insert().values(incident_id=incident.id, role=role, person_id=to, since=now))
            logged = append_actions(conn, decision.actions)
        if decision.fire_next_step:
            _deadline_written()
        return logged

    def response_grade(self, incident_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(responses.c.grade).where(responses.c.incident_id == incident_id))

    def regrade(self, incident_id: str, grade: str, plan_id: str | None, plan_version: int | None,
                orders: Sequence[Notification], drafts: Sequence[ActionDraft]) -> list[Action]:
        """A grade change: the old level's pending deadlines go, the new level's t+0 orders come. Once."""
        now = utcnow()
        with write_tx(self.engine) as conn:
            current = conn.scalar(select(responses.c.grade).where(responses.c.incident_id == incident_id))
            if current == grade:
                return []
            conn.execute(update(responses).where(responses.c.incident_id == incident_id).values(
                grade=grade, plan_id=plan_id, plan_version=plan_version))
            conn.execute(update(escalations).where(and_(escalations.c.incident_id == incident_id,
                                                        escalations.c.state == "pending",
                                                        escalations.c.grade != grade)).values(state="cancelled"))
            known = set(conn.scalars(select(notifications.c.idempotency_key).where(
                notifications.c.idempotency_key.in_([n.idempotency_key for n in orders]))))
            fresh = [n for n in orders if n.idempotency_key not in known]
            if fresh:
                conn.execute(notifications.insert(), [ledger_row(n, now) for n in fresh])
            return append_actions(conn, drafts)

    def raise_grade(self, incident: Incident, grade: str, rule: str) -> Incident | None:
        """Raise the incident's grade by a plan rule, with its `grade_changed` entry; None if already at it."""
        with write_tx(self.engine) as conn:
            body = conn.scalar(select(incidents.c.body).where(incidents.c.id == incident.id))
            current = Incident.model_validate_json(body) if body else incident
            if current.grade.value == grade:
                return None
            raised = Incident.model_validate({**current.model_dump(), "grade": grade})
            conn.execute(update(incidents).where(incidents.c.id == incident.id).values(
                grade=grade, body=raised.model_dump_json()))
            append_actions(conn, [ActionDraft(
                incident_id=incident.id, at=utcnow(), actor="system:escalate_grade", kind=ActionKind.grade_changed,
                details={"from": current.grade.value, "to": grade, "rule": rule},
                idempotency_key=f"grade_changed:{incident.id}:{grade}")])
        return raised

    def role_holders(self, incident_id: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(role_holders).where(role_holders.c.incident_id == incident_id)).all()
        return {r.role: r.person_id for r in rows}

    def confirm(self, incident_id: str, step_id: str, person_id: str, drafts: Sequence[ActionDraft]) -> list[Action]:
        with write_tx(self.engine) as conn:
            exists = conn.execute(select(confirmations).where(and_(
                confirmations.c.incident_id == incident_id, confirmations.c.step_id == step_id,
                confirmations.c.person_id == person_id))).first()
            if exists:
                return []
            conn.execute(confirmations.insert().values(incident_id=incident_id, step_id=step_id, person_id=person_id,
                                                       at=utcnow()))
            return append_actions(conn, drafts)

    def confirmed(self, incident_id: str, step_id: str) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.scalars(select(confirmations.c.person_id).where(and_(
                confirmations.c.incident_id == incident_id, confirmations.c.step_id == step_id))))

    def stale_intents(self, older_than: datetime, limit: int = 500) -> list[LedgerEntry]:
        """Intents nobody has handed to a channel for a while: their message was lost, or a retry is due."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(notifications).where(and_(
                notifications.c.state == DeliveryState.intended.value, notifications.c.updated_at <= older_than))
                .order_by(notifications.c.updated_at).limit(limit)).all()
        return [ledger_entry_of(r) for r in rows]

    def take_stale_sending(self, older_than: datetime, limit: int = 100) -> list[LedgerEntry]:
        """Rows left `sending` since before `older_than`, each renewed for this caller alone: of two schedulers
        that see one row, only the first renews it (the second's condition no longer holds), so one reconciles."""
        with self.engine.connect() as conn:
            keys = list(conn.scalars(select(notifications.c.idempotency_key).where(and_(
                notifications.c.state == DeliveryState.sending.value, notifications.c.updated_at <= older_than))
                .order_by(notifications.c.updated_at).limit(limit)))
        taken = []
        for key in keys:
            with self.engine.begin() as conn:
                renewed = conn.execute(update(notifications).where(and_(
                    notifications.c.idempotency_key == key, notifications.c.state == DeliveryState.sending.value,
                    notifications.c.updated_at <= older_than)).values(updated_at=utcnow())).rowcount
            if renewed == 1:
                taken.append(key)
        return [e for e in (self.store.ledger_entry(k) for k in taken) if e is not None]

    def report_times(self, incident_id: str, since: datetime) -> list[datetime]:
        """When each report of the incident (the first and every correlated one) came in, since `since`: the time
        its `created` / `correlated` entry carries (the report's receipt), not when triage got to it, which a
        backlog bunches together (a x600 drill's reports 20 plan minutes apart were triaged within one second and
        held a "5 within 30 minutes" rule). Only those two kinds of the incident's entries are read."""
        with self.engine.connect() as conn:
            stamps = conn.scalars(select(actions.c.at).where(and_(
                actions.c.incident_id == incident_id, actions.c.kind.in_(("created", "correlated")))))
            times = [datetime.fromisoformat(a.replace("Z", "+00:00")) for a in stamps]
        return [t for t in times if t >= since]

    def touch(self, keys: Sequence[str], seen_before: datetime | None = None) -> set[str]:
        """Mark intents as just re-ordered; returns the keys this caller touched. With `seen_before` (the latest
        updated_at the caller read), a row another scheduler touched since is left out, so of two workers' schedulers
        only one re-publishes each intent."""
        if not keys:
            return set()
        cond = notifications.c.idempotency_key.in_(list(keys))
        if seen_before is not None:
            cond = and_(cond, notifications.c.updated_at <= seen_before)
        with self.engine.begin() as conn:
            return set(conn.scalars(update(notifications).where(cond).values(updated_at=utcnow())
                                    .returning(notifications.c.idempotency_key)))

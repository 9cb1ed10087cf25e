"""Triage and response in batches (streams/batches.py): one transaction per batch, retried whole (both databases)."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IncidentEvent, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.store.response import on_deadline_written
from pingan.store.tables import actions, escalations, incidents, notifications, responses, triage_events
from pingan.streams.batches import merged, response_batch, triage_batch

PLANS = load_plans(PLANS_DIR)
WINDOW = timedelta(minutes=30)


def raw(key: str, n: int) -> RawEvent:
    report = IncidentReport(category="accident_disaster", subtype="fire", grade="III", title=f"仓库起火 {n}",
                            dedup_key=key)
    return RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(),
                    received_at=datetime.now(UTC), report=report)


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in (incidents, triage_events, responses, notifications, escalations, actions)}


class FailOnce:
    """Makes the `nth` statement that inserts into `table` fail, once: a transaction failing half-way through."""

    def __init__(self, store: Store, table: str, nth: int) -> None:
        self.store, self.table, self.nth, self.seen, self.fired = store, table, nth, 0, False

    def __enter__(self) -> "FailOnce":
        event.listen(self.store.engine, "before_cursor_execute", self._check)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._check)

    def _check(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not self.fired and statement.lstrip().upper().startswith(f"INSERT INTO {self.table.upper()}"):
            self.seen += 1
            if self.seen == self.nth:
                self.fired = True
                raise RuntimeError(f"injected failure at insert {self.nth} into {self.table}")


@pytest.fixture
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(store.engine, "before_cursor_execute", record)


def test_a_failed_triage_batch_leaves_nothing_and_its_retry_does_it_all_once(store: Store) -> None:
    events = [raw("k-a", 1), raw("k-b", 2), raw("k-a", 3), raw("k-c", 4), raw("k-d", 5)]
    with FailOnce(store, "triage_events", 4), pytest.raises(RuntimeError, match="injected"):
        triage_batch(store, events, WINDOW, {})
    # Three events were decided and written before the failure: none of it is stored, nothing was returned to emit.
    assert counts(store) == dict.fromkeys(counts(store), 0)

    outs = triage_batch(store, events, WINDOW, {})  # the agent runs the same batch again, whole
    assert [o.incident_events[0].outcome.value for o in outs] == ["created", "created", "correlated", "created",
                                                                  "created"]
    # The third report joined the first one's incident, decided inside the same transaction.
    assert outs[2].incident_events[0].incident.id == outs[0].incident_events[0].incident.id
    assert counts(store)["incidents"] == 4 and counts(store)["triage_events"] == 5
    assert verify_chain(store.iter_log())[1] is None

    again = triage_batch(store, events, WINDOW, {})  # a replay after a crash: the same decisions, nothing new
    def decided(batch):  # type: ignore[no-untyped-def]
        return [(e.event_id, e.outcome, e.incident.id) for o in batch for e in o.incident_events]

    assert decided(again) == decided(outs)
    assert all(not o.actions for o in again) and counts(store)["triage_events"] == 5


def test_a_failed_response_batch_leaves_nothing_and_its_retry_does_it_all_once(store: Store) -> None:
    created = [e for o in triage_batch(store, [raw(f"k-{n}", n) for n in range(4)], WINDOW, {})
               for e in o.incident_events]
    before = counts(store)
    with FailOnce(store, "escalations", 3), pytest.raises(RuntimeError, match="injected"):
        response_batch(store, lambda: PLANS, created, 1.0)
    assert counts(store) == before  # no response, intent, deadline or log entry of any of the four

    out = merged(response_batch(store, lambda: PLANS, created, 1.0))
    after = counts(store)
    assert after["responses"] == 4 and after["notifications"] == len(out.notifications) > 0
    assert {n.incident_id for n in out.notifications} == {e.incident.id for e in created}
    assert after["escalations"] > 0
    assert verify_chain(store.iter_log())[1] is None
    # A replay re-emits only the intents not yet handed to a channel (all of them here) and writes nothing.
    replay = merged(response_batch(store, lambda: PLANS, created, 1.0))
    assert not replay.actions and counts(store) == after
    assert sorted(n.idempotency_key for n in replay.notifications) == sorted(
        n.idempotency_key for n in out.notifications)


def test_a_batch_is_one_transaction_with_one_read_of_the_chain_head(store: Store, statements: list[str]) -> None:
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    events = [raw(f"k-{n}", n) for n in range(20)]
    created: list[IncidentEvent] = [e for o in triage_batch(store, events, WINDOW, {}) for e in o.incident_events]
    head_reads = [s for s in statements if s.startswith("SELECT actions.seq, actions.hash FROM actions ORDER BY")]
    assert len(commits) == 1 and len(head_reads) == 1
    statements.clear()
    response_batch(store, lambda: PLANS, created, 1.0)
    head_reads = [s for s in statements if s.startswith("SELECT actions.seq, actions.hash FROM actions ORDER BY")]
    assert len(commits) == 2 and len(head_reads) == 1
    assert verify_chain(store.iter_log()) == (counts(store)["actions"], None)


def test_the_same_event_twice_in_one_batch_is_decided_once(store: Store) -> None:
    first = raw("k-twice", 1)
    outs = triage_batch(store, [first, first], WINDOW, {})  # a replay that lands in the batch of its original
    assert [(e.outcome.value, e.incident.id) for o in outs for e in o.incident_events] == [
        ("created", first.proposed_incident_id), ("created", first.proposed_incident_id)]
    assert len(outs[0].actions) == 1 and not outs[1].actions
    created = outs[0].incident_events
    twice = merged(response_batch(store, lambda: PLANS, [*created, *created], 1.0))
    assert counts(store)["triage_events"] == 1 and counts(store)["responses"] == 1
    assert len({n.idempotency_key for n in twice.notifications}) == counts(store)["notifications"]
    assert verify_chain(store.iter_log()) == (counts(store)["actions"], None)


def test_the_scheduler_is_woken_once_per_batch_after_its_commit(store: Store) -> None:
    created = [e for o in triage_batch(store, [raw(f"k-{n}", n) for n in range(5)], WINDOW, {})
               for e in o.incident_events]
    seen: list[int] = []  # the deadlines another connection (the scheduler's) sees when it is woken
    unregister = on_deadline_written(lambda: seen.append(counts(store)["escalations"]))
    try:
        response_batch(store, lambda: PLANS, created, 1.0)
    finally:
        unregister()
    assert len(seen) == 1 and seen[0] == counts(store)["escalations"] > 0

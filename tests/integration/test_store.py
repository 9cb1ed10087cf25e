"""The store on SQLite and PostgreSQL: outbox, triage idempotency, the log chain, the ledger."""

from datetime import timedelta

from sqlalchemy import text

from pingan.handlers.audit.log_chain import verify_chain
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.schemas.notification import DeliveryState
from pingan.store.repository import Store
from pingan.streams.stages import triage_stage

WINDOW = timedelta(hours=1)


def report(key: str = "k1", title: str = "仓库起火") -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade="III", title=title, dedup_key=key)


def accept_and_triage(store: Store, key: str = "k1") -> str:
    accepted = store.accept(report(key), "incidents.raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    out = triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW)
    return out.incident_events[0].incident.id


def test_accept_writes_the_outbox_before_anything_else(store: Store) -> None:
    accepted = store.accept(report(), "incidents.raw")
    rows = store.unpublished()
    assert [r.event_id for r in rows] == [accepted.event_id]
    assert rows[0].key == "k1"
    store.mark_published([accepted.event_id])
    assert store.unpublished() == []
    assert [r.event_id for r in store.untriaged_events()] == [accepted.event_id]


def test_triage_is_idempotent_and_correlates(store: Store) -> None:
    ids = [accept_and_triage(store) for _ in range(5)]
    assert len(set(ids)) == 1
    incident = store.get_incident(ids[0])
    assert incident is not None and incident.report_count == 5
    kinds = [a.kind.value for a in store.timeline(ids[0])]
    assert kinds == ["created"] + ["correlated"] * 4
    # Replaying every raw event changes nothing.
    assert store.untriaged_events() == []
    before = len(list(store.iter_log()))
    accepted = store.accept(report("k2"), "incidents.raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    event = RawEvent.model_validate_json(row.payload)
    first = triage_stage(store, event, WINDOW)
    again = triage_stage(store, event, WINDOW)
    assert again.incident_events[0].incident.id == first.incident_events[0].incident.id
    assert again.actions == []
    assert len(list(store.iter_log())) == before + 1


def test_resolve_a_correlated_report_id_to_its_incident(store: Store) -> None:
    first = accept_and_triage(store)
    accepted = store.accept(report(), "incidents.raw")
    event = RawEvent.model_validate_json(
        next(r for r in store.unpublished() if r.event_id == accepted.event_id).payload
    )
    triage_stage(store, event, WINDOW)
    assert store.resolve_incident_id(accepted.incident_id) == first
    assert store.resolve_incident_id(first) == first
    assert store.resolve_incident_id("INC-NOPE") is None


def test_log_verify_names_the_tampered_row(store: Store) -> None:
    for key in ("a", "b", "c"):
        accept_and_triage(store, key)
    checked, broken = verify_chain(store.iter_log())
    assert (checked, broken) == (3, None)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE actions SET details = :d WHERE seq = 2"), {"d": '{"title":"改过"}'})
    checked, broken = verify_chain(store.iter_log())
    assert checked == 1 and broken is not None and broken.seq == 2


def test_list_incidents_newest_first_with_filters(store: Store) -> None:
    ids = [accept_and_triage(store, f"key{i}") for i in range(4)]
    page = store.list_incidents(limit=2)
    assert page.total == 4 and [i.id for i in page.items] == ids[::-1][:2]
    page2 = store.list_incidents(limit=2, offset=2)
    assert [i.id for i in page2.items] == ids[::-1][2:]
    assert store.list_incidents(category="public_health").total == 0
    assert store.list_incidents(status="actual", source="api").total == 4


def test_ledger_claim_is_at_most_once(store: Store) -> None:
    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR
    from pingan.streams.stages import response_stage

    incident_id = accept_and_triage(store)
    event = store.triage_result(_first_event(store))
    assert event is not None
    out = response_stage(store, load_plans(PLANS_DIR), event)
    assert len(out.notifications) >= 1
    key = out.notifications[0].idempotency_key
    assert store.claim(key) is True
    assert store.claim(key) is False
    entry = store.ledger_entry(key)
    assert entry is not None and entry.state is DeliveryState.sending and entry.attempts == 1
    # A replay of the response stage decides nothing new and re-emits nothing already claimed.
    again = response_stage(store, load_plans(PLANS_DIR), event)
    assert key not in {n.idempotency_key for n in again.notifications} and again.actions == []
    assert len(again.notifications) == len(out.notifications) - 1  # the unclaimed intents, re-emitted
    assert [a.kind.value for a in store.timeline(incident_id)] == ["created", "plan_activated"]


def _first_event(store: Store) -> str:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT event_id FROM triage_events")).scalar_one()


def test_deadlines_are_scheduled_once_in_one_transaction(db_url: str) -> None:
    from datetime import UTC, datetime

    from pingan.handlers.incidents.escalation import Deadline, DeadlineKind
    from pingan.store.response import ResponseStore

    store = Store(db_url)
    responses = ResponseStore(store)
    rows = [Deadline("sms", DeadlineKind.repeat, 2, 5, True), Deadline("voice", DeadlineKind.step, 1, 5, False)]
    at = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert responses.schedule("INC-1", "p", 1, "II", at, rows, 1.0) == 2
    assert responses.schedule("INC-1", "p", 1, "II", at, rows, 1.0) == 0  # a replay adds nothing
    assert len(responses.due(datetime(2026, 11, 26, 3, 0, tzinfo=UTC))) == 2
    store.close()

"""The pipeline end to end: a real tansu broker, a real faust worker process, SQLite and PostgreSQL."""

from pathlib import Path

import pytest

from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.channels.console import read_sink
from pingan.schemas.incident import IncidentReport
from pingan.schemas.notification import DeliveryState
from pingan.store.repository import Store
from tests.fixtures.stack import pingan_env, wait_for


def fire(title: str = "仓库起火", key: str | None = None, grade: str = "III") -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade=grade, title=title, dedup_key=key)


def kinds(store: Store, incident_id: str) -> list[str]:
    return [a.kind.value for a in store.timeline(incident_id)]


@pytest.fixture
def pipeline(tmp_path: Path, broker_bootstrap: str, db_url: str, worker_factory):  # type: ignore[no-untyped-def]
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url)
    store = Store(db_url)
    worker = worker_factory(env)
    yield store, env, worker
    store.close()


def test_report_reaches_delivered_on_the_console(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    accepted = store.accept(fire(), env["PINGAN_TOPIC_PREFIX"] + "incidents.raw")
    try:
        wait_for(lambda: "delivered" in kinds(store, accepted.incident_id), 60, what="delivered")
    except AssertionError:
        raise AssertionError(worker.log_tail()) from None
    timeline = store.timeline(accepted.incident_id)
    console = [a for a in timeline if a.details.get("channel") in (None, "console")]
    assert [a.kind.value for a in console] == ["created", "plan_activated", "notified", "delivered"]
    activated = console[1]
    assert activated.plan_id == "building-fire" and activated.plan_version is not None
    assert activated.details["plan_hash"] and activated.details["response_level"] == "三级响应"
    lines = [r for r in read_sink(tmp_path / "console.log") if r["incident_id"] == accepted.incident_id]
    assert len(lines) == 1 and accepted.incident_id in lines[0]["text"]
    assert verify_chain(store.iter_log())[1] is None


def test_five_reports_with_one_key_make_one_incident(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    raw_topic = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
    first = store.accept(fire("仓库起火", key="warehouse-7"), raw_topic)
    wait_for(lambda: "delivered" in kinds(store, first.incident_id), 60, what="first delivered")
    for n in range(4):
        store.accept(fire(f"仓库起火 第{n + 2}报", key="warehouse-7"), raw_topic)
    wait_for(lambda: kinds(store, first.incident_id).count("correlated") == 4, 30, what="4 correlated")
    assert store.list_incidents().total == 1
    incident = store.get_incident(first.incident_id)
    assert incident is not None and incident.report_count == 5
    ledger = store.ledger_for(first.incident_id)
    console = [e for e in ledger if e.notification.channel.value == "console"]
    assert len(console) == 1 and console[0].state is DeliveryState.delivered
    # Correlated reports notify nobody again: the ledger holds only the first activation's orders.
    assert {e.notification.step for e in ledger} <= {s for s in _steps_at_zero("building-fire", "III")}
    assert len(read_sink(tmp_path / "console.log")) == 1


def _steps_at_zero(plan_id: str, grade: str) -> set[str]:
    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR

    plan = load_plans(PLANS_DIR).get(plan_id)
    assert plan is not None
    level = plan.level(grade)  # type: ignore[arg-type]
    assert level is not None
    return {step.id for step in level.notify if step.delay_min == 0}

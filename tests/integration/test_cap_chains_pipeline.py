"""Issue #12's bar on a real tansu broker and a real worker, SQLite and PostgreSQL: CAP chains replayed as services
send them, and the district check, through intake's outbox, the relay, triage, response and the notifier.

- Alert -> Update -> Cancel where the Cancel names only the Update closes the incident.
- Alert -> Update -> Update where the second names only the first Update changes the same incident.
- A CAP alert for an area outside the district activates no plan and is logged as such; one for a district area
  activates its plan (and reaches the console).
"""

from pathlib import Path

import pytest

from pingan.handlers.audit.log_chain import verify_chain
from pingan.schemas.adapters.cap import parse_cap
from pingan.store.repository import Store
from tests.fixtures.cap_chain import CAP_DIR, chain_message, reference
from tests.fixtures.stack import pingan_env, wait_for

pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"CAP samples not found at {CAP_DIR}")


@pytest.fixture
def pipeline(tmp_path: Path, broker_bootstrap: str, db_url: str, worker_factory):  # type: ignore[no-untyped-def]
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_HEARTBEAT_INTERVAL_S="0")
    store = Store(db_url)
    worker = worker_factory(env)
    yield store, env, worker
    store.close()


def send(store: Store, env: dict[str, str], data: bytes) -> str:
    [item] = parse_cap(data)
    return store.accept(item, env["PINGAN_TOPIC_PREFIX"] + "incidents.raw").incident_id


def kinds(store: Store, incident_id: str) -> list[str]:
    return [a.kind.value for a in store.timeline(incident_id)]


def until(worker, predicate, what: str, timeout_s: float = 90):  # type: ignore[no-untyped-def]
    try:
        return wait_for(predicate, timeout_s, 0.1, what)
    except AssertionError:
        raise AssertionError(f"{what}\n{worker.log_tail()}") from None


def test_cancel_naming_only_the_update_closes_the_incident(pipeline) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    a, u1, c = ("TJW-A", "2026-08-01T08:00:00+08:00"), ("TJW-U1", "2026-08-01T09:00:00+08:00"), \
        ("TJW-C", "2026-08-01T10:00:00+08:00")
    incident_id = send(store, env, chain_message(*a, severity="Moderate"))
    until(worker, lambda: "plan_activated" in kinds(store, incident_id), "the Alert planned")
    send(store, env, chain_message(*u1, msg_type="Update", refs=(reference(*a),)))
    until(worker, lambda: "grade_changed" in kinds(store, incident_id), "the Update applied")
    cancel_id = send(store, env, chain_message(*c, msg_type="Cancel", refs=(reference(*u1),)))
    until(worker, lambda: "closed" in kinds(store, incident_id), "the Cancel (naming only the Update) closed it")
    incident = store.get_incident(incident_id)
    assert incident is not None and incident.state.value == "closed"
    assert store.resolve_incident_id(cancel_id) == incident_id
    assert store.list_incidents().total == 1
    assert verify_chain(store.iter_log())[1] is None


def test_update_naming_only_the_first_update_changes_the_same_incident(pipeline) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    a, u1, u2 = ("TJW-A", "2026-08-01T08:00:00+08:00"), ("TJW-U1", "2026-08-01T09:00:00+08:00"), \
        ("TJW-U2", "2026-08-01T10:00:00+08:00")
    incident_id = send(store, env, chain_message(*a, severity="Moderate"))  # III
    until(worker, lambda: "plan_activated" in kinds(store, incident_id), "the Alert planned")
    # Sent back to back: one partition per sender keeps them in order, so the second finds the first.
    send(store, env, chain_message(*u1, msg_type="Update", refs=(reference(*a),), severity="Severe"))  # II
    send(store, env, chain_message(*u2, msg_type="Update", refs=(reference(*u1),), severity="Extreme"))  # I
    until(worker, lambda: kinds(store, incident_id).count("grade_changed") == 2, "both Updates applied")
    incident = store.get_incident(incident_id)
    assert incident is not None and incident.grade.value == "I"
    assert store.list_incidents().total == 1  # no second incident at the new grade
    until(worker, lambda: kinds(store, incident_id).count("plan_activated") == 3, "re-planned at II, then I")


def test_an_alert_outside_the_district_activates_no_plan_and_one_inside_does(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    outside = send(store, env, chain_message("TJW-OUT", "2026-08-01T08:00:00+08:00", inside=False))
    inside = send(store, env, chain_message("TJW-IN", "2026-08-01T08:00:00+08:00", inside=True))
    until(worker, lambda: "delivered" in kinds(store, inside), "the district's alert reached the console")
    until(worker, lambda: "area_checked" in kinds(store, outside), "the outside alert checked")
    assert kinds(store, outside) == ["created", "area_checked"]
    entry = store.timeline(outside)[1]
    assert entry.details["area"] == "outside" and "outside our area" in entry.details["reason"]
    assert store.response_plan(outside) is None and store.ledger_for(outside) == []
    checked = next(a for a in store.timeline(inside) if a.kind.value == "area_checked")
    assert checked.details["area"] == "inside"
    assert store.response_plan(inside) is not None
    assert "outside our area" in (tmp_path / "worker-0.log").read_text(errors="replace")

"""CAP chains and the district check through the real stages and store (SQLite and PostgreSQL), no broker: what the
triage and response agents do with each message, in the order a sender sends them (issue #12).

Real chains name the latest message: Alert -> Update (names the Alert) -> Cancel (names only the Update) closes the
incident; Alert -> Update -> Update (names only the first Update) changes the same incident. A Cancel naming no
known message gets a final status, `ignored: references no known message`, and `pingan timeline` shows it.
"""

from datetime import timedelta
from pathlib import Path

import pytest

from pingan.bootstrap import load_district
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.events import IncidentEvent, RawEvent, TriageOutcome
from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.message_keys import MessageKeys
from pingan.store.recorded import incident_log
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage
from tests.fixtures.cap_chain import CAP_DIR, chain_message, reference
from tests.fixtures.stack import cli, pingan_env

pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"CAP samples not found at {CAP_DIR}")
WINDOW = timedelta(hours=1)
TOPIC = "incidents.raw"
A = ("TJW-TS-1", "2026-08-01T08:00:00+08:00")
U1 = ("TJW-TS-2", "2026-08-01T09:00:00+08:00")
U2 = ("TJW-TS-3", "2026-08-01T10:00:00+08:00")
C = ("TJW-TS-4", "2026-08-01T11:00:00+08:00")


def deliver(store: Store, data: bytes) -> tuple[str, list[IncidentEvent]]:
    """Accept one CAP message as intake does, then run triage on exactly what the relay would publish."""
    [item] = parse_cap(data)
    accepted = store.accept(item, TOPIC)
    [row] = [r for r in store.unpublished() if r.event_id == accepted.event_id]
    store.mark_published([row.event_id])
    return accepted.incident_id, triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events


def kinds(store: Store, incident_id: str) -> list[str]:
    return [a.kind.value for a in store.timeline(incident_id)]


def test_a_cancel_naming_only_the_update_closes_the_incident(store: Store) -> None:
    incident_id, _ = deliver(store, chain_message(*A, severity="Moderate"))
    deliver(store, chain_message(*U1, msg_type="Update", refs=(reference(*A),)))
    cancel_id, [closed] = deliver(store, chain_message(*C, msg_type="Cancel", refs=(reference(*U1),)))
    assert closed.outcome is TriageOutcome.closed and closed.incident.id == incident_id
    assert store.resolve_incident_id(cancel_id) == incident_id
    incident = store.get_incident(incident_id)
    assert incident is not None and incident.state.value == "closed"
    assert kinds(store, incident_id) == ["created", "updated", "grade_changed", "closed"]
    assert store.list_incidents().total == 1


def test_an_update_naming_only_the_first_update_changes_the_same_incident(store: Store) -> None:
    incident_id, _ = deliver(store, chain_message(*A, severity="Moderate"))
    deliver(store, chain_message(*U1, msg_type="Update", refs=(reference(*A),), severity="Severe"))  # III -> II
    # The second Update names only the first one, and raises the grade to I.
    _, [second] = deliver(store, chain_message(*U2, msg_type="Update", refs=(reference(*U1),), severity="Extreme"))
    assert second.outcome is TriageOutcome.updated and second.incident.id == incident_id
    assert store.list_incidents().total == 1  # no second incident at the new grade
    incident = store.get_incident(incident_id)
    assert incident is not None and incident.grade.value == "I"
    assert kinds(store, incident_id).count("grade_changed") == 2
    # Every message of the chain is remembered against the incident, whichever one a later message names.
    for identifier, _sent in (A, U1, U2):
        found = MessageKeys(store).incident_for([f"cap:KSTO@NWS.NOAA.GOV:{identifier}"], "actual")
        assert found is not None and found.id == incident_id


def test_references_in_any_order_find_the_open_incident(store: Store) -> None:
    incident_id, _ = deliver(store, chain_message(*A))
    deliver(store, chain_message(*U1, msg_type="Update", refs=(reference(*A),)))
    _, [closed] = deliver(store, chain_message(*C, msg_type="Cancel",
                                               refs=(reference("UNKNOWN-1", A[1]), reference(*U1), reference(*A))))
    assert closed.outcome is TriageOutcome.closed and closed.incident.id == incident_id


def test_a_cancel_naming_no_known_message_has_a_final_status(store: Store, db_url: str, tmp_path: Path) -> None:
    deliver(store, chain_message(*A))
    cancel_id, emitted = deliver(store, chain_message(*C, msg_type="Cancel", refs=(reference("NEVER-SENT", A[1]),)))
    assert emitted == []
    assert store.ignored_reason(cancel_id) == "references no known message"
    log = incident_log(store, cancel_id)  # was an AssertionError
    assert log is not None and log.incident is None and not log.waiting
    assert [(a.kind.value, a.details["reason"]) for a in log.actions] == [("ignored", "references no known message")]
    # A second Cancel of a closed incident says that instead.
    deliver(store, chain_message(*U1, msg_type="Cancel", refs=(reference(*A),)))
    late_id, _ = deliver(store, chain_message(*U2, msg_type="Cancel", refs=(reference(*A),)))
    assert "already closed" in (store.ignored_reason(late_id) or "")
    if db_url.startswith("sqlite"):  # the CLI on the same database: it used to crash with an AssertionError
        out = cli(pingan_env(tmp_path, PINGAN_DATABASE_URL=db_url), "timeline", cancel_id)
        assert out.returncode == 0, out.stderr
        assert "ignored" in out.stdout and "reason=references no known message" in out.stdout


def _respond(store: Store, incident_events: list[IncidentEvent], check_on: bool = True) -> list[str]:
    settings = Settings(district_area_check=check_on)
    areas = load_district(settings)
    plans = load_plans(PLANS_DIR)
    for event in incident_events:
        response_stage(store, plans, event, 1.0, areas)
    return kinds(store, incident_events[0].incident.id)


def test_an_alert_outside_the_district_activates_no_plan_and_is_logged_as_such(store: Store) -> None:
    _, events = deliver(store, chain_message(*A, inside=False))  # the real warning: California
    timeline = _respond(store, events)
    assert timeline == ["created", "area_checked"]
    entry = store.timeline(events[0].incident.id)[1]
    assert entry.details["area"] == "outside" and "outside our area" in entry.details["reason"]
    assert store.response_decided(events[0].incident.id) and store.response_plan(events[0].incident.id) is None
    assert store.ledger_for(events[0].incident.id) == []


def test_an_alert_for_a_district_area_activates_its_plan(store: Store) -> None:
    _, events = deliver(store, chain_message(*A, inside=True))
    timeline = _respond(store, events)
    assert timeline[:3] == ["created", "area_checked", "plan_activated"]
    entry = store.timeline(events[0].incident.id)[1]
    assert entry.details["area"] == "inside" and "淇澳社区" in entry.details["reason"]
    assert store.response_plan(events[0].incident.id) is not None
    assert store.ledger_for(events[0].incident.id)


def test_with_the_check_off_an_alert_from_elsewhere_is_planned_as_before(store: Store) -> None:
    _, events = deliver(store, chain_message(*A, inside=False))
    timeline = _respond(store, events, check_on=False)
    assert "area_checked" not in timeline and "plan_activated" in timeline


def test_an_update_of_an_outside_alert_still_activates_nothing(store: Store) -> None:
    incident_id, events = deliver(store, chain_message(*A, inside=False, severity="Moderate"))
    _respond(store, events)
    _, updates = deliver(store, chain_message(*U1, msg_type="Update", refs=(reference(*A),), inside=False,
                                              severity="Extreme"))
    assert updates[0].outcome is TriageOutcome.updated
    assert "plan_activated" not in _respond(store, updates)
    assert store.ledger_for(incident_id) == []


def _resident_text(store: Store) -> list[IncidentEvent]:
    """A resident's report of the same kind of event, naming no place, as the SMS intake makes it."""
    report = IncidentReport(source="hotline_sms", category="natural_disaster", subtype="meteorological",
                            hazard="thunderstorm", grade="IV", title="雷暴，树倒了")
    accepted = store.accept(report, TOPIC)
    [row] = [r for r in store.unpublished() if r.event_id == accepted.event_id]
    store.mark_published([row.event_id])
    areas = load_district(Settings())
    return triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW, None, areas).incident_events


def test_a_report_never_joins_a_warning_for_another_place(store: Store) -> None:
    deliver(store, chain_message(*A, inside=False))  # California's thunderstorm warning, open but not ours
    [event] = _resident_text(store)
    assert event.outcome is TriageOutcome.created
    assert store.list_incidents().total == 2


def test_a_report_still_joins_the_districts_warning(store: Store) -> None:
    incident_id, _ = deliver(store, chain_message(*A, inside=True))
    [event] = _resident_text(store)
    assert event.outcome is TriageOutcome.correlated and event.incident.id == incident_id

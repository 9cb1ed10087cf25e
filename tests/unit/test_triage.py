from datetime import UTC, datetime, timedelta

from pingan.handlers.incidents.triage import triage
from pingan.schemas.action import ActionKind
from pingan.schemas.events import RawEvent, TriageOutcome
from pingan.schemas.incident import IncidentReport

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)


def raw(n: int, at: datetime = T0, status: str = "actual", key: str = "warehouse-7") -> RawEvent:
    report = IncidentReport(category="accident_disaster", subtype="fire", grade="III", title=f"仓库起火 {n}",
                            dedup_key=key, status=status)
    return RawEvent(event_id=f"ev{n}", proposed_incident_id=f"INC-{n}", received_at=at, report=report)


def test_first_report_creates_the_incident_with_the_proposed_id() -> None:
    decision = triage(raw(1), None, WINDOW)
    assert decision.outcome is TriageOutcome.created
    assert decision.incident.id == "INC-1" and decision.incident.dedup_key == "warehouse-7"
    assert [a.kind for a in decision.actions] == [ActionKind.created]
    assert decision.actions[0].idempotency_key == "created:INC-1"


def test_same_key_within_window_correlates() -> None:
    first = triage(raw(1), None, WINDOW).incident
    decision = triage(raw(2, T0 + timedelta(minutes=10)), first, WINDOW)
    assert decision.outcome is TriageOutcome.correlated
    assert decision.incident.id == "INC-1" and decision.incident.report_count == 2
    assert decision.actions[0].kind is ActionKind.correlated
    assert decision.actions[0].details["event_id"] == "ev2"


def test_window_counts_from_the_latest_report() -> None:
    first = triage(raw(1), None, WINDOW).incident
    second = triage(raw(2, T0 + timedelta(minutes=50)), first, WINDOW).incident
    third = triage(raw(3, T0 + timedelta(minutes=100)), second, WINDOW)
    assert third.outcome is TriageOutcome.correlated


def test_outside_window_creates_a_new_incident() -> None:
    first = triage(raw(1), None, WINDOW).incident
    decision = triage(raw(2, T0 + timedelta(hours=2)), first, WINDOW)
    assert decision.outcome is TriageOutcome.created and decision.incident.id == "INC-2"


def test_exercise_never_joins_an_actual_incident() -> None:
    actual = triage(raw(1), None, WINDOW).incident
    decision = triage(raw(2, status="exercise"), actual, WINDOW)
    assert decision.outcome is TriageOutcome.created
    assert decision.incident.status.value == "exercise"


def event_of(kind: str, n: int, grade: str = "III", at: datetime = T0, key: str = "warehouse-7") -> RawEvent:
    report = IncidentReport(category="accident_disaster", subtype="fire", grade=grade, title=f"更新 {n}",
                            dedup_key=key, source="cap")
    return RawEvent(event_id=f"ev{n}", kind=kind, proposed_incident_id=f"INC-{n}", received_at=at, report=report)


def test_update_changes_the_incident_and_logs_a_grade_change() -> None:
    first = triage(event_of("report", 1), None, WINDOW).incident  # the same source's: see the refusals below
    decision = triage(event_of("update", 2, grade="II", at=T0 + timedelta(days=3)), first, WINDOW)
    assert decision.outcome is TriageOutcome.updated
    assert decision.incident.id == "INC-1" and decision.incident.grade.value == "II"
    assert [a.kind for a in decision.actions] == [ActionKind.updated, ActionKind.grade_changed]
    assert decision.actions[1].details["from"] == "III" and decision.actions[1].details["to"] == "II"


def test_close_closes_the_open_incident_at_any_age() -> None:
    first = triage(event_of("report", 1), None, WINDOW).incident
    decision = triage(event_of("close", 2, at=T0 + timedelta(days=30)), first, WINDOW)
    assert decision.outcome is TriageOutcome.closed
    assert decision.incident.state.value == "closed"
    assert decision.actions[0].kind is ActionKind.closed and decision.actions[0].details["reason"] == "CAP Cancel"


def test_close_without_an_open_incident_is_ignored() -> None:
    decision = triage(event_of("close", 2), None, WINDOW)
    # Changes nothing, but says why under the id it was accepted with: its status is final, not "accepted".
    assert decision.outcome is TriageOutcome.ignored
    assert [a.kind for a in decision.actions] == [ActionKind.ignored]
    assert decision.actions[0].incident_id == decision.incident.id == "INC-2"
    assert decision.actions[0].idempotency_key == "ignored:ev2"
    assert "no open" in decision.actions[0].details["reason"]
    closed = triage(event_of("close", 3), None, WINDOW).incident
    again = triage(event_of("close", 4), closed, WINDOW)
    assert again.outcome is TriageOutcome.ignored


def test_update_without_its_original_creates_the_incident() -> None:
    decision = triage(event_of("update", 5), None, WINDOW)
    assert decision.outcome is TriageOutcome.created
    assert decision.actions[0].details["update_without_original"] is True


# ── Issue 14, finding 4: an update or close applies only to its own sender's incident ────────────────────────────

def sent_by(kind: str, n: int, source: str, **labels: str) -> RawEvent:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", grade="III", title=f"预警 {n}",
                            dedup_key="cap:KSTO:TS-1", source=source, labels=labels)
    return RawEvent(event_id=f"ev{n}", kind=kind, proposed_incident_id=f"INC-{n}", received_at=T0, report=report)


def test_another_senders_cancel_or_update_is_refused_and_changes_nothing() -> None:
    alert = triage(sent_by("report", 1, "cap", cap_sender="KSTO"), None, WINDOW).incident
    for kind in ("close", "update"):
        decision = triage(sent_by(kind, 2, "cap", cap_sender="MALLORY"), alert, WINDOW)
        assert decision.outcome is TriageOutcome.ignored and decision.incident.id == "INC-2"  # not INC-1
        [entry] = decision.actions
        assert entry.kind is ActionKind.refused and entry.incident_id == "INC-2"
        assert entry.details["incident"] == "INC-1"
        assert "'MALLORY'" in entry.details["reason"] and "'KSTO'" in entry.details["reason"]
        assert entry.idempotency_key == "ignored:ev2"  # its status URL gives the refusal as its final answer
    assert triage(sent_by("close", 3, "cap", cap_sender="KSTO"), alert, WINDOW).outcome is TriageOutcome.closed


def test_an_alertmanager_or_api_close_of_another_sources_incident_is_refused() -> None:
    prod = triage(sent_by("report", 1, "alertmanager", am_source="prod"), None, WINDOW).incident
    for forged in (sent_by("close", 2, "alertmanager", am_source="alertmanager"), sent_by("close", 3, "api"),
                   sent_by("close", 4, "alertmanager")):  # no label: the single token's, from before bindings
        assert triage(forged, prod, WINDOW).actions[0].kind is ActionKind.refused
    assert triage(sent_by("close", 5, "alertmanager", am_source="prod"), prod, WINDOW).outcome is TriageOutcome.closed
    old = triage(sent_by("report", 6, "alertmanager"), None, WINDOW).incident  # opened before bindings existed
    closing = sent_by("close", 7, "alertmanager", am_source="alertmanager")
    assert triage(closing, old, WINDOW).outcome is TriageOutcome.closed
    # An API report's own follow-ups are as before.
    mine = triage(raw(8), None, WINDOW).incident
    assert triage(RawEvent(event_id="ev9", kind="close", proposed_incident_id="INC-9", received_at=T0,
                           report=raw(9).report), mine, WINDOW).outcome is TriageOutcome.closed

"""A drill run's clock in the store and over HTTP (issue 14, finding 10): registered with the run by a person with
drills.start, read only by the run's exercise incidents; an actual incident keeps the default whatever its labels."""

from fastapi.testclient import TestClient

from pingan.handlers.access.permissions import Role
from pingan.handlers.incidents.escalation import grade_raise
from pingan.schemas.incident import IncidentReport
from pingan.store.drills import DrillStore
from pingan.store.repository import Store
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import Rig


def _report(status: str, run: str | None) -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade="III", title="仓库起火", status=status,
                          source="drill" if status != "actual" else "api",
                          labels={"drill_run": run} if run else {})


def test_only_a_registered_runs_exercise_incidents_read_its_clock(db_url: str) -> None:
    store = Store(db_url)
    drills = DrillStore(store)
    row = drills.register("run-x120", "时钟", False, [], time_scale=120)
    assert row.time_scale == 120
    assert drills.register("run-plain", "无时钟", False, []).time_scale is None
    assert drills.clock_of(_report("exercise", "run-x120")) == 120
    assert drills.clock_of(_report("exercise", "run-plain"), 60) == 60  # registered without a speed: the stack's
    assert drills.clock_of(_report("exercise", "never-registered")) == 1
    assert drills.clock_of(_report("exercise", None), 1) == 1
    # An actual incident that claims a drill's label still runs on real time.
    assert drills.clock_of(_report("actual", "run-x120")) == 1
    store.close()


def test_grade_windows_are_the_incidents_minutes() -> None:
    from datetime import UTC, datetime, timedelta

    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR

    rules = load_plans(PLANS_DIR).get("food-poisoning").escalate_grade  # type: ignore[union-attr]
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    # Five reports 2 real seconds apart: 20 minutes apart at x600, so no 30-minute window holds five.
    times = [now - timedelta(seconds=2 * k) for k in range(5)]
    assert grade_raise(rules, "IV", times, now, {}) == ("III", "reports-surge-iii")  # real minutes: 8 s is nothing
    assert grade_raise(rules, "IV", times, now, {}, time_scale=600) is None
    # Five within 8 drill minutes (0.8 s at x600) hold the rule.
    quick = [now - timedelta(seconds=0.2 * k) for k in range(5)]
    assert grade_raise(rules, "IV", quick, now, {}, time_scale=600) == ("III", "reports-surge-iii")


def test_the_speed_is_validated_and_needs_drill_permission(tmp_path) -> None:  # type: ignore[no-untyped-def]
    twilio = FakeTwilio().start()
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'pingan.db'}", twilio)
    try:
        client: TestClient = rig.client()
        coordinator = rig.bearer(Role.drill_coordinator)
        for speed in (0, -1, 100_000):
            bad = client.post("/v1/drills", json={"run_id": "r1", "title": "t", "speed": speed}, headers=coordinator)
            assert bad.status_code == 422 and "speed" in bad.text, bad.text
        refused = client.post("/v1/drills", json={"run_id": "r1", "title": "t", "speed": 120},
                              headers=rig.bearer(Role.duty_officer))
        assert refused.status_code == 403
        ok = client.post("/v1/drills", json={"run_id": "r1", "title": "t", "speed": 120}, headers=coordinator)
        assert ok.status_code == 201 and ok.json()["speed"] == 120
        assert DrillStore(rig.store).time_scale("r1") == 120
    finally:
        rig.close()
        twilio.stop()


def test_the_correlation_window_is_the_drills_minutes(db_url: str) -> None:
    """A one-hour window at x600 is six real seconds for the drill's reports; an actual incident keeps its hour."""
    from datetime import timedelta

    from pingan.schemas.events import IntakeItem, RawEvent, TriageOutcome
    from pingan.streams.stages import triage_stage

    store = Store(db_url)
    DrillStore(store).register("clock-600", "时钟", False, [], time_scale=600)
    window = timedelta(hours=1)

    def triaged(status: str, run: str | None, after_s: float, t0: list) -> TriageOutcome:  # type: ignore[type-arg]
        report = _report(status, run).model_copy(update={"dedup_key": f"warehouse-{status}"})
        accepted = store.accept(IntakeItem(report=report), "raw")
        row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
        store.mark_published([row.event_id])
        event = RawEvent.model_validate_json(row.payload)
        t0.append(t0[0] if t0 else event.received_at)
        event = event.model_copy(update={"received_at": t0[0] + timedelta(seconds=after_s)})
        return triage_stage(store, event, window).incident_events[0].outcome

    drill: list = []  # type: ignore[type-arg]
    assert triaged("exercise", "clock-600", 0, drill) is TriageOutcome.created
    assert triaged("exercise", "clock-600", 5, drill) is TriageOutcome.correlated  # 50 drill minutes later
    assert triaged("exercise", "clock-600", 12, drill) is TriageOutcome.created  # 70 drill minutes after the last
    real: list = []  # type: ignore[type-arg]
    assert triaged("actual", "clock-600", 0, real) is TriageOutcome.created
    assert triaged("actual", "clock-600", 12, real) is TriageOutcome.correlated  # 12 real seconds
    store.close()


def test_deadlines_count_from_the_plan_activated_entry(db_url: str) -> None:
    """A delayed step is due exactly its delay after the activation the log shows (it counted from after the
    decision's commit, so every delayed step started as late as that commit took)."""
    from datetime import timedelta

    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR
    from pingan.schemas.events import IntakeItem, RawEvent
    from pingan.store.response import ResponseStore
    from pingan.streams.stages import response_stage, triage_stage

    store = Store(db_url)
    accepted = store.accept(IntakeItem(report=_report("actual", None)), "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    event = triage_stage(store, RawEvent.model_validate_json(row.payload), timedelta(hours=1)).incident_events[0]
    response_stage(store, load_plans(PLANS_DIR), event, time_scale=60.0)
    activated = next(a.at for a in store.timeline(event.incident.id) if a.kind.value == "plan_activated")
    step = next(r for r in ResponseStore(store).pending(event.incident.id) if r.step_id == "commander-voice"
                and r.kind == "step")
    assert step.due_at - activated == timedelta(seconds=10), (activated, step.due_at)  # t+10 at 60x
    store.close()


def test_grade_windows_count_when_reports_came_not_when_triage_got_to_them(db_url: str) -> None:
    """Five drill reports 20 plan minutes apart (2 s at x600) that a backlog triages within a second: no 30-minute
    window holds five, so the food-poisoning plan's surge rule must not raise the incident."""
    from datetime import timedelta

    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR
    from pingan.schemas.events import IntakeItem, RawEvent
    from pingan.streams.stages import response_stage, triage_stage

    plans = load_plans(PLANS_DIR)
    store = Store(db_url)
    DrillStore(store).register("surge-600", "时钟", False, [], time_scale=600)
    report = IncidentReport(category="public_health", subtype="food_occupational_poisoning", grade="IV",
                            title="演练：食堂多人腹泻", status="exercise", source="drill", dedup_key="canteen",
                            labels={"drill_run": "surge-600"})
    t0 = None
    for k in range(5):
        accepted = store.accept(IntakeItem(report=report), "raw")
        row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
        store.mark_published([row.event_id])
        event = RawEvent.model_validate_json(row.payload)
        t0 = t0 or event.received_at - timedelta(seconds=10)  # received 2 s apart, 10 s ago; triaged just now
        event = event.model_copy(update={"received_at": t0 + timedelta(seconds=2 * k)})
        for out in triage_stage(store, event, timedelta(hours=1)).incident_events:
            response_stage(store, plans, out)
    incident = store.list_incidents().items[0]
    assert incident.report_count == 5 and incident.grade.value == "IV", (incident.report_count, incident.grade)
    store.close()

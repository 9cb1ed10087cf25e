"""A grade change re-plans the remaining steps with the new level's chain (store + stages, both databases)."""

from datetime import timedelta

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent, RawKind
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.store.response import ResponseStore
from pingan.streams.stages import response_stage, triage_stage

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)


def run(store: Store, kind: RawKind, grade: str) -> None:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", hazard="typhoon", grade=grade,
                            title="台风", dedup_key="cap:weather:typhoon-1", source="cap")
    accepted = store.accept(IntakeItem(kind=kind, report=report), "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)


def test_grade_change_replans_with_the_new_level(store: Store) -> None:
    run(store, RawKind.report, "III")
    incident = store.list_incidents().items[0]
    responses = ResponseStore(store)
    before = {e.notification.idempotency_key for e in store.ledger_for(incident.id)}
    assert responses.response_grade(incident.id) == "III"
    assert {r.grade for r in responses.pending(incident.id)} == {"III"}

    run(store, RawKind.update, "II")
    kinds = [a.kind.value for a in store.timeline(incident.id)]
    assert kinds.count("plan_activated") == 2 and "grade_changed" in kinds
    activated = [a for a in store.timeline(incident.id) if a.kind.value == "plan_activated"]
    assert activated[-1].details["response_level"] == "二级响应"
    after = store.ledger_for(incident.id)
    new = [e for e in after if e.notification.idempotency_key not in before]
    assert new and {e.notification.step for e in new} >= {"duty-officer-sms"}
    # The grade III deadlines are cancelled; the grade II ones are pending.
    assert {r.grade for r in responses.pending(incident.id)} == {"II"}
    # Replaying the update changes nothing.
    run(store, RawKind.update, "II")
    assert len(store.ledger_for(incident.id)) == len(after)


def test_report_surge_raises_the_grade_by_the_plans_rule(store: Store) -> None:
    def report(n: int) -> None:
        item = IntakeItem(report=IncidentReport(category="accident_disaster", subtype="fire", grade="IV",
                                                title=f"商场冒烟 {n}", dedup_key="mall-smoke"))
        accepted = store.accept(item, "raw")
        row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
        store.mark_published([row.event_id])
        for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
            response_stage(store, PLANS, event, time_scale=1.0)

    for n in range(4):
        report(n)
    incident = store.list_incidents().items[0]
    assert incident.grade.value == "IV"
    report(4)  # the fifth report within 15 minutes trips building-fire's reports-surge-iii
    incident = store.get_incident(incident.id)
    assert incident is not None and incident.grade.value == "III"
    changed = [a for a in store.timeline(incident.id) if a.kind.value == "grade_changed"]
    assert changed[0].details == {"from": "IV", "to": "III", "rule": "reports-surge-iii"}
    assert ResponseStore(store).response_grade(incident.id) == "III"
    assert [a.details["response_level"] for a in store.timeline(incident.id) if a.kind.value == "plan_activated"] \
        == ["四级响应", "三级响应"]

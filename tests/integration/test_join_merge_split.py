"""Reports join their event across sources, carry their facts in, and the duty officer can merge and split
(store + stages, both databases; the broker's part is covered by test_pipeline)."""

from datetime import timedelta

import pytest

from pingan.commands import merge_incidents, split_report
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport, Location
from pingan.store.merges import reports_of
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)
TOWN, TANGJIA, QIAO = "440402100", "440402100001", "440402100009"


def deliver(store: Store, item: IntakeItem) -> str:
    """Accept one intake item and run it through triage and the response, as the worker's agents would."""
    accepted = store.accept(item, "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)
    return accepted.event_id


def typhoon_warning(grade: str = "II") -> IntakeItem:
    return IntakeItem(report=IncidentReport(
        source="cap", category="natural_disaster", subtype="meteorological", hazard="typhoon", grade=grade,
        title="台风橙色预警", dedup_key="cap:observatory:hato-1",
        location=Location(area_code=TOWN, area_name="唐家湾镇")))


def citizen(title: str, area: str | None = TANGJIA, name: str | None = "唐家社区", **labels: str) -> IntakeItem:
    return IntakeItem(report=IncidentReport(
        source="hotline_sms", category="natural_disaster", subtype="meteorological", grade="IV", title=title,
        location=Location(area_code=area, area_name=name), labels=labels))


def notified_steps(store: Store, incident_id: str) -> list[str]:
    return sorted(e.notification.idempotency_key for e in store.ledger_for(incident_id))


def test_citizen_texts_join_the_warning_once_and_their_deaths_raise_its_grade(store: Store) -> None:
    deliver(store, typhoon_warning())
    [warning] = store.list_incidents().items
    ledger = notified_steps(store, warning.id)
    for n, (title, where) in enumerate([("大树倒了压住车", TANGJIA), ("水浸街，车都开不动", QIAO)] * 5):
        deliver(store, citizen(f"{title} {n}", area=where, name=None))
    assert store.list_incidents().total == 1  # ten texts, one incident
    timeline = store.timeline(warning.id)
    assert [a.kind.value for a in timeline].count("plan_activated") == 1
    assert notified_steps(store, warning.id) == ledger  # no second set of department messages
    joined = [a for a in timeline if a.kind.value == "correlated"]
    assert len(joined) == 10 and {a.details["joined_by"] for a in joined} == {"same event"}
    assert len(reports_of(store, warning)) == 11



def test_a_joining_report_of_three_deaths_raises_the_warning_by_the_casualties_rule(store: Store) -> None:
    deliver(store, typhoon_warning("III"))
    [warning] = store.list_incidents().items
    deliver(store, citizen("大树倒了"))
    deliver(store, citizen("塌楼了，死了3个人", deaths="3"))
    incident = store.get_incident(warning.id)
    assert incident is not None and incident.labels["casualties"] == "3" and incident.report_count == 3
    assert incident.grade.value == "II"  # typhoon's casualties-ii (≥ 3), not the report surge (5 in 30 min)
    changed = [a for a in store.timeline(warning.id) if a.kind.value == "grade_changed"]
    assert changed[-1].details == {"from": "III", "to": "II", "rule": "casualties-ii"}


def test_a_text_outside_the_warned_area_or_of_another_kind_opens_its_own(store: Store) -> None:
    deliver(store, IntakeItem(report=typhoon_warning().report.model_copy(
        update={"location": Location(area_code=QIAO, area_name="淇澳社区")})))
    deliver(store, citizen("大树倒了", area=TANGJIA))  # Tangjia is not in the Qi'ao warning
    assert store.list_incidents().total == 2


def test_merge_and_split_are_logged_and_change_the_reports(store: Store) -> None:
    deliver(store, citizen("唐家市场着火", name="唐家社区").model_copy(update={"report": IncidentReport(
        source="hotline_sms", category="accident_disaster", subtype="fire", grade="III", title="唐家市场着火",
        location=Location(area_code=TANGJIA, area_name="唐家社区"))}))
    deliver(store, IntakeItem(report=IncidentReport(
        source="api", category="accident_disaster", subtype="fire", grade="III", title="Market fire at Tangjia",
        dedup_key="api:fire-2")))  # no place: a second incident, as it should be (duplicate, not silence)
    first, second = sorted(store.list_incidents().items, key=lambda i: i.received_at)
    merged = merge_incidents(store, first.id, second.id, "wang-fang", "same fire")
    assert merged.incident.report_count == 2
    closed = store.get_incident(second.id)
    assert closed is not None and closed.state.value == "closed" and closed.labels["merged_into"] == first.id
    assert [a.kind.value for a in store.timeline(first.id)][-1] == "merged"
    assert store.timeline(second.id)[-1].details["merged_into"] == first.id
    target = store.get_incident(first.id)
    assert target is not None and [r.event.report.title for r in reports_of(store, target)] == [
        "唐家市场着火", "Market fire at Tangjia"]
    with pytest.raises(CommandRefused, match="closed"):
        merge_incidents(store, first.id, second.id, "wang-fang")

    # Split a correlated report back out: it becomes an incident of its own, through intake and triage.
    extra = deliver(store, IntakeItem(report=IncidentReport(
        source="hotline_sms", category="accident_disaster", subtype="fire", grade="IV", title="楼上那家也冒烟了",
        location=Location(area_code=TANGJIA, area_name="唐家社区"))))
    target = store.get_incident(first.id)
    assert target is not None and target.report_count == 3
    with pytest.raises(CommandRefused, match="opened"):
        split_report(store, first.id, reports_of(store, target)[0].event_id, "wang-fang", "raw")
    result, new_id = split_report(store, first.id, extra, "wang-fang", "raw", "another flat")
    assert result.incident.report_count == 2 and result.actions[0].kind.value == "split"
    with pytest.raises(CommandRefused, match="already split"):
        split_report(store, first.id, extra, "wang-fang", "raw")
    row = next(r for r in store.unpublished() if r.event_id != extra)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)
    assert store.resolve_incident_id(new_id) == new_id  # a new incident, not joined back
    split_out = store.get_incident(new_id)
    assert split_out is not None and split_out.labels["split_from"] == first.id
    assert [a.kind.value for a in store.timeline(new_id)][:2] == ["created", "plan_activated"]
    target = store.get_incident(first.id)
    assert target is not None and extra not in [r.event_id for r in reports_of(store, target)]

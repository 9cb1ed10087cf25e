"""The duty officer's merge and split decisions (handlers/incidents/merge.py)."""

from datetime import UTC, datetime

import pytest

from pingan.handlers.incidents.escalation import CommandRefused
from pingan.handlers.incidents.merge import decide_merge, decide_split
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import Incident, IncidentReport, Location
from pingan.schemas.taxonomy import IncidentState, IncidentStatus

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def incident(id: str, **changes: object) -> Incident:
    fields: dict[str, object] = dict(id=id, category="accident_disaster", subtype="fire", grade="III", title="起火",
                                     dedup_key=f"k-{id}", received_at=T0, last_report_at=T0)
    fields.update(changes)
    return Incident(**fields)  # type: ignore[arg-type]


def test_merge_adds_reports_and_facts_and_closes_the_other() -> None:
    a = incident("INC-A", report_count=2, labels={"casualties": "1"})
    b = incident("INC-B", report_count=3, labels={"casualties": "4"}, location=Location(area_name="唐家社区"))
    decision = decide_merge(a, b, "wang-fang", T0, None)
    assert decision.target.report_count == 5 and decision.target.labels["casualties"] == "4"
    assert decision.target.labels["merged_from"] == "INC-B" and decision.target.labels["places"] == "唐家社区"
    assert decision.source.state is IncidentState.closed and decision.source.labels["merged_into"] == "INC-A"
    assert [(x.incident_id, x.kind.value) for x in decision.actions] == [("INC-A", "merged"), ("INC-B", "closed")]
    assert decision.actions[1].details == {"reason": "merged into INC-A", "merged_into": "INC-A"}


@pytest.mark.parametrize(("a", "b", "why"), [
    (incident("INC-A"), incident("INC-A"), "into itself"),
    (incident("INC-A"), incident("INC-B", state=IncidentState.closed), "closed"),
    (incident("INC-A"), incident("INC-B", status=IncidentStatus.exercise), "exercise never joins"),
])
def test_merge_refusals_say_why(a: Incident, b: Incident, why: str) -> None:
    with pytest.raises(CommandRefused, match=why):
        decide_merge(a, b, "wang-fang", T0, None)


def test_split_sends_the_report_through_intake_again_never_to_join() -> None:
    a = incident("INC-A", report_count=3)
    report = IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title="楼上也冒烟")
    event = RawEvent(event_id="e2", proposed_incident_id="INC-X", received_at=T0, report=report)
    decision = decide_split(a, event, "e1", "wang-fang", T0, "another flat")
    assert decision.incident.report_count == 2 and decision.incident.labels["split_out"] == "e2"
    assert decision.report.labels["split_from"] == "INC-A" and decision.report.dedup_key == "split:e2"
    assert decision.source_key == "split:e2" and decision.actions[0].kind.value == "split"
    with pytest.raises(CommandRefused, match="opened INC-A"):
        decide_split(a, event.model_copy(update={"event_id": "e1"}), "e1", "wang-fang", T0, None)

"""Triage: does a raw event start a new incident or join an open one? Pure: data in, decision out."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.events import RawEvent, TriageOutcome
from pingan.schemas.incident import Incident

ACTOR = "system:triage"


@dataclass(frozen=True)
class TriageDecision:
    outcome: TriageOutcome
    incident: Incident
    actions: list[ActionDraft]


def within_window(incident: Incident, at: datetime, window: timedelta) -> bool:
    last = incident.last_report_at or incident.received_at
    return at - last <= window


def triage(event: RawEvent, candidate: Incident | None, window: timedelta) -> TriageDecision:
    """`candidate` is the open incident with the event's dedup_key and status, if the store has one."""
    report = event.report
    if candidate is not None and candidate.status == report.status and within_window(
        candidate, event.received_at, window
    ):
        joined = candidate.model_copy(
            update={"report_count": candidate.report_count + 1, "last_report_at": event.received_at}
        )
        action = ActionDraft(
            incident_id=joined.id,
            at=event.received_at,
            actor=ACTOR,
            kind=ActionKind.correlated,
            details={
                "event_id": event.event_id,
                "source": report.source.value,
                "title": report.title,
                "reported_grade": report.grade.value,
                "report_count": joined.report_count,
                "reporter": report.reporter.model_dump(exclude_none=True) if report.reporter else None,
            },
            idempotency_key=f"correlated:{event.event_id}",
        )
        return TriageDecision(TriageOutcome.correlated, joined, [action])

    fields = report.model_dump()
    fields["dedup_key"] = report.effective_dedup_key()
    incident = Incident(
        **fields, id=event.proposed_incident_id, received_at=event.received_at, last_report_at=event.received_at
    )
    action = ActionDraft(
        incident_id=incident.id,
        at=event.received_at,
        actor=ACTOR,
        kind=ActionKind.created,
        details={
            "event_id": event.event_id,
            "source": incident.source.value,
            "status": incident.status.value,
            "category": incident.category.value,
            "subtype": incident.subtype.value,
            "grade": incident.grade.value,
            "title": incident.title,
            "dedup_key": incident.dedup_key,
        },
        idempotency_key=f"created:{incident.id}",
    )
    return TriageDecision(TriageOutcome.created, incident, [action])

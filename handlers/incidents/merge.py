"""The duty officer corrects correlation: merge two incidents of one event, or split a report out into its own.

Merging B into A closes B (its escalations stop) with the reason "merged into A", adds B's reports and facts to A,
and logs the merge on both. Splitting report E out of A takes one report from A and sends it through intake again as a
report of its own (it never joins an incident again by itself: handlers.incidents.correlation.NO_JOIN_LABEL), so it
gets its own triage, plan and notifications; A keeps its other reports. Pure: data in, decision out.
"""

from dataclasses import dataclass
from datetime import datetime

from pingan.handlers.incidents.correlation import NO_JOIN_LABEL, merged_facts
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.taxonomy import IncidentState

MERGED_FROM, MERGED_INTO, SPLIT_OUT = "merged_from", "merged_into", "split_out"


@dataclass(frozen=True)
class MergeDecision:
    target: Incident  # A, with B's reports and facts
    source: Incident  # B, closed
    actions: list[ActionDraft]


@dataclass(frozen=True)
class SplitDecision:
    incident: Incident  # A, one report fewer
    report: IncidentReport  # the report, to be accepted again on its own
    source_key: str  # intake's idempotency key for it: a repeated split accepts it once
    actions: list[ActionDraft]


def _present(details: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in details.items() if v is not None}


def _listed(labels: dict[str, str], key: str) -> list[str]:
    return [v for v in labels.get(key, "").split(",") if v]


def decide_merge(target: Incident, source: Incident, actor: str, at: datetime, reason: str | None) -> MergeDecision:
    if target.id == source.id:
        raise CommandRefused("an incident cannot be merged into itself")
    for incident in (target, source):
        if incident.state is IncidentState.closed:
            raise CommandRefused(f"incident {incident.id} is closed")
    if target.status != source.status:
        raise CommandRefused(f"{source.id} is {source.status.value} and {target.id} is {target.status.value}: "
                             "an exercise never joins an actual incident")
    labels = merged_facts(target, source)  # B's counted facts and place, as a report's would be
    labels[MERGED_FROM] = ",".join(dict.fromkeys([*_listed(target.labels, MERGED_FROM), source.id,
                                                  *_listed(source.labels, MERGED_FROM)]))
    latest = max(t for t in (target.last_report_at, source.last_report_at, target.received_at) if t is not None)
    merged = target.model_copy(update={"report_count": target.report_count + source.report_count,
                                       "last_report_at": latest, "labels": labels})
    closed = source.model_copy(update={"state": IncidentState.closed,
                                       "labels": {**source.labels, MERGED_INTO: target.id}})
    why = reason or f"merged into {target.id}"
    actions = [
        ActionDraft(incident_id=target.id, at=at, actor=actor, kind=ActionKind.merged,
                    details=_present({"from": source.id, "reports": source.report_count, "reason": reason,
                                      "report_count": merged.report_count}),
                    idempotency_key=f"merged:{source.id}:into:{target.id}"),
        ActionDraft(incident_id=source.id, at=at, actor=actor, kind=ActionKind.closed,
                    details={"reason": why, "merged_into": target.id},
                    idempotency_key=f"closed:{source.id}:merged"),
    ]
    return MergeDecision(merged, closed, actions)


def decide_split(incident: Incident, event: RawEvent, first_event_id: str | None, actor: str, at: datetime,
                 reason: str | None) -> SplitDecision:
    if incident.state is IncidentState.closed:
        raise CommandRefused(f"incident {incident.id} is closed")
    if event.event_id == first_event_id:
        raise CommandRefused(f"report {event.event_id} opened {incident.id}; split the others out instead")
    if event.event_id in _listed(incident.labels, SPLIT_OUT):
        raise CommandRefused(f"report {event.event_id} is already split out of {incident.id}")
    report = event.report.model_copy(update={
        "dedup_key": f"split:{event.event_id}",
        "labels": {**event.report.labels, NO_JOIN_LABEL: incident.id},
    })
    labels = {**incident.labels, SPLIT_OUT: ",".join([*_listed(incident.labels, SPLIT_OUT), event.event_id])}
    remaining = incident.model_copy(update={"report_count": max(1, incident.report_count - 1), "labels": labels})
    action = ActionDraft(incident_id=incident.id, at=at, actor=actor, kind=ActionKind.split,
                         details=_present({"event_id": event.event_id, "title": event.report.title,
                                           "reason": reason, "report_count": remaining.report_count}),
                         idempotency_key=f"split:{event.event_id}")
    return SplitDecision(remaining, report, f"split:{event.event_id}", [action])

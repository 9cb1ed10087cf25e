"""Triage: does a raw event start an incident, join one, change one or close one? Pure: data in, decision out."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pingan.handlers.incidents.correlation import merged_facts
from pingan.handlers.incidents.placement import Placer, placed_report
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.events import RawEvent, RawKind, TriageOutcome
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.taxonomy import IncidentState, Source

ACTOR = "system:triage"
REFERENCES_UNKNOWN = "references no known message"  # a CAP follow-up naming no message triage has applied
# What an update may change; the rest (id, source, status, taxonomy) belongs to the original report.
_UPDATABLE = ("grade", "warning_colour", "title", "description", "location", "areas", "occurred_at", "hazard")


@dataclass(frozen=True)
class TriageDecision:
    outcome: TriageOutcome
    incident: Incident
    actions: list[ActionDraft]


def within_window(incident: Incident, at: datetime, window: timedelta) -> bool:
    last = incident.last_report_at or incident.received_at
    return at - last <= window


def needs_window(event: RawEvent) -> bool:
    """Reports join within the window; an update or close names its incident and applies at any age."""
    return event.kind is RawKind.report


def origin(source: Source, labels: dict[str, str]) -> str | None:
    """Who may follow an incident up (update or close it): its CAP sender, its Alertmanager binding (the intake
    token's name, `am_source`; incidents from before bindings are the single token's); None for the other sources.
    The adapters write these labels last, so a message's own labels or parameters cannot claim them."""
    if source is Source.cap:
        return f"CAP sender {labels.get('cap_sender', '')!r}"
    if source is Source.alertmanager:
        return f"Alertmanager source {labels.get('am_source', 'alertmanager')!r}"
    return None


def follow_up_refusal(kind: RawKind, report: IncidentReport, candidate: Incident | None) -> str | None:
    """Why an update or close may not touch `candidate`, or None. Update and Cancel apply only to the same sender's
    messages (issue 14, finding 4): another CAP sender, another Alertmanager, or an API report naming a CAP or
    Alertmanager incident's key is refused, whatever token it came with."""
    if candidate is None or kind not in (RawKind.update, RawKind.close):
        return None
    theirs, ours = origin(candidate.source, candidate.labels), origin(report.source, report.labels)
    if theirs == ours:
        return None
    # The incident's id is not named: the sender of the refused message may not read it (the log entry has it).
    return (f"refused: a {kind.value} from {ours or report.source.value} names a message of "
            f"{theirs or candidate.source.value}; updates and cancels apply only to the same sender's messages")


def triage(event: RawEvent, candidate: Incident | None, window: timedelta,
           placer: Placer | None = None) -> TriageDecision:
    """`candidate` is the open incident with the event's dedup_key and status, if the store has one; for a follow-up
    naming earlier messages (event.references), the incident of any of them, possibly a closed one.
    `placer`: the district's areas (handlers/incidents/placement.py, built once at bootstrap); with it, the report
    is placed in the area hierarchy first (`location.placement`), so a new incident, an update and the log carry
    it. Placing never changes the dedup key (the key uses the report's own area code)."""
    if placer is not None:
        event = event.model_copy(update={"report": placed_report(event.report, placer)})
    elif event.report.location.placement is not None:  # only triage places: a source's own claim is dropped
        location = event.report.location.model_copy(update={"placement": None})
        event = event.model_copy(update={"report": event.report.model_copy(update={"location": location})})
    report = event.report
    if candidate is not None and (refusal := follow_up_refusal(event.kind, report, candidate)):
        return _refused(event, candidate, refusal)
    usable = candidate is not None and candidate.status == report.status and candidate.state != IncidentState.closed
    if usable and needs_window(event):
        usable = within_window(candidate, event.received_at, window)  # type: ignore[arg-type]
    if usable and candidate is not None:
        if event.kind is RawKind.close:
            return _close(event, candidate)
        if event.kind is RawKind.update:
            return _update(event, candidate)
        return _correlate(event, candidate)
    if event.kind is RawKind.close:
        # Nothing open to close (already closed, or never seen): change nothing, and log why under the id the event
        # was accepted with, so its status is final and says so (store.ignored_reason).
        placeholder = _new_incident(event).model_copy(update={"state": IncidentState.closed})
        return TriageDecision(TriageOutcome.ignored, placeholder, [_draft(event, placeholder.id, ActionKind.ignored, {
            "reason": ignored_reason(event, candidate), "kind": event.kind.value})])
    incident = _new_incident(event)
    return TriageDecision(TriageOutcome.created, incident, [_draft(event, incident.id, ActionKind.created, {
        "status": incident.status.value,
        "category": incident.category.value,
        "subtype": incident.subtype.value,
        "grade": incident.grade.value,
        "dedup_key": incident.dedup_key,
        **_placement_details(incident),
        "update_without_original": event.kind is RawKind.update or None,
        # An Update is a whole message: with nothing to apply it to, a new incident beats silence.
        "reason": f"an update that {REFERENCES_UNKNOWN}: opened as a new incident"
        if event.kind is RawKind.update and event.references and candidate is None else None,
    }, key=f"created:{incident.id}")])


def _placement_details(incident: Incident) -> dict[str, Any]:
    """The placement, for the `created` entry: the deepest area's code, the method and the evidence."""
    placement = incident.location.placement
    if placement is None:
        return {}
    deepest = placement.deepest
    return {"area_code": deepest.code if deepest else None, "placed_by": placement.method,
            "placement": placement.evidence, "outside_district": placement.outside or None}


def _refused(event: RawEvent, candidate: Incident, reason: str) -> TriageDecision:
    """Another sender's follow-up: nothing of `candidate` changes; the refusal is logged under the id the event was
    accepted with (its status gives the final answer, as an ignored close's does), naming the incident for the duty
    room."""
    placeholder = _new_incident(event).model_copy(update={"state": IncidentState.closed})
    return TriageDecision(TriageOutcome.ignored, placeholder, [_draft(event, placeholder.id, ActionKind.refused, {
        "reason": reason, "kind": event.kind.value, "field": "references" if event.references else "dedup_key",
        "incident": candidate.id}, key=f"ignored:{event.event_id}")])


def ignored_reason(event: RawEvent, candidate: Incident | None) -> str:
    """Why a close found nothing to close, in the words its status and log entry give."""
    if candidate is not None and candidate.state is IncidentState.closed:
        return f"the incident it refers to, {candidate.id}, is already closed"
    if event.references:
        return REFERENCES_UNKNOWN
    return f"no open {event.report.status.value} incident has its key (never seen, or closed already)"


def _new_incident(event: RawEvent) -> Incident:
    fields = event.report.model_dump()
    fields["dedup_key"] = event.report.effective_dedup_key()
    return Incident(**fields, id=event.proposed_incident_id, received_at=event.received_at,
                    last_report_at=event.received_at)


def _draft(event: RawEvent, incident_id: str, kind: ActionKind, details: dict[str, Any],
           key: str | None = None) -> ActionDraft:
    report = event.report
    base = {"event_id": event.event_id, "source": report.source.value, "title": report.title}
    return ActionDraft(
        incident_id=incident_id, at=event.received_at, actor=ACTOR, kind=kind,
        details={k: v for k, v in {**base, **details}.items() if v is not None},
        idempotency_key=key or f"{kind.value}:{event.event_id}",
    )


def _correlate(event: RawEvent, candidate: Incident) -> TriageDecision:
    report = event.report
    # The report's facts (casualties, trapped people, places) update the incident, so its grade rules see them.
    labels = merged_facts(candidate, report)
    joined = candidate.model_copy(
        update={"report_count": candidate.report_count + 1, "last_report_at": event.received_at, "labels": labels}
    )
    action = _draft(event, joined.id, ActionKind.correlated, {
        "reported_grade": report.grade.value,
        "report_count": joined.report_count,
        "reporter": report.reporter.model_dump(exclude_none=True) if report.reporter else None,
        "joined_by": "same key" if report.effective_dedup_key() == candidate.dedup_key else "same event",
        "area": report.location.area_name or report.location.area_code,
        "facts": {k: v for k, v in labels.items() if candidate.labels.get(k) != v} or None,
    })
    return TriageDecision(TriageOutcome.correlated, joined, [action])


def _update(event: RawEvent, candidate: Incident) -> TriageDecision:
    report = event.report
    changes = {f: getattr(report, f) for f in _UPDATABLE if getattr(report, f) != getattr(candidate, f)}
    updated = candidate.model_copy(update={
        **changes,
        "report_count": candidate.report_count + 1,
        "last_report_at": event.received_at,
        "attachments": [*candidate.attachments, *report.attachments][-50:],
    })
    actions = [_draft(event, updated.id, ActionKind.updated, {"changed": sorted(changes)})]
    if "grade" in changes:
        actions.append(_draft(event, updated.id, ActionKind.grade_changed, {
            "from": candidate.grade.value, "to": report.grade.value}))
    return TriageDecision(TriageOutcome.updated, updated, actions)


def _close(event: RawEvent, candidate: Incident) -> TriageDecision:
    closed = candidate.model_copy(update={"state": IncidentState.closed, "last_report_at": event.received_at})
    reason = {"cap": "CAP Cancel", "alertmanager": "alert resolved"}.get(event.report.source.value, "closed by source")
    action = _draft(event, closed.id, ActionKind.closed, {"reason": reason})
    return TriageDecision(TriageOutcome.closed, closed, [action])

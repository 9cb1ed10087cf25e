"""An incident's reports (警情) over HTTP, and the duty officer's corrections: merge two incidents of one event, split
a report out into its own. GET /v1/incidents/{id}/reports, POST /v1/incidents/{id}/merge and /split (api bearer)."""

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from pingan.commands import merge_incidents, split_report
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.schemas.action import Action
from pingan.schemas.incident import IncidentReport
from pingan.store.merges import reports_of
from pingan.web.guards import check_bearer
from pingan.web.intake import Intake


class ReportOut(BaseModel):
    event_id: str
    incident_id: str = Field(description="The incident triage gave it to (a merged incident's reports keep theirs)")
    outcome: str = Field(description="created, correlated or updated")
    at: datetime
    report: IncidentReport


class MergeIn(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="Person id of who merges")
    from_incident: str = Field(alias="from", min_length=1, max_length=64,
                               description="The incident merged into this one (it is closed)")
    reason: str | None = Field(default=None, max_length=2000)


class SplitIn(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="Person id of who splits")
    event_id: str = Field(min_length=1, max_length=64, description="The report to split out (see …/reports)")
    reason: str | None = Field(default=None, max_length=2000)


class CorrectionOut(BaseModel):
    incident_id: str
    report_count: int
    actions: list[Action]
    new_report_id: str | None = Field(default=None, description="split: the split report's id; status URL "
                                                                 "/v1/incidents/{it} says its incident")


def _refused(exc: CommandRefused) -> HTTPException:
    return HTTPException(404 if "not found" in str(exc) or "is not one of" in str(exc) else 409, str(exc))


def reports_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/incidents/{incident_id}/reports", response_model=list[ReportOut])
    def reports(incident_id: str, request: Request) -> list[ReportOut]:
        check_bearer(request, "api", intake.tokens)
        resolved = intake.store.resolve_incident_id(incident_id)
        incident = intake.store.get_incident(resolved) if resolved else None
        if incident is None:
            raise HTTPException(404, f"incident {incident_id!r} not found")
        return [ReportOut(event_id=r.event_id, incident_id=r.incident_id, outcome=r.outcome, at=r.at,
                          report=r.event.report) for r in reports_of(intake.store, incident)]

    @router.post("/v1/incidents/{incident_id}/merge", response_model=CorrectionOut)
    def merge(incident_id: str, body: MergeIn, request: Request) -> CorrectionOut:
        check_bearer(request, "api", intake.tokens)
        try:
            result = merge_incidents(intake.store, incident_id, body.from_incident, body.by, body.reason)
        except CommandRefused as exc:
            raise _refused(exc) from None
        return CorrectionOut(incident_id=result.incident.id, report_count=result.incident.report_count,
                             actions=result.actions)

    @router.post("/v1/incidents/{incident_id}/split", response_model=CorrectionOut)
    def split(incident_id: str, body: SplitIn, request: Request) -> CorrectionOut:
        check_bearer(request, "api", intake.tokens)
        try:
            result, new_id = split_report(intake.store, incident_id, body.event_id, body.by, intake.raw_topic,
                                          body.reason)
        except CommandRefused as exc:
            raise _refused(exc) from None
        return CorrectionOut(incident_id=result.incident.id, report_count=result.incident.report_count,
                             actions=result.actions, new_report_id=new_id)

    return router

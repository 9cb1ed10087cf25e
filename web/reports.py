"""An incident's reports (警情) over HTTP, and the duty officer's corrections: merge two incidents of one event, split
a report out into its own. GET /v1/incidents/{id}/reports (incidents.read), POST /v1/incidents/{id}/merge and /split
(incidents.correct), by a person (web/auth.py); the actor is the caller, as for every command (web/commands.py)."""

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pingan.commands import merge_incidents, split_report
from pingan.handlers.access.permissions import Permission
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.schemas.action import Action
from pingan.schemas.incident import IncidentReport
from pingan.store.merges import reports_of
from pingan.web.auth import Principal, require, shown, visible_incident
from pingan.web.commands import BY_HELP, check_by
from pingan.web.intake import Intake


class ReportOut(BaseModel):
    event_id: str
    incident_id: str = Field(description="The incident triage gave it to (a merged incident's reports keep theirs)")
    outcome: str = Field(description="created, correlated or updated")
    at: datetime
    report: IncidentReport


class MergeIn(BaseModel):
    by: str | None = Field(default=None, max_length=100, description=BY_HELP)
    from_incident: str = Field(alias="from", min_length=1, max_length=64,
                               description="The incident merged into this one (it is closed)")
    reason: str | None = Field(default=None, max_length=2000)


class SplitIn(BaseModel):
    by: str | None = Field(default=None, max_length=100, description=BY_HELP)
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
    def reports(incident_id: str, person: Principal = Depends(require(Permission.incidents_read))) -> JSONResponse:
        incident = visible_incident(intake.store, person, incident_id)
        out = [ReportOut(event_id=r.event_id, incident_id=r.incident_id, outcome=r.outcome, at=r.at,
                         report=r.event.report).model_dump(mode="json") for r in reports_of(intake.store, incident)]
        return JSONResponse(shown(person, out))

    @router.post("/v1/incidents/{incident_id}/merge", response_model=CorrectionOut)
    def merge(incident_id: str, body: MergeIn, person: Principal = Depends(require(Permission.correct))
              ) -> JSONResponse:
        target = visible_incident(intake.store, person, incident_id)
        visible_incident(intake.store, person, body.from_incident)
        check_by(intake, person, body.by, target.id)
        try:
            result = merge_incidents(intake.store, target.id, body.from_incident, person.person_id, body.reason)
        except CommandRefused as exc:
            raise _refused(exc) from None
        return JSONResponse(shown(person, CorrectionOut(
            incident_id=result.incident.id, report_count=result.incident.report_count,
            actions=result.actions).model_dump(mode="json")))

    @router.post("/v1/incidents/{incident_id}/split", response_model=CorrectionOut)
    def split(incident_id: str, body: SplitIn, person: Principal = Depends(require(Permission.correct))
              ) -> JSONResponse:
        incident = visible_incident(intake.store, person, incident_id)
        check_by(intake, person, body.by, incident.id)
        try:
            result, new_id = split_report(intake.store, incident.id, body.event_id, person.person_id,
                                          intake.raw_topic, body.reason)
        except CommandRefused as exc:
            raise _refused(exc) from None
        return JSONResponse(shown(person, CorrectionOut(
            incident_id=result.incident.id, report_count=result.incident.report_count, actions=result.actions,
            new_report_id=new_id).model_dump(mode="json")))

    return router

"""Drill runs over HTTP: `pingan drill run` registers its run (and live participants) before its first inject, and
ends it after the last, so that the notifier knows whom an exercise may really reach. Only a drill coordinator (or an
admin) starts a run (drills.start) or makes one live (drills.live); anyone with drills.read reads it.

The run's simulated responders act through POST /v1/drills/{run}/incidents/{id}/{verb}: a drill coordinator plays
them on the run's own exercise incidents only (never an actual one). The log names the simulated responder as the
actor, so the drill scores as a real response would, and `simulated_by` names the coordinator who sent it.

`speed` is the run's clock: its exercise incidents' deadlines, grade-raise and correlation windows run that many times
faster than real time, while the stack's actual incidents keep real time (store/drills.py)."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pingan.commands import run_command
from pingan.handlers.access.permissions import Permission
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.handlers.plans.directory import expand_participants
from pingan.schemas.taxonomy import IncidentStatus
from pingan.store.drills import DrillRunRow, DrillStore
from pingan.web.auth import Principal, require, shown
from pingan.web.commands import VERBS, CommandOut, caller_details, refused
from pingan.web.intake import Intake

P = Permission


class DrillRunIn(BaseModel):
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    title: str = Field(min_length=1, max_length=500)
    live: bool = Field(default=False, description="May exercise traffic really reach the participants? "
                                                  "(drills.live: a drill coordinator or an admin)")
    participants: list[str] = Field(default_factory=list, max_length=500,
                                    description="Person ids, or roster:<id> for every member of the roster")
    speed: float | None = Field(default=None, gt=0, le=3600,
                                description="Plan minutes per real minute for this run's exercise incidents "
                                            "(pingan drill run --speed); unset: the stack's own time scale")


class DrillRunOut(BaseModel):
    run_id: str
    title: str
    live: bool
    participants: list[str]
    started_at: datetime
    ended_at: datetime | None
    speed: float | None = None


class SimulatedIn(BaseModel):
    responder: str = Field(min_length=1, max_length=100,
                           description="The simulated responder this command plays (the log's actor)")
    reason: str | None = Field(default=None, max_length=2000)
    to: str | None = Field(default=None, max_length=100)
    role: str = Field(default="commander", max_length=32)
    task: str | None = Field(default=None, max_length=64)


def _out(row: DrillRunRow) -> DrillRunOut:
    return DrillRunOut(run_id=row.run_id, title=row.title, live=row.live, participants=list(row.participants),
                       started_at=row.started_at, ended_at=row.ended_at, speed=row.time_scale)


def drills_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/drills", response_model=DrillRunOut, status_code=201)
    def register(body: DrillRunIn, person: Principal = Depends(require(P.drills_start))
                 ) -> DrillRunOut | JSONResponse:
        if body.live and not person.can(P.drills_live):
            raise HTTPException(403, "live: only a drill coordinator or an admin may make a drill live")
        people, unknown = expand_participants(body.participants, intake.plans().directory)
        if unknown:
            return JSONResponse(status_code=422, content={
                "field": "participants", "error": f"participants: not in the directory: {', '.join(unknown)}"})
        return _out(DrillStore(intake.store).register(body.run_id, body.title, body.live, people, body.speed))

    @router.post("/v1/drills/{run_id}/end", response_model=DrillRunOut)
    def end(run_id: str, person: Principal = Depends(require(P.drills_start))) -> DrillRunOut:
        row = DrillStore(intake.store).end(run_id)
        if row is None:
            raise HTTPException(404, f"drill run {run_id!r} not found")
        return _out(row)

    @router.get("/v1/drills/{run_id}", response_model=DrillRunOut)
    def get(run_id: str, person: Principal = Depends(require(P.drills_read))) -> DrillRunOut:
        row = DrillStore(intake.store).get(run_id)
        if row is None:
            raise HTTPException(404, f"drill run {run_id!r} not found")
        return _out(row)

    @router.post("/v1/drills/{run_id}/incidents/{incident_id}/{verb}", response_model=CommandOut)
    def simulated(run_id: str, incident_id: str, verb: str, body: SimulatedIn,
                  person: Principal = Depends(require(P.drills_start))) -> JSONResponse:
        """A simulated responder's command on one of the run's exercise incidents."""
        if verb not in VERBS:
            raise HTTPException(404, f"unknown command {verb!r}; one of {', '.join(VERBS)}")
        if DrillStore(intake.store).get(run_id) is None:
            raise HTTPException(404, f"drill run {run_id!r} not found")
        resolved = intake.store.resolve_incident_id(incident_id)
        incident = intake.store.get_incident(resolved) if resolved else None
        if incident is None or incident.status is IncidentStatus.actual \
                or incident.labels.get("drill_run") != run_id:
            raise HTTPException(404, f"incident {incident_id!r}: no exercise incident of drill run {run_id}")
        command = VERBS[verb][0]
        details: dict[str, Any] = {"reason": body.reason, **caller_details(person), "via": "drill",
                                   "simulated_by": person.person_id}
        if verb == "handover":
            details.update(to=body.to, role=body.role)
        if verb == "task":
            details.update(task=body.task)
        if verb == "confirm":
            return _confirm_simulated(intake, person, incident.id, body.responder)
        try:
            result = run_command(intake.store, intake.plans(), incident.id, command, body.responder, **details)
        except CommandRefused as exc:
            raise refused(exc) from None
        return JSONResponse(shown(person, CommandOut(
            incident_id=result.incident.id, state=result.incident.state.value, actions=result.actions,
            note=result.note).model_dump(mode="json")))

    return router


def _confirm_simulated(intake: Intake, person: Principal, incident_id: str, responder: str) -> JSONResponse:
    from pingan.web.twilio_commands import confirm_roll_calls

    before = {a.seq for a in intake.store.timeline(incident_id)}
    if not confirm_roll_calls(intake, incident_id, responder, via="drill"):
        timeline = intake.store.timeline(incident_id)
        if not any(a.kind.value == "confirmed" and a.actor == responder for a in timeline):
            raise HTTPException(409, f"{responder} was not called in a roll-call of {incident_id}")
    incident = intake.store.get_incident(incident_id)
    actions = [a for a in intake.store.timeline(incident_id) if a.seq not in before]
    return JSONResponse(shown(person, CommandOut(incident_id=incident_id,
                                                 state=incident.state.value if incident else "open",
                                                 actions=actions).model_dump(mode="json")))

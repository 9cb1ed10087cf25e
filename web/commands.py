"""Commands over HTTP: POST /v1/incidents/{id}/ack | escalate | close | handover | confirm | task | regrade, by a
person (a personal token or a console session; web/auth.py). Each verb asks for its permission
(handlers/access/permissions.py); close and regrade also for a second factor.

The actor is always the authenticated person. `by` may be left out; a `by` that names anyone else is refused (403,
logged as `refused`), so the log never records a name nobody checked. A department liaison reaches only incidents
whose active plan level involves their department; any other is 404, as if it did not exist. `confirm` is a
roll-call answer (点名确认到岗) by the caller, as an SMS "1" from a roll-call recipient is."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pingan.commands import CommandResult, refuse, regrade_incident, run_command
from pingan.handlers.access.permissions import Permission
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.schemas.action import Action
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import Grade
from pingan.web.auth import Principal, require, shown, visible_incident
from pingan.web.intake import Intake

P = Permission
VERBS: dict[str, tuple[Command, Permission]] = {
    "ack": (Command.acknowledge, P.acknowledge), "escalate": (Command.escalate, P.escalate),
    "close": (Command.close, P.close), "handover": (Command.handover, P.handover),
    "confirm": (Command.confirm, P.confirm), "task": (Command.task_done, P.task),
}
BY_HELP = ("Optional: the actor is the authenticated person. A `by` naming anyone else is refused (403) and logged; "
           "a drill's simulated responders act through POST /v1/drills/{run}/incidents/{id}/{verb}")


class CommandIn(BaseModel):
    by: str | None = Field(default=None, max_length=100, description=BY_HELP)
    reason: str | None = Field(default=None, max_length=2000)
    to: str | None = Field(default=None, max_length=100, description="handover: the new holder's person id")
    role: str = Field(default="commander", max_length=32, description="handover: the role handed over")
    task: str | None = Field(default=None, max_length=64, description="task: the plan task reported done")


class RegradeIn(BaseModel):
    grade: Grade = Field(description="The new grade, I (特别重大) … IV (一般)")
    reason: str = Field(min_length=1, max_length=2000, description="Why (required)")
    by: str | None = Field(default=None, max_length=100, description=BY_HELP)


class CommandOut(BaseModel):
    incident_id: str
    state: str
    actions: list[Action]
    note: str | None = Field(default=None, description="Set when nothing changed (e.g. already acknowledged)")


def caller_details(person: Principal) -> dict[str, Any]:
    """How the caller authenticated, for the log entry of what they did."""
    return {"via": "api", "auth": person.method, **({"token": person.token_id} if person.token_id else {})}


def check_by(intake: Intake, person: Principal, by: str | None, incident_id: str | None) -> None:
    """403 (and a `refused` entry) when a body's `by` names someone other than the caller."""
    if by is None or by.strip() in ("", person.person_id):
        return
    why = (f"by: commands are recorded as the authenticated person ({person.person_id}); `by` named {by!r}. "
           "Leave `by` out or name yourself")
    refuse(intake.store, incident_id, person.person_id, why)
    raise HTTPException(403, why)


def refused(exc: CommandRefused) -> HTTPException:
    text = str(exc)
    return HTTPException(404 if "not found" in text or "is not one of" in text else 409, text)


def answer(person: Principal, result: CommandResult) -> JSONResponse:
    out = CommandOut(incident_id=result.incident.id, state=result.incident.state.value, actions=result.actions,
                     note=result.note)
    return JSONResponse(shown(person, out.model_dump(mode="json")))


def commands_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    def run(person: Principal, incident: Incident, command: Command, body: CommandIn) -> CommandResult:
        if command is Command.confirm:
            return _confirm(intake, person, incident)
        details: dict[str, Any] = {"reason": body.reason, **caller_details(person)}
        if command is Command.handover:
            details.update(to=body.to, role=body.role)
        if command is Command.task_done:
            details.update(task=body.task)
        try:
            return run_command(intake.store, intake.plans(), incident.id, command, person.person_id, **details)
        except CommandRefused as exc:
            raise refused(exc) from None

    def add(verb: str, command: Command, permission: Permission) -> None:
        @router.post(f"/v1/incidents/{{incident_id}}/{verb}", response_model=CommandOut, name=f"command_{verb}",
                     summary=f"{verb} ({permission.value})")
        def command_route(incident_id: str, body: CommandIn,
                          person: Principal = Depends(require(permission))) -> JSONResponse:
            incident = visible_incident(intake.store, person, incident_id)
            check_by(intake, person, body.by, incident.id)
            return answer(person, run(person, incident, command, body))

    for verb, (command, permission) in VERBS.items():
        add(verb, command, permission)

    @router.post("/v1/incidents/{incident_id}/regrade", response_model=CommandOut,
                 summary="regrade (incidents.regrade, second factor)")
    def regrade(incident_id: str, body: RegradeIn, person: Principal = Depends(require(P.regrade))) -> JSONResponse:
        """The grade changes through intake as an update of the incident (triage logs grade_changed, the response
        re-plans the new level); the `regraded` entry records who ordered it and why."""
        incident = visible_incident(intake.store, person, incident_id)
        check_by(intake, person, body.by, incident.id)
        try:
            result = regrade_incident(intake.store, incident.id, body.grade.value, person.person_id, body.reason,
                                      intake.raw_topic)
        except CommandRefused as exc:
            raise refused(exc) from None
        return answer(person, result)

    @router.post("/v1/incidents/{incident_id}/{verb}", include_in_schema=False)
    def unknown_verb(incident_id: str, verb: str, person: Principal = Depends(require(P.incidents_read))) -> None:
        raise HTTPException(404, f"unknown command {verb!r}; one of {', '.join([*VERBS, 'regrade'])}")

    return router


def _confirm(intake: Intake, person: Principal, incident: Incident) -> CommandResult:
    from pingan.web.twilio_commands import confirm_roll_calls

    who = person.person_id
    before = {a.seq for a in intake.store.timeline(incident.id)}
    if not confirm_roll_calls(intake, incident.id, who, via="api"):
        timeline = intake.store.timeline(incident.id)
        if not any(a.kind.value == "confirmed" and a.actor == who for a in timeline):
            raise HTTPException(409, f"{who} was not called in a roll-call of {incident.id}")
    actions = [a for a in intake.store.timeline(incident.id) if a.seq not in before]
    return CommandResult(incident, actions)

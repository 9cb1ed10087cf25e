"""Commands over HTTP: POST /v1/incidents/{id}/ack | escalate | close | handover | confirm | task (bearer token of
source api). `confirm` is a roll-call answer (点名确认到岗) by `by`, as an SMS "1" from a roll-call recipient is."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from pingan.commands import run_command
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.schemas.action import Action
from pingan.web.guards import check_bearer
from pingan.web.intake import Intake

VERBS = {"ack": Command.acknowledge, "escalate": Command.escalate, "close": Command.close,
         "handover": Command.handover, "confirm": Command.confirm, "task": Command.task_done}


class CommandIn(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="Person id (or name) of who gives the command")
    reason: str | None = Field(default=None, max_length=2000)
    to: str | None = Field(default=None, max_length=100, description="handover: the new holder's person id")
    role: str = Field(default="commander", max_length=32, description="handover: the role handed over")
    task: str | None = Field(default=None, max_length=64, description="task: the plan task reported done")


class CommandOut(BaseModel):
    incident_id: str
    state: str
    actions: list[Action]
    note: str | None = Field(default=None, description="Set when nothing changed (e.g. already acknowledged)")


def commands_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/incidents/{incident_id}/{verb}", response_model=CommandOut)
    def command(incident_id: str, verb: str, body: CommandIn, request: Request) -> CommandOut:
        check_bearer(request, "api", intake.tokens)
        if verb not in VERBS:
            raise HTTPException(404, f"unknown command {verb!r}; one of {', '.join(VERBS)}")
        if VERBS[verb] is Command.confirm:
            return _confirm(incident_id, body.by)
        details: dict[str, Any] = {"reason": body.reason}
        if VERBS[verb] is Command.handover:
            details.update(to=body.to, role=body.role)
        if VERBS[verb] is Command.task_done:
            details.update(task=body.task)
        try:
            result = run_command(intake.store, intake.plans(), incident_id, VERBS[verb],
                                 body.by, **details)
        except CommandRefused as exc:
            status = 404 if "not found" in str(exc) else 409
            raise HTTPException(status, str(exc)) from None
        return CommandOut(incident_id=result.incident.id, state=result.incident.state.value, actions=result.actions,
                          note=result.note)

    def _confirm(some_id: str, person: str) -> CommandOut:
        from pingan.web.twilio_commands import confirm_roll_calls

        incident_id = intake.store.resolve_incident_id(some_id)
        incident = intake.store.get_incident(incident_id) if incident_id else None
        if incident is None:
            raise HTTPException(404, f"incident {some_id!r} not found")
        before = {a.seq for a in intake.store.timeline(incident.id)}
        if not confirm_roll_calls(intake, incident.id, person, via="api"):
            timeline = intake.store.timeline(incident.id)
            if not any(a.kind.value == "confirmed" and a.actor == person for a in timeline):
                raise HTTPException(409, f"{person} was not called in a roll-call of {incident.id}")
        actions = [a for a in intake.store.timeline(incident.id) if a.seq not in before]
        return CommandOut(incident_id=incident.id, state=incident.state.value, actions=actions)

    return router

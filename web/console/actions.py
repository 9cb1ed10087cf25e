"""The incident page's buttons: each a form POST with the CSRF token, run by the same service functions as the HTTP
API (pingan.commands) with the signed-in person as the actor, then back to the incident page (303)."""

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pingan.commands import add_note, regrade_incident, run_command
from pingan.handlers.access.permissions import SECOND_FACTOR, Permission
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.schemas.taxonomy import Grade
from pingan.web.auth import Principal
from pingan.web.console.render import PREFIX, check_csrf, require_permission, signed_in
from pingan.web.console.views import involved, sees

if TYPE_CHECKING:
    from pingan.web.console import Console

# verb -> (permission, command; None: a console-only service function)
VERBS: dict[str, tuple[Permission, Command | None]] = {
    "ack": (Permission.acknowledge, Command.acknowledge),
    "escalate": (Permission.escalate, Command.escalate),
    "handover": (Permission.handover, Command.handover),
    "task": (Permission.task, Command.task_done),
    "close": (Permission.close, Command.close),
    "note": (Permission.note, None),
    "regrade": (Permission.regrade, None),
}
CONFIRMED = {"close", "regrade"}  # these ask for a reason and a ticked confirmation


def actions_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake
    store = intake.store

    @router.post("/incidents/{incident_id}/{verb}")
    async def act(incident_id: str, verb: str, request: Request, csrf: str = Form(""), reason: str = Form(""),
                  to: str = Form(""), role: str = Form("commander"), task: str = Form(""), grade: str = Form(""),
                  text: str = Form(""), confirm: str = Form(""),
                  person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        if verb not in VERBS:
            raise HTTPException(404, f"unknown command {verb!r}")
        permission, command = VERBS[verb]
        require_permission(person, permission)
        back = f"{PREFIX}/incidents/{quote(incident_id)}"
        if permission in SECOND_FACTOR and not person.second_factor:
            return RedirectResponse(f"{PREFIX}/second-factor?next={quote(back)}", status_code=303)
        if verb in CONFIRMED and (not reason.strip() or confirm != "yes"):
            return _back(back, "console.reason_and_confirm")

        def run() -> str | None:
            found = store.get_incident(store.resolve_incident_id(incident_id) or "")
            if found is None or not sees(person, involved(intake.plans(), store.response_plan(found.id),
                                                          found.grade.value)):
                return "console.not_found"
            via = {"via": "console", "auth": person.method}
            try:
                if verb == "note":
                    add_note(store, found.id, person.person_id, text)
                elif verb == "regrade":
                    if grade not in {g.value for g in Grade}:
                        return "console.bad_grade"
                    regrade_incident(store, found.id, grade, person.person_id, reason, intake.raw_topic)
                else:
                    details: dict[str, object] = {"reason": reason.strip() or None, **via}
                    if command is Command.handover:
                        details.update(to=to.strip(), role=role)
                    if command is Command.task_done:
                        details.update(task=task)
                    assert command is not None
                    result = run_command(store, intake.plans(), found.id, command, person.person_id, **details)
                    if result.note:  # nothing changed (e.g. already acknowledged): say so
                        return f"info:{result.note}"
            except CommandRefused as exc:
                return str(exc)
            return None

        problem = await asyncio.to_thread(run)
        if problem and problem.startswith("info:"):
            return RedirectResponse(f"{back}?info={quote(problem[5:])}", status_code=303)
        return _back(back, problem) if problem else RedirectResponse(back, status_code=303)

    return router


def _back(url: str, problem: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?error={quote(problem)}", status_code=303)

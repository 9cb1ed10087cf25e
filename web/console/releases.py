"""The console's release page (信息发布, issue 17): an incident's releases with their texts in zh and en, and the forms
of the workflow, each shown only to a role allowed to use it: draft (the alert, an update or the all-clear, from a
template of the plan level), edit, approve, reject, publish, withdraw. Every form is a POST with the CSRF token, run
by pingan.releases (the HTTP API's and the CLI's service) with the signed-in person as the actor, then back here
(303) with the refusal, if any, which the service has logged."""

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from pingan.handlers.access.permissions import Permission
from pingan.handlers.releases.drafting import templates_for
from pingan.releases import Caller, ReleaseNotFound, ReleaseRefused, ReleaseService
from pingan.schemas.common import describe_validation
from pingan.schemas.release import ReleaseChannel, ReleaseKind, ReleaseTexts
from pingan.web.auth import Principal
from pingan.web.console.render import PREFIX, check_csrf, page_for, require_permission, signed_in
from pingan.web.console.views import involved, sees

if TYPE_CHECKING:
    from pingan.web.console import Console

P = Permission
VERBS = {"edit": P.releases_draft, "withdraw": P.releases_draft, "approve": P.releases_approve,
         "reject": P.releases_approve, "publish": P.releases_publish}
TEXT_FIELDS = ("headline", "description", "instruction")


def releases_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake
    store = intake.store

    def service() -> ReleaseService:
        return ReleaseService(store, intake.plans(), intake.settings.cap_sender)

    def caller(person: Principal) -> Caller:
        return Caller(person.person_id, frozenset(r.value for r in person.roles),
                      {"via": "console", "auth": person.method})

    def visible(person: Principal, incident_id: str) -> str | None:
        found = store.get_incident(store.resolve_incident_id(incident_id) or "")
        if found is None or not sees(person, involved(intake.plans(), store.response_plan(found.id),
                                                      found.grade.value)):
            return None
        return found.id

    def page_url(incident_id: str) -> str:
        return f"{PREFIX}/releases?incident={quote(incident_id)}"

    @router.get("/releases")
    async def releases_page(request: Request, incident: str = "", error: str | None = None,
                            info: str | None = None, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, P.incidents_read)

        def load() -> dict[str, Any] | None:
            found = visible(person, incident)
            if found is None:
                return None
            svc = service()
            inc = svc.incident(found)
            try:
                plan, level = svc.plan_level(inc)
                templates = {k.value: templates_for(plan, level, k) for k in (ReleaseKind.alert, ReleaseKind.all_clear)}
            except ReleaseRefused:
                templates = {}
            return {"incident": inc, "releases": list(reversed(svc.for_incident(found))), "templates": templates,
                    "asked": svc.approval_requests(found),
                    "channels": [c.value for c in ReleaseChannel], "people": intake.plans().directory.people}

        found = await asyncio.to_thread(load)
        page = page_for(request, person, console.tz)
        if found is None:
            return page.render("not_found.html", status_code=404, incident_id=incident)
        return page.render("releases.html", error=error, info=info, **found)

    @router.post("/releases/draft")
    async def draft(request: Request, csrf: str = Form(""), incident: str = Form(""), template: str = Form(""),
                    all_clear: str = Form(""), person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        require_permission(person, P.releases_draft)

        def run() -> str | None:
            found = visible(person, incident)
            if found is None:
                return "console.not_found"
            try:
                service().draft(found, caller(person), all_clear=all_clear == "yes", template_id=template or None)
            except ReleaseRefused as exc:
                return str(exc)
            return None

        return _back(page_url(incident), await asyncio.to_thread(run))

    @router.post("/releases/{release_id}/{verb}")
    async def act(release_id: str, verb: str, request: Request, csrf: str = Form(""), revision: str = Form(""),
                  reason: str = Form(""), person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        if verb not in VERBS:
            raise HTTPException(404, f"unknown release step {verb!r}")
        require_permission(person, VERBS[verb])
        form = await request.form()

        def run() -> tuple[str, str | None]:
            svc = service()
            try:
                release = svc.get(release_id)
            except ReleaseNotFound:
                return f"{PREFIX}/", "console.not_found"
            if visible(person, release.incident_id) is None:
                return f"{PREFIX}/", "console.not_found"
            seen = _revision(revision)
            try:
                if verb == "edit":
                    svc.edit(release_id, caller(person), texts=_texts(form), channels=_channels(form))
                elif verb == "approve":
                    svc.approve(release_id, caller(person), seen)
                elif verb == "reject":
                    svc.reject(release_id, caller(person), reason)
                elif verb == "publish":
                    svc.publish(release_id, caller(person), seen)
                else:
                    svc.withdraw(release_id, caller(person), reason)
            except ValidationError as exc:
                return page_url(release.incident_id), describe_validation(exc)
            except ReleaseRefused as exc:
                return page_url(release.incident_id), str(exc)
            return page_url(release.incident_id), None

        back, problem = await asyncio.to_thread(run)
        return _back(back, problem)

    return router


def _revision(value: str) -> int | None:
    """The form's revision, or None (then any revision will do) for anything that is not a plain small number."""
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _texts(form: Any) -> ReleaseTexts:
    data: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        zh, en = str(form.get(f"{name}_zh", "")).strip(), str(form.get(f"{name}_en", "")).strip()
        if zh:
            data[name] = {"zh": zh, "en": en or None}
    return ReleaseTexts.model_validate(data)


def _channels(form: Any) -> list[ReleaseChannel] | None:
    chosen = [ReleaseChannel(c) for c in form.getlist("channel") if c in {x.value for x in ReleaseChannel}]
    return chosen or None


def _back(url: str, problem: str | None) -> RedirectResponse:
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}error={quote(problem)}" if problem else url, status_code=303)

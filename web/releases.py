"""Public information releases over HTTP (信息发布, issue 17), thin over pingan.releases (the CLI's service too):

- POST /v1/incidents/{id}/releases                 draft the incident's next release (releases.draft)
- GET  /v1/incidents/{id}/releases                 its releases (incidents.read)
- GET  /v1/releases/{id}                           one release (incidents.read)
- PATCH /v1/releases/{id}, POST /v1/releases/{id}/edit   a new revision (releases.draft)
- POST /v1/releases/{id}/approve | reject          four eyes (releases.approve)
- POST /v1/releases/{id}/publish                   an approved release, its approved revision (releases.publish)
- POST /v1/releases/{id}/withdraw                  abandon one before publication (releases.draft)

The actor is always the authenticated caller (web/auth.py); no body field names a person. Refusals are logged by
the service and answered 403 (who asked: four eyes, a role), 404 (no such release or incident) or 409 (the state
does not allow it), with the reason. A department liaison sees only their departments' incidents' releases.
"""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from pingan.handlers.access.permissions import Permission
from pingan.releases import Caller, ReleaseForbidden, ReleaseNotFound, ReleaseRefused, ReleaseService, Step
from pingan.schemas.action import Action
from pingan.schemas.areas import AlertArea
from pingan.schemas.common import LocalizedText, Model
from pingan.schemas.release import Release, ReleaseChannel, ReleaseTexts
from pingan.web.auth import Principal, require, visible_incident
from pingan.web.commands import caller_details
from pingan.web.intake import Intake

P = Permission


MAX_TEXT = 4000  # characters of one headline, description or instruction in one language


class Body(Model):
    """No field names a person (the actor is the caller); a misspelt field is a 422 naming it, never ignored."""


class DraftIn(Body):
    all_clear: bool = Field(default=False, description="Draft the all-clear that ends the incident's releases")
    template: str | None = Field(default=None, max_length=64, description="The plan's release template id; "
                                 "default the plan level's first for the kind")
    channels: list[ReleaseChannel] | None = Field(default=None, min_length=1, description="Default the template's")


class EditIn(Body):
    texts: ReleaseTexts | None = None
    areas: list[AlertArea] | None = Field(default=None, max_length=50)
    channels: list[ReleaseChannel] | None = Field(default=None, min_length=1)

    @field_validator("texts")
    @classmethod
    def _bounded(cls, texts: ReleaseTexts | None) -> ReleaseTexts | None:
        parts: list[LocalizedText | None] = [texts.headline, texts.description, texts.instruction] if texts else []
        if any(len(t.zh) > MAX_TEXT or len(t.en or "") > MAX_TEXT for t in parts if t is not None):
            raise ValueError(f"each text is at most {MAX_TEXT} characters in each language")
        return texts


class RevisionIn(Body):
    revision: int | None = Field(default=None, ge=1, description="The revision you read; refused (409) if it changed")


class RejectIn(Body):
    reason: str = Field(min_length=1, max_length=2000, description="Why, for the drafter")


class WithdrawIn(Body):
    reason: str = Field(default="", max_length=2000)


class StepOut(BaseModel):
    release: Release
    actions: list[Action]


def _refused(exc: ReleaseRefused) -> HTTPException:
    status = 404 if isinstance(exc, ReleaseNotFound) else 403 if isinstance(exc, ReleaseForbidden) else 409
    return HTTPException(status, str(exc))


def releases_router(intake: Intake) -> APIRouter:
    router = APIRouter(tags=["releases"])

    def service() -> ReleaseService:
        return ReleaseService(intake.store, intake.plans(), intake.settings.cap_sender)

    def caller(person: Principal) -> Caller:
        return Caller(person.person_id, frozenset(r.value for r in person.roles), caller_details(person))

    def visible_release(person: Principal, release_id: str) -> Release:
        try:
            release = service().get(release_id)
        except ReleaseNotFound as exc:
            raise _refused(exc) from None
        try:
            visible_incident(intake.store, person, release.incident_id)
        except HTTPException:
            raise HTTPException(404, f"release {release_id!r} not found") from None
        return release

    def answer(step: Step, status: int = 200) -> JSONResponse:
        out = StepOut(release=step.release, actions=step.actions)
        return JSONResponse(out.model_dump(mode="json"), status_code=status)

    def run(call: Any) -> Step:
        try:
            return call()
        except ReleaseRefused as exc:
            raise _refused(exc) from None

    @router.post("/v1/incidents/{incident_id}/releases", status_code=201, response_model=StepOut,
                 summary="Draft a release (releases.draft)")
    def draft(incident_id: str, body: DraftIn, person: Principal = Depends(require(P.releases_draft))
              ) -> JSONResponse:
        incident = visible_incident(intake.store, person, incident_id)
        return answer(run(lambda: service().draft(incident.id, caller(person), all_clear=body.all_clear,
                                                  template_id=body.template, channels=body.channels)), 201)

    @router.get("/v1/incidents/{incident_id}/releases", response_model=list[Release],
                summary="An incident's releases (incidents.read)")
    def for_incident(incident_id: str, person: Principal = Depends(require(P.incidents_read))) -> JSONResponse:
        incident = visible_incident(intake.store, person, incident_id)
        return JSONResponse([r.model_dump(mode="json") for r in service().for_incident(incident.id)])

    @router.get("/v1/releases/{release_id}", response_model=Release, summary="One release (incidents.read)")
    def one(release_id: str, person: Principal = Depends(require(P.incidents_read))) -> JSONResponse:
        return JSONResponse(visible_release(person, release_id).model_dump(mode="json"))

    def edit(release_id: str, body: EditIn, person: Principal) -> JSONResponse:
        visible_release(person, release_id)
        return answer(run(lambda: service().edit(release_id, caller(person), texts=body.texts, areas=body.areas,
                                                 channels=body.channels)))

    @router.patch("/v1/releases/{release_id}", response_model=StepOut, summary="Edit a release (releases.draft)")
    def patch(release_id: str, body: EditIn, person: Principal = Depends(require(P.releases_draft))
              ) -> JSONResponse:
        return edit(release_id, body, person)

    @router.post("/v1/releases/{release_id}/edit", response_model=StepOut, summary="Edit a release (releases.draft)")
    def post_edit(release_id: str, body: EditIn, person: Principal = Depends(require(P.releases_draft))
                  ) -> JSONResponse:
        return edit(release_id, body, person)

    @router.post("/v1/releases/{release_id}/approve", response_model=StepOut,
                 summary="Approve a release (releases.approve; never the drafter or the last editor)")
    def approve(release_id: str, body: RevisionIn | None = None,
                person: Principal = Depends(require(P.releases_approve))) -> JSONResponse:
        visible_release(person, release_id)
        return answer(run(lambda: service().approve(release_id, caller(person), body and body.revision)))

    @router.post("/v1/releases/{release_id}/reject", response_model=StepOut,
                 summary="Reject a release with a reason (releases.approve)")
    def reject(release_id: str, body: RejectIn, person: Principal = Depends(require(P.releases_approve))
               ) -> JSONResponse:
        visible_release(person, release_id)
        return answer(run(lambda: service().reject(release_id, caller(person), body.reason)))

    @router.post("/v1/releases/{release_id}/publish", response_model=StepOut,
                 summary="Publish an approved release (releases.publish)")
    def publish(release_id: str, body: RevisionIn | None = None,
                person: Principal = Depends(require(P.releases_publish))) -> JSONResponse:
        visible_release(person, release_id)
        return answer(run(lambda: service().publish(release_id, caller(person), body and body.revision)))

    @router.post("/v1/releases/{release_id}/withdraw", response_model=StepOut,
                 summary="Withdraw a release before publication (releases.draft)")
    def withdraw(release_id: str, body: WithdrawIn | None = None, person: Principal = Depends(require(P.releases_draft))
                 ) -> JSONResponse:
        visible_release(person, release_id)
        return answer(run(lambda: service().withdraw(release_id, caller(person), body.reason if body else "")))

    return router

"""Reading incidents over HTTP: GET /v1/incidents (a page, newest first) and GET /v1/incidents/{id} (one incident and
its timeline). Both need a person with incidents.read (web/auth.py); phone numbers are masked unless they have
phones.read, and a department liaison sees only incidents whose active plan level involves their department (any
other is 404, as if it did not exist)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pingan.handlers.access.permissions import Permission, scoped
from pingan.schemas.action import Action
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import Category, IncidentStatus, Source
from pingan.store.access import incidents_involving
from pingan.store.repository import Store
from pingan.web.auth import Principal, require, sees, shown

MAX_OFFSET = 2**31 - 1


class IncidentOut(BaseModel):
    incident: Incident
    timeline: list[Action]


class IncidentListOut(BaseModel):
    items: list[Incident]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def reads_router(store: Store) -> APIRouter:
    router = APIRouter()
    reader = require(Permission.incidents_read)

    @router.get("/v1/incidents/{incident_id}", response_model=IncidentOut)
    def get_incident(incident_id: str, person: Principal = Depends(reader)) -> JSONResponse:
        resolved = store.resolve_incident_id(incident_id)
        incident = store.get_incident(resolved) if resolved else None
        if incident is None:
            if scoped(person.roles):
                raise HTTPException(404, f"incident {incident_id!r} not found")  # no plan yet: not theirs yet
            if (reason := store.ignored_reason(incident_id)) is not None:
                # Final: triage had nothing to apply it to (a Cancel naming no known message). Not "accepted" forever.
                return JSONResponse(status_code=200, content=shown(person, {
                    "id": incident_id, "state": "ignored", "reason": reason, "message": f"ignored: {reason}",
                    "timeline": [a.model_dump(mode="json") for a in store.timeline(incident_id)]}))
            if store.is_accepted(incident_id):
                # Accepted and safe in the outbox, but triage has not run yet: say so rather than 404.
                return JSONResponse(status_code=202, content={"id": incident_id, "state": "accepted"})
            raise HTTPException(404, f"incident {incident_id!r} not found")
        timeline = store.timeline(incident.id)
        if not sees(person, timeline):
            raise HTTPException(404, f"incident {incident_id!r} not found")
        return JSONResponse(shown(person, IncidentOut(incident=incident, timeline=timeline).model_dump(mode="json")))

    @router.get("/v1/incidents", response_model=IncidentListOut)
    def list_incidents(
        status: IncidentStatus | None = None,
        category: Category | None = None,
        source: Source | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        # Bounded: the databases take a signed 64-bit OFFSET, and no page is ever this far down anyway.
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        person: Principal = Depends(reader),
    ) -> JSONResponse:
        if since is not None and since.tzinfo is None:
            raise RequestValidationError([{"loc": ("query", "since"), "type": "timezone_aware",
                                           "msg": "since must carry a time zone offset"}])
        if since is not None:
            try:
                since = since.astimezone(UTC)  # the store compares UTC times
            except OverflowError:
                raise RequestValidationError([{"loc": ("query", "since"), "type": "datetime_range",
                                               "msg": "since is out of range once converted to UTC"}]) from None
        only = incidents_involving(store.engine, person.departments) if scoped(person.roles) else None
        page = store.list_incidents(
            status=status.value if status else None, category=category.value if category else None,
            source=source.value if source else None, since=since, limit=limit, offset=offset, only=only,
        )
        next_offset = offset + limit if offset + limit < page.total else None
        out = IncidentListOut(items=page.items, total=page.total, limit=limit, offset=offset, next_offset=next_offset)
        return JSONResponse(shown(person, out.model_dump(mode="json")))

    return router

"""The HTTP API. POST answers 202 only after the event is committed to the store's outbox."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pingan import __version__
from pingan.schemas.action import Action
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.taxonomy import Category, IncidentStatus, Source
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams import topics


class AcceptedOut(BaseModel):
    id: str
    event_id: str
    status_url: str


class IncidentOut(BaseModel):
    incident: Incident
    timeline: list[Action]


class IncidentListOut(BaseModel):
    items: list[Incident]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_api(settings: Settings, store: Store) -> FastAPI:
    api = FastAPI(title="Pingan (平安)", version=__version__,
                  description="Event-driven emergency response and alerting")

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field up front, in a sentence as well as in FastAPI's usual structure.
        errors = [
            {"field": _field_name(tuple(e["loc"])), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}", "errors": errors})

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        store.list_incidents(limit=1)  # the store answers, or this raises and the check fails
        return {"status": "ok", "version": __version__}

    @api.post("/v1/incidents", status_code=202, response_model=AcceptedOut)
    def post_incident(report: IncidentReport) -> AcceptedOut:
        accepted = store.accept(report, settings.topic(topics.RAW))
        return AcceptedOut(id=accepted.incident_id, event_id=accepted.event_id,
                           status_url=f"/v1/incidents/{accepted.incident_id}")

    @api.get("/v1/incidents/{incident_id}", response_model=IncidentOut)
    def get_incident(incident_id: str) -> IncidentOut | JSONResponse:
        resolved = store.resolve_incident_id(incident_id)
        incident = store.get_incident(resolved) if resolved else None
        if incident is None:
            if store.is_accepted(incident_id):
                # Accepted and safe in the outbox, but triage has not run yet: say so rather than 404.
                return JSONResponse(status_code=202, content={"id": incident_id, "state": "accepted"})
            raise HTTPException(404, f"incident {incident_id!r} not found")
        return IncidentOut(incident=incident, timeline=store.timeline(incident.id))

    @api.get("/v1/incidents", response_model=IncidentListOut)
    def list_incidents(
        status: IncidentStatus | None = None,
        category: Category | None = None,
        source: Source | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> IncidentListOut:
        if since is not None and since.tzinfo is None:
            raise RequestValidationError([{"loc": ("query", "since"), "type": "timezone_aware",
                                           "msg": "since must carry a time zone offset"}])
        page = store.list_incidents(
            status=status.value if status else None, category=category.value if category else None,
            source=source.value if source else None, since=since, limit=limit, offset=offset,
        )
        next_offset = offset + limit if offset + limit < page.total else None
        return IncidentListOut(items=page.items, total=page.total, limit=limit, offset=offset,
                               next_offset=next_offset)

    return api

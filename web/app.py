"""The HTTP API. POST answers 202 only after the event is committed to the store's outbox."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from pingan import __version__, metrics
from pingan.schemas.action import Action
from pingan.schemas.adapters.alertmanager import parse_alertmanager
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.config import load_intake_config
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import Category, IncidentStatus, Source
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.watchdog import Watchdog, raw_partitions
from pingan.web.commands import commands_router
from pingan.web.console import install_console
from pingan.web.drills import drills_router
from pingan.web.guards import load_tokens
from pingan.web.intake import Intake, intake_router, start_cap_feeds
from pingan.web.reports import reports_router
from pingan.web.twilio_intake import twilio_router


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


def create_api(settings: Settings, store: Store, tokens: dict[str, str] | None = None) -> FastAPI:
    config = load_intake_config(settings.intake_config, settings.district_areas)
    intake = Intake(settings, store, tokens if tokens is not None else load_tokens(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pollers = start_cap_feeds(intake, config)
        # The dead-man's switch lives here because this process needs no broker (docs/architecture.md).
        watchdog = Watchdog(settings, store) if settings.heartbeat_interval_s > 0 else None
        if watchdog is not None:
            watchdog.start()
        yield
        for poller in pollers:
            poller.stop()
        intake.committer.stop()
        if watchdog is not None:
            watchdog.stop()

    api = FastAPI(title="Pingan (平安)", version=__version__, lifespan=lifespan,
                  description="Event-driven emergency response and alerting")
    api.include_router(intake_router(
        intake,
        parse_cap=lambda body: parse_cap(body, config.cap),
        parse_alertmanager=lambda body: parse_alertmanager(body, config.alertmanager),
    ))
    api.include_router(twilio_router(intake, config))
    api.include_router(reports_router(intake))  # before the generic /{verb} route of commands
    api.include_router(commands_router(intake))
    api.include_router(drills_router(intake))
    install_console(api, intake)  # the duty console's pages under /console

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field up front, in a sentence as well as in FastAPI's usual structure.
        errors = [
            {"field": _field_name(tuple(e["loc"])), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}", "errors": errors})

    render_metrics = metrics.api_metrics(
        store, settings.heartbeat_threshold_s if settings.heartbeat_interval_s > 0 else None, raw_partitions())

    @api.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(render_metrics(), media_type=metrics.CONTENT_TYPE)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        store.list_incidents(limit=1)  # the store answers, or this raises and the check fails
        return {"status": "ok", "version": __version__}

    @api.get("/v1/incidents/{incident_id}", response_model=IncidentOut)
    def get_incident(incident_id: str) -> IncidentOut | JSONResponse:
        resolved = store.resolve_incident_id(incident_id)
        incident = store.get_incident(resolved) if resolved else None
        if incident is None:
            if (reason := store.ignored_reason(incident_id)) is not None:
                # Final: triage had nothing to apply it to (a Cancel naming no known message). Not "accepted" forever.
                return JSONResponse(status_code=200, content={
                    "id": incident_id, "state": "ignored", "reason": reason, "message": f"ignored: {reason}",
                    "timeline": [a.model_dump(mode="json") for a in store.timeline(incident_id)]})
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

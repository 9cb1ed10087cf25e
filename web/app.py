"""The HTTP API. POST answers 202 only after the event is committed to the store's outbox."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from pingan import __version__, metrics
from pingan.bootstrap import build_channels
from pingan.handlers.channels.base import ChannelAdapter
from pingan.schemas.adapters.alertmanager import parse_alertmanager
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.config import load_intake_config
from pingan.settings import Settings
from pingan.store.heartbeat import HeartbeatStore
from pingan.store.repository import Store
from pingan.watchdog import Watchdog, raw_partitions
from pingan.web.areas import areas_router
from pingan.web.auth_routes import install_auth
from pingan.web.commands import commands_router
from pingan.web.console import install_console
from pingan.web.docs import install_docs
from pingan.web.drills import drills_router
from pingan.web.errors import install_error_ids
from pingan.web.guards import check_metrics_token, load_tokens
from pingan.web.intake import Intake, intake_router, start_cap_feeds
from pingan.web.public import public_router
from pingan.web.reads import reads_router
from pingan.web.release_broadcast import release_broadcast_router
from pingan.web.releases import releases_router
from pingan.web.reports import reports_router
from pingan.web.sitreps import sitreps_router
from pingan.web.twilio_intake import twilio_router


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_api(settings: Settings, store: Store, tokens: dict[str, str] | None = None,
               channels: dict[str, ChannelAdapter] | None = None) -> FastAPI:
    """The API. `tokens`: the intake (and scraper) tokens, default from the settings and the data dir; `channels`:
    the adapters the second factor's SMS goes through, default wired from the settings (pingan.bootstrap)."""
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
        intake.parser.stop()
        if watchdog is not None:
            watchdog.stop()

    # /docs, /redoc and /openapi.json are served by web/docs.py: public only when PINGAN_PUBLIC_DOCS says so.
    api = FastAPI(title="Pingan (平安)", version=__version__, lifespan=lifespan,
                  description="Event-driven emergency response and alerting", docs_url=None, redoc_url=None,
                  openapi_url=None)
    install_auth(api, intake, channels if channels is not None else build_channels(settings))
    install_docs(api, settings.public_docs)
    api.include_router(intake_router(
        intake,
        parse_cap=lambda body: parse_cap(body, config.cap, limits=intake.limits),
        parse_alertmanager=lambda body: parse_alertmanager(body, config.alertmanager, limits=intake.limits),
    ))
    api.include_router(twilio_router(intake, config))
    api.include_router(reports_router(intake))  # before the generic /{verb} route of commands
    api.include_router(reads_router(store))
    api.include_router(releases_router(intake))  # before the generic /{verb} route of commands
    api.include_router(release_broadcast_router(store))  # a release's SMS broadcast in figures
    api.include_router(sitreps_router(store))  # situation reports (态势研判)
    api.include_router(areas_router(settings, store))  # the district's areas, their incidents and counts
    api.include_router(commands_router(intake))
    api.include_router(drills_router(intake))
    api.include_router(public_router(settings, store))  # /public/: the CAP feed and warnings, no sign-in
    install_console(api, intake)  # the duty console's pages under /console
    install_error_ids(api)  # a bug is a 500 with an error id in the log, never a stack trace (web/errors.py)

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
    def prometheus_metrics(request: Request) -> Response:
        check_metrics_token(request, intake.tokens)  # the scraper's own token; people and intake tokens get 401
        return Response(render_metrics(), media_type=metrics.CONTENT_TYPE)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        store.list_incidents(limit=1)  # the store answers, or this raises and the check fails
        return {"status": "ok", "version": __version__}

    readiness = HeartbeatStore(store)

    @api.get("/readyz", responses={503: {"description": "Not ready yet; `reason` says what it waits for"}})
    def readyz() -> JSONResponse:
        """200 once the whole pipeline is ready: a worker holds its partitions and a heartbeat sent since then went
        through triage, response and the notifier. /healthz says only that this process is alive."""
        try:
            ready, reason = readiness.readiness(raw_partitions())
        except SQLAlchemyError as exc:
            ready, reason = False, f"the store does not answer ({exc.__class__.__name__})"
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else "not ready", "reason": reason})

    return api

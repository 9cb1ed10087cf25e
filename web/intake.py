"""Intake endpoints with a bearer token: the JSON API, Alertmanager and CAP. Twilio's are in web/twilio_intake.py."""

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from pingan import metrics
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.adapters.alertmanager import bind_source
from pingan.schemas.adapters.config import IntakeConfig
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.limits import IntakeLimits, IntakeTooLarge
from pingan.schemas.events import IntakeItem, RawKind
from pingan.schemas.incident import IncidentReport
from pingan.schemas.taxonomy import Source
from pingan.settings import Settings
from pingan.store.outbox import Accepted
from pingan.store.repository import Store
from pingan.streams import topics
from pingan.streams.cap_feed import CapFeedPoller
from pingan.streams.plan_reload import fingerprint
from pingan.web.group_commit import GroupCommitter
from pingan.web.guards import RateLimiter, charge_unauthenticated, check_bearer, read_body
from pingan.web.intake_tokens import IntakeToken, IntakeTokens, binding_refusal, follow_up_conflict
from pingan.web.offload import OFFLOAD_BYTES, ParsePool

if TYPE_CHECKING:
    from pingan.web.auth import Principal

log = logging.getLogger("pingan.intake")


class AcceptedOut(BaseModel):
    id: str
    event_id: str
    status_url: str
    duplicate: bool = False


class BatchAcceptedOut(BaseModel):
    accepted: list[AcceptedOut]


def accepted_out(a: Accepted) -> AcceptedOut:
    return AcceptedOut(id=a.incident_id, event_id=a.event_id, status_url=f"/v1/incidents/{a.incident_id}",
                       duplicate=a.duplicate)


class Intake:
    """The one way in: guards, parse, commit to the outbox, and only then an answer."""

    def __init__(self, settings: Settings, store: Store, tokens: dict[str, str]) -> None:
        self.settings = settings
        self.store = store
        self.tokens = IntakeTokens.of(tokens)  # a plain mapping: one token per source, any sender (intake_tokens.py)
        self.limiter = RateLimiter(settings.intake_rate_per_minute)
        # Junk (a wrong token, a bad signature) is counted per client address, apart from the sources' allowances.
        self.unauthenticated = RateLimiter(settings.intake_unauthenticated_rate_per_minute,
                                           setting="PINGAN_INTAKE_UNAUTHENTICATED_RATE_PER_MINUTE")
        self.limits = IntakeLimits(cap_max_infos=settings.cap_max_infos,
                                   cap_max_areas_per_info=settings.cap_max_areas_per_info,
                                   cap_max_polygon_points=settings.cap_max_polygon_points,
                                   alertmanager_max_alerts=settings.alertmanager_max_alerts)
        self.parser = ParsePool(settings.intake_parse_cpu_budget_s)
        self.raw_topic = settings.topic(topics.RAW)
        self._plans: tuple[str, PlanSet] | None = None
        self.committer = GroupCommitter(store, self.raw_topic)

    def plans(self) -> PlanSet:
        """The plan set for commands, loaded once and again only when a plan file changes (as the worker does)."""
        current = fingerprint(self.settings.plans_dir)
        if self._plans is None or self._plans[0] != current:
            self._plans = (current, load_plans(self.settings.plans_dir))
        return self._plans[1]

    def commit_items(self, source: str, items: Sequence[IntakeItem | IncidentReport]) -> list[Accepted]:
        """Commit without HTTP around it (feeds): raises SQLAlchemyError when the store cannot commit."""
        accepted = self.store.accept_many(items, self.raw_topic)
        metrics.intake_committed(source, accepted)
        log.info("intake %s: accepted %d (%d duplicate)", source, len(accepted), sum(a.duplicate for a in accepted))
        return accepted

    async def commit(self, source: str, items: Sequence[IntakeItem | IncidentReport]) -> list[Accepted]:
        """Durable before it returns (group commit: web/group_commit.py); 503 when the store cannot commit."""
        try:
            accepted = await self.committer.commit(items)
        except SQLAlchemyError as exc:
            # Nothing was stored, so the sender must try again; say when, and never answer 500 or hang.
            log.error("intake %s: 503 store cannot commit: %s", source, exc.__class__.__name__)
            metrics.intake(source, "unavailable")
            raise HTTPException(503, "the store cannot commit right now; retry", headers={"Retry-After": "5"}) from exc
        metrics.intake_committed(source, accepted)
        log.info("intake %s: accepted %d (%d duplicate)", source, len(accepted), sum(a.duplicate for a in accepted))
        return accepted

    async def guarded_body(self, request: Request, source: str, person: str | None = None) -> bytes:
        """The body once the caller is known (`person`: a person already authenticated) and within the limits."""
        if person is None:
            return (await self.token_and_body(request, source))[1]
        # A person's reports use their own allowance, not the `api` token's: a busy desk cannot starve a system.
        self.limiter.check(f"{source}:person:{person}", who=f"person {person!r}")
        return await read_body(request, source, self.settings.intake_max_body_bytes)

    async def token_and_body(self, request: Request, source: str) -> tuple[IntakeToken, bytes]:
        """Which of the source's tokens the caller brings (what it may speak for), and the body within the limits."""
        try:
            token = check_bearer(request, source, self.tokens)
        except HTTPException as exc:
            if exc.status_code == 401:
                charge_unauthenticated(self.unauthenticated, request, source)
            raise
        # After authentication, so only the real sender uses its allowance; per token (`cap:nws`), so one agency's
        # token cannot spend another's (PINGAN_INTAKE_RATE_PER_MINUTE is each token's).
        self.limiter.check(token.key, who=f"intake token {token.key!r}")
        return token, await read_body(request, source, self.settings.intake_max_body_bytes)


async def _reporting_person(request: Request, intake: Intake) -> "Principal | None":
    """A person filing a report (incidents.report) with a personal token or a session, instead of the `api` intake
    token; None when the caller brings an intake token (or nothing: check_bearer answers that)."""
    from pingan.handlers.access.identity import SESSION_COOKIE, TOKEN_PREFIX
    from pingan.handlers.access.permissions import Permission
    from pingan.web.auth import require

    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    personal = given.strip().startswith(TOKEN_PREFIX) if scheme.lower() == "bearer" else \
        bool(request.cookies.get(SESSION_COOKIE)) and not given
    if not personal:
        return None
    return await require(Permission.incidents_report)(request)


def start_cap_feeds(intake: Intake, config: IntakeConfig) -> list[CapFeedPoller]:
    """One poller a configured feed (`url[|sender…]`); what it finds goes through the same commit as a CAP POST."""
    pollers = []
    for entry in (e.strip() for e in (intake.settings.cap_feeds or "").split(",")):
        url, *senders = (part.strip() for part in entry.split("|"))
        if url:
            poller = CapFeedPoller(url, on_items=partial(feed_items, intake, url, tuple(senders)),
                                   interval_s=intake.settings.cap_feed_interval_s, mapping=config.cap)
            poller.start()
            pollers.append(poller)
            log.info("polling CAP feed %s every %.0fs", url, intake.settings.cap_feed_interval_s)
    return pollers


def feed_items(intake: Intake, url: str, senders: tuple[str, ...], items: list[IntakeItem]) -> None:
    """A feed that lists its senders (`url|sender…`) hands on only their messages, as a bound token does; one that
    lists none, any: a feed is the operator's own setting, not a credential that others hold. Follow-ups are checked
    in triage either way (another sender's Cancel is refused there)."""
    kept: list[IntakeItem] = []
    refused: list[IntakeItem] = []
    for item in items:
        (kept if not senders or item.report.labels.get("cap_sender", "") in senders else refused).append(item)
    for item in refused:
        log.warning("cap feed %s: refused %s: <sender> %r is not one of %s", url, item.message_key,
                    item.report.labels.get("cap_sender"), ", ".join(senders))
        metrics.intake_refused("cap_feed", 403)
    if kept:
        intake.commit_items("cap_feed", kept)


def rejected(source: str, exc: IntakeError) -> JSONResponse:
    status = 413 if isinstance(exc, IntakeTooLarge) else 422  # over a limit: the sender must send less
    log.warning("intake %s: %d %s", source, status, exc)
    metrics.intake(source, "too_large" if status == 413 else "rejected")
    return JSONResponse(status_code=status, content=exc.as_dict())


def refused(source: str, status: int, content: dict[str, object]) -> JSONResponse:
    log.warning("intake %s: %d refused: %s", source, status, content["error"])
    metrics.intake_refused(source, status)
    return JSONResponse(status_code=status, content=content)


def validation_to_intake_error(exc: ValidationError) -> IntakeError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    summary = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
    return IntakeError(summary, field=field, source="body")


def intake_router(intake: Intake, parse_cap: Callable[[bytes], list[IntakeItem]],
                  parse_alertmanager: Callable[[bytes], list[IntakeItem]]) -> APIRouter:
    router = APIRouter()
    report_schema = IncidentReport.model_json_schema(ref_template="#/components/schemas/{model}")

    @router.post("/v1/incidents", status_code=202, response_model=AcceptedOut, openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": report_schema}}}})
    async def post_incident(request: Request, kind: Literal["report", "update", "close"] = "report"
                            ) -> AcceptedOut | JSONResponse:
        """kind=update changes the open incident with the report's dedup_key (grade, title…); kind=close closes it."""
        reporter = await _reporting_person(request, intake)
        body = await intake.guarded_body(request, "api", person=reporter.person_id if reporter else None)
        try:
            if len(body) > OFFLOAD_BYTES:
                report = await intake.parser.run("api", IncidentReport.model_validate_json, body)
            else:
                report = IncidentReport.model_validate_json(body)
        except ValidationError as exc:
            error = validation_to_intake_error(exc)
            errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"], "type": e["type"]}
                      for e in exc.errors()]
            log.warning("intake api: 422 %s", error)
            metrics.intake("api", "rejected")
            return JSONResponse(status_code=422, content={"error": f"invalid request: {error.message}",
                                                          "field": error.field, "errors": errors})
        if report.source.value not in ("api", "cli", "drill"):
            report = report.model_copy(update={"source": Source.api})  # only the adapters may claim other sources
        if reporter is not None:  # a person filed it: the report says who, whatever its labels claimed
            report = report.model_copy(update={"labels": {**report.labels, "reported_by": reporter.person_id}})
        return accepted_out((await intake.commit("api", [IntakeItem(kind=RawKind(kind), report=report)]))[0])

    @router.post("/v1/intake/alertmanager", status_code=202, response_model=BatchAcceptedOut)
    async def post_alertmanager(request: Request) -> BatchAcceptedOut | JSONResponse:
        token, body = await intake.token_and_body(request, "alertmanager")
        try:
            items = await intake.parser.run("alertmanager", parse_alertmanager, body)
        except IntakeError as exc:
            return rejected("alertmanager", exc)
        if (forbidden := binding_refusal(token, items)) is not None:
            return refused("alertmanager", 403, forbidden)
        items = bind_source(items, token.name)  # its namespace: a resolve closes only what this binding opened
        return BatchAcceptedOut(accepted=[accepted_out(a) for a in await intake.commit("alertmanager", items)])

    @router.post("/v1/intake/cap", status_code=202, response_model=BatchAcceptedOut)
    async def post_cap(request: Request) -> BatchAcceptedOut | JSONResponse:
        token, body = await intake.token_and_body(request, "cap")
        try:
            items = await intake.parser.run("cap", parse_cap, body)
        except IntakeError as exc:
            return rejected("cap", exc)
        if (forbidden := binding_refusal(token, items)) is not None:
            return refused("cap", 403, forbidden)  # a <sender> this token may not use
        if (conflict := await run_in_threadpool(follow_up_conflict, intake.store, items)) is not None:
            return refused("cap", 409, conflict)  # an Update or Cancel naming another sender's message
        return BatchAcceptedOut(accepted=[accepted_out(a) for a in await intake.commit("cap", items)])

    return router

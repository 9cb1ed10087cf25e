"""Twilio webhooks: SMS and the voice IVR. Every request must carry a valid X-Twilio-Signature.

A drill's signed texts and calls (`pingan drill run`, injects `sms:` and `voice:`) carry the run in a form field of
their own (DRILL_FIELD): they come in as exercises of that run, which must be registered and running."""

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from pingan import metrics
from pingan.handlers.incidents.subscriptions import parse_keyword
from pingan.schemas.adapters.config import IntakeConfig
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.twilio_forms import (
    DRILL_FIELD,
    DRILL_INCIDENT_HEADER,
    as_exercise,
    detect_lang,
    sms_help_reply,
    sms_reply,
    sms_stop_reply,
    sms_to_item,
    voice_choice,
    voice_menu,
    voice_recording,
)
from pingan.schemas.events import IntakeItem
from pingan.store.drills import DrillStore
from pingan.web.guards import charge_unauthenticated, read_body
from pingan.web.intake import Intake, rejected
from pingan.web.twilio_commands import sms_command, status_callback, voice_ack
from pingan.web.twilio_subscriptions import subscription_reply

log = logging.getLogger("pingan.intake")
TWIML = "application/xml"
BASE = "/v1/intake/twilio"


def twilio_router(intake: Intake, config: IntakeConfig) -> APIRouter:
    settings = intake.settings
    validator = RequestValidator(settings.twilio_auth_token) if settings.twilio_auth_token else None

    def public_url(request: Request, path: str | None = None) -> str:
        # Behind a proxy Twilio signs the URL it called, not the one we see: PINGAN_PUBLIC_URL says what that was.
        base = settings.public_url.rstrip("/") if settings.public_url else str(request.base_url).rstrip("/")
        if path is not None:
            return base + path
        query = f"?{request.url.query}" if request.url.query else ""
        return base + request.url.path + query

    async def signed_form(request: Request, source: str) -> dict[str, str]:
        """The form of a request Twilio signed. The hotline's allowance is used only after the signature is checked,
        so unsigned junk cannot use it up; junk uses its client address's budget instead (429 once spent)."""
        body = await read_body(request, source, settings.intake_max_body_bytes)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        signature = request.headers.get("x-twilio-signature", "")
        if validator is None:
            charge_unauthenticated(intake.unauthenticated, request, source)
            log.warning("intake %s: 403 PINGAN_TWILIO_AUTH_TOKEN is not set, so no signature can be checked", source)
            metrics.intake(source, "unauthorized")
            raise HTTPException(403, "twilio intake is not configured (PINGAN_TWILIO_AUTH_TOKEN)")
        if not signature or not validator.validate(public_url(request), form, signature):
            charge_unauthenticated(intake.unauthenticated, request, source)
            log.warning("intake %s: 403 %s X-Twilio-Signature for %s", source, "missing" if not signature else "bad",
                        public_url(request))
            metrics.intake(source, "unauthorized")
            raise HTTPException(403, "invalid X-Twilio-Signature")
        intake.limiter.check(source)
        return form

    def drill_of(form: dict[str, str]) -> str | None:
        """The drill run a signed drill inject names (DRILL_FIELD), or None for a real text or call. A run that is
        not registered, or has ended, is refused (422 naming the field): its exercise must not pass for real."""
        run_id = form.get(DRILL_FIELD)
        if run_id is None:
            return None
        run = DrillStore(intake.store).get(run_id)
        if run is None or run.ended_at is not None:
            raise IntakeError(f"drill run {run_id!r} is not running (pingan drill run registers it)",
                              field=DRILL_FIELD, source="form")
        return run_id

    async def commit(source: str, item: IntakeItem, drill: str | None) -> tuple[str, dict[str, str]]:
        """Commit the report (a drill's as an exercise of its run); its id, and for a drill a header naming it (the
        runner follows the incident it made; Twilio ignores headers)."""
        accepted = (await intake.commit(source, [item if drill is None else as_exercise(item, drill)]))[0]
        return accepted.incident_id, {DRILL_INCIDENT_HEADER: accepted.incident_id} if drill else {}

    router = APIRouter()

    @router.post(BASE + "/sms")
    async def sms(request: Request) -> Response:
        form = await signed_form(request, "hotline_sms")
        try:
            drill = await run_in_threadpool(drill_of, form)
        except IntakeError as exc:
            return rejected("hotline_sms", exc)
        # Store reads and writes, and the classifier's tokenizer: in a thread, so the event loop keeps answering.
        # A drill's texts are reports: an exercise never commands an incident by phone.
        keyword = parse_keyword(form.get("Body", "")) if drill is None else None
        if keyword is not None:  # 订阅 / 退订 …: before a duty command or a report (issue 17)
            reply = await run_in_threadpool(subscription_reply, intake, form, keyword,
                                            detect_lang(form.get("Body", "")))
            if reply is not None:
                return Response(reply, media_type=TWIML)
        if drill is None:
            command_reply = await run_in_threadpool(sms_command, intake, form, detect_lang(form.get("Body", "")))
            if command_reply is not None:
                return Response(command_reply, media_type=TWIML)
        try:
            outcome = await run_in_threadpool(sms_to_item, form, config.sms_keywords, config.areas)
        except IntakeError as exc:
            return rejected("hotline_sms", exc)
        if outcome.item is None:
            reply = sms_stop_reply(outcome.lang) if outcome.command == "stop" else sms_help_reply(outcome.lang)
            if outcome.command == "start":
                reply = sms_help_reply(outcome.lang)
            return Response(reply, media_type=TWIML)
        incident_id, headers = await commit("hotline_sms", outcome.item, drill)
        return Response(sms_reply(outcome.lang, incident_id), media_type=TWIML, headers=headers)

    @router.post(BASE + "/voice")
    async def voice(request: Request) -> Response:
        await signed_form(request, "hotline_voice")
        return Response(voice_menu(public_url(request, BASE + "/voice/choice")), media_type=TWIML)

    @router.post(BASE + "/voice/choice")
    async def voice_menu_choice(request: Request) -> Response:
        form = await signed_form(request, "hotline_voice")
        try:
            drill = await run_in_threadpool(drill_of, form)
            outcome = voice_choice(form, public_url(request, BASE + "/voice/recording"))
        except IntakeError as exc:
            return rejected("hotline_voice", exc)
        headers = (await commit("hotline_voice", outcome.item, drill))[1] if outcome.item is not None else {}
        return Response(outcome.twiml, media_type=TWIML, headers=headers)

    @router.post(BASE + "/voice/recording")
    async def voice_message(request: Request) -> Response:
        form = await signed_form(request, "hotline_voice")
        try:
            drill = await run_in_threadpool(drill_of, form)
            outcome = await run_in_threadpool(voice_recording, form, config.sms_keywords)
        except IntakeError as exc:
            return rejected("hotline_voice", exc)
        headers = (await commit("hotline_voice", outcome.item, drill))[1] if outcome.item is not None else {}
        return Response(outcome.twiml, media_type=TWIML, headers=headers)

    @router.post(BASE + "/voice/ack")
    async def voice_keypress(request: Request) -> Response:
        form = await signed_form(request, "hotline_voice")
        reply = await run_in_threadpool(voice_ack, intake, request.query_params.get("key", ""), form)
        return Response(reply, media_type=TWIML)

    @router.post(BASE + "/status")
    async def delivery_status(request: Request) -> Response:
        form = await signed_form(request, "twilio_status")
        await run_in_threadpool(status_callback, intake, form)
        return Response("", status_code=204)

    return router

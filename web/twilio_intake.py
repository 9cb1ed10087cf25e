"""Twilio webhooks: SMS and the voice IVR. Every request must carry a valid X-Twilio-Signature."""

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from pingan import metrics
from pingan.schemas.adapters.config import IntakeConfig
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.twilio_forms import (
    detect_lang,
    sms_help_reply,
    sms_reply,
    sms_stop_reply,
    sms_to_item,
    voice_choice,
    voice_menu,
    voice_recording,
)
from pingan.web.guards import charge_unauthenticated, read_body
from pingan.web.intake import Intake, rejected
from pingan.web.twilio_commands import sms_command, status_callback, voice_ack

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

    router = APIRouter()

    @router.post(BASE + "/sms")
    async def sms(request: Request) -> Response:
        form = await signed_form(request, "hotline_sms")
        # Store reads and writes, and the classifier's tokenizer: in a thread, so the event loop keeps answering.
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
        accepted = (await intake.commit("hotline_sms", [outcome.item]))[0]
        return Response(sms_reply(outcome.lang, accepted.incident_id), media_type=TWIML)

    @router.post(BASE + "/voice")
    async def voice(request: Request) -> Response:
        await signed_form(request, "hotline_voice")
        return Response(voice_menu(public_url(request, BASE + "/voice/choice")), media_type=TWIML)

    @router.post(BASE + "/voice/choice")
    async def voice_menu_choice(request: Request) -> Response:
        form = await signed_form(request, "hotline_voice")
        try:
            outcome = voice_choice(form, public_url(request, BASE + "/voice/recording"))
        except IntakeError as exc:
            return rejected("hotline_voice", exc)
        if outcome.item is not None:
            await intake.commit("hotline_voice", [outcome.item])
        return Response(outcome.twiml, media_type=TWIML)

    @router.post(BASE + "/voice/recording")
    async def voice_message(request: Request) -> Response:
        form = await signed_form(request, "hotline_voice")
        try:
            outcome = await run_in_threadpool(voice_recording, form, config.sms_keywords)
        except IntakeError as exc:
            return rejected("hotline_voice", exc)
        if outcome.item is not None:
            await intake.commit("hotline_voice", [outcome.item])
        return Response(outcome.twiml, media_type=TWIML)

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

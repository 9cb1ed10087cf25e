"""Signing in over HTTP: POST /auth/sign-in, POST /auth/second-factor, POST /auth/sign-out, GET /auth/me,
GET /auth/csrf, POST /auth/lang. Each takes JSON or a form (the console's sign-in page posts a form); the contract
is in web/auth.py's docstring."""

import json
import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from pingan.handlers.access.identity import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    mask_phone,
    safe_next,
)
from pingan.handlers.access.permissions import SECOND_FACTOR, permissions_of
from pingan.handlers.channels.base import ChannelAdapter
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.store.identity import IdentityRefused, SignInRefused
from pingan.web.auth import (
    FORM_TYPES,
    Auth,
    Principal,
    csrf_matches,
    principal,
    session_principal,
    submitted_form,
)
from pingan.web.intake import Intake

SIGN_IN_PAGE = "/console/sign-in"
SECOND_FACTOR_PAGE = "/console/second-factor"
CODE_TEXT = {"zh": "【平安】登录验证码 {code}，{minutes} 分钟内有效。非本人操作请立即联系值班室。",
             "en": "[Pingan] Sign-in code {code}, valid for {minutes} minutes. Not you? Call the duty room now."}


class SignInIn(BaseModel):
    # 59: a sign-in, failed ones included, is logged under "user:<person>", which the log keys in 64 characters.
    person: str = Field(min_length=1, max_length=59, pattern=r"^[^\x00]+$",
                        description="Person id of the directory, e.g. chen-jianhua")
    password: str = Field(min_length=1, max_length=1024)


class SecondFactorIn(BaseModel):
    code: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$",
                             description="Leave out to have a code sent by SMS; give it to pass the second factor")


class LangIn(BaseModel):
    lang: str = Field(pattern=r"^(zh|en)$")


class MeOut(BaseModel):
    person_id: str
    name: str
    roles: list[str]
    permissions: list[str]
    departments: list[str]
    lang: str
    method: str
    second_factor: bool
    second_factor_for: list[str] = Field(description="Permissions that ask for the second factor")
    csrf: str | None = Field(description="The session's CSRF token (X-CSRF-Token header or `csrf` form field)")


class Attempts:
    """Sign-in and code attempts per client address: at most `per_minute` in any minute (429 beyond)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(client, deque())
            while times and now - times[0] > 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            if len(self._seen) > 10_000:  # forget quiet addresses
                for key in [k for k, v in self._seen.items() if not v]:
                    del self._seen[key]
            return True


def install_auth(api: FastAPI, intake: Intake, channels: dict[str, ChannelAdapter] | None) -> Auth:
    """Put the authenticator on `api.state.auth` (web.auth.principal reads it) and mount /auth."""
    auth = Auth(intake.settings, intake.store, lambda: intake.plans().directory, intake.tokens,
                (channels or {}).get("twilio_sms"))
    api.state.auth = auth
    api.include_router(auth_router(auth))
    return auth


def _client(request: Request) -> str:
    return f"web:{request.client.host if request.client else '?'}"


class _Asked:
    """One request's fields, whether it came as JSON or as a form, and how to answer it."""

    def __init__(self, form: bool, fields: dict[str, Any]) -> None:
        self.form = form
        self.fields = fields

    def redirect_ok(self, default: str = "/console/") -> RedirectResponse:
        return RedirectResponse(safe_next(self.fields.get("next"), default), status_code=303)

    def fail(self, status: int, error: str, message: str, field: str, back: str = SIGN_IN_PAGE,
             **extra: str) -> Response:
        if self.form:
            query = {"error": error, **({"next": self.fields["next"]} if self.fields.get("next") else {}), **extra}
            return RedirectResponse(f"{safe_next(self.fields.get('back'), back)}?{urlencode(query)}", status_code=303)
        return JSONResponse(status_code=status, content={"error": message, "field": field, "code": error})


async def _asked(request: Request) -> _Asked:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in FORM_TYPES:
        return _Asked(True, await submitted_form(request))
    body = await request.body()
    if not body:
        return _Asked(False, {})
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser recurses
        raise HTTPException(422, "body: not JSON, or nested too deep (send application/json, or a form)") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "body: a JSON object is expected")
    return _Asked(False, data)


def _model(model: type[BaseModel], asked: _Asked) -> BaseModel:
    try:
        return model.model_validate({k: v for k, v in asked.fields.items() if k in model.model_fields})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise _Invalid(field, f"{field}: {first['msg']}") from None


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def auth_router(auth: Auth) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["auth"])
    attempts = Attempts(auth.settings.sign_in_rate_per_minute)

    def set_session_cookie(response: Response, raw: str) -> None:
        response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="strict", secure=auth.secure_cookies,
                            path="/", max_age=auth.settings.session_max_age_s)

    def me(person: Principal) -> MeOut:
        return MeOut(person_id=person.person_id, name=person.name, roles=sorted(r.value for r in person.roles),
                     permissions=sorted(p.value for p in permissions_of(person.roles)),
                     departments=sorted(person.departments), lang=person.lang, method=person.method,
                     second_factor=person.second_factor,
                     second_factor_for=sorted(p.value for p in SECOND_FACTOR if person.can(p)), csrf=person.csrf)

    @router.get("/csrf")
    def csrf(request: Request) -> Response:
        """The sign-in form's CSRF token (also set as the `pingan_csrf` cookie the form must match)."""
        value = request.cookies.get(SIGN_IN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = JSONResponse({"csrf": value})
        response.set_cookie(SIGN_IN_CSRF_COOKIE, value, httponly=True, samesite="strict",
                            secure=auth.secure_cookies, path="/")
        return response

    @router.post("/sign-in", response_model=MeOut, responses={401: {}, 403: {}, 429: {}})
    async def sign_in(request: Request) -> Response:
        """JSON {"person", "password"} or the sign-in form (person, password, csrf, next): a session cookie."""
        asked = await _asked(request)
        if asked.form and not csrf_matches(request, None, asked.fields.get("csrf")):
            return asked.fail(403, "csrf", "csrf: the form is stale or came from another site; reload it", "csrf")
        if not attempts.allow(_client(request)):
            return asked.fail(429, "rate", "too many attempts from this address; wait a minute", "person")
        try:
            body = _model(SignInIn, asked)
        except _Invalid as exc:
            return asked.fail(422, "missing", str(exc), exc.field)
        assert isinstance(body, SignInIn)
        try:
            user = await run_in_threadpool(auth.identity.check_password, body.person.strip(), body.password,
                                           _client(request))
        except SignInRefused as exc:
            code = "locked" if exc.locked_until else "credentials"
            return asked.fail(401, code, str(exc), "password" if code == "credentials" else "person")
        raw, _ = await run_in_threadpool(auth.sessions.create, user, auth.settings.session_idle_timeout_s,
                                         _client(request))
        person = await run_in_threadpool(principal_from_cookie, request, raw)
        response: Response = asked.redirect_ok() if asked.form else JSONResponse(me(person).model_dump())
        set_session_cookie(response, raw)
        return response

    def principal_from_cookie(request: Request, raw: str) -> Principal:
        return session_principal(auth, raw)

    @router.post("/second-factor", response_model=MeOut, responses={401: {}, 403: {}, 429: {}, 503: {}})
    async def second_factor(request: Request, person: Principal = Depends(principal)) -> Response:
        """Without `code`: a one-time code goes by SMS to the person's own number. With it: the session passes the
        second factor (close and regrade for PINGAN_SECOND_FACTOR_WINDOW_S). A wrong code is logged and counts
        towards the lock."""
        asked = await _asked(request)
        if person.method != "session":
            return asked.fail(403, "session", "second factor: only a signed-in session can pass it", "session",
                              SECOND_FACTOR_PAGE)
        if not csrf_matches(request, person, asked.fields.get("csrf") or request.headers.get("x-csrf-token")):
            return asked.fail(403, "csrf", "csrf: missing or wrong CSRF token", "csrf", SECOND_FACTOR_PAGE)
        if not attempts.allow(_client(request)):
            return asked.fail(429, "rate", "too many attempts from this address; wait a minute", "code",
                              SECOND_FACTOR_PAGE)
        if asked.fields.get("code") in ("", None):
            return await send_code(request, asked, person)
        try:
            body = _model(SecondFactorIn, asked)
        except _Invalid as exc:
            return asked.fail(422, "code", f"{exc} (six digits)", exc.field, SECOND_FACTOR_PAGE)
        assert isinstance(body, SecondFactorIn) and body.code is not None
        session = auth.sessions.find(request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            return asked.fail(401, "session", "session: signed out", "session", SECOND_FACTOR_PAGE)
        passed, until = await run_in_threadpool(auth.sessions.verify_code, session, body.code, _client(request))
        if not passed:
            if until is not None:
                return asked.fail(401, "locked", "code: wrong too many times; the account is locked and signed out",
                                  "code", SIGN_IN_PAGE)
            return asked.fail(403, "code", "code: wrong, used or expired; request a new one", "code",
                              SECOND_FACTOR_PAGE)
        if asked.form:
            return asked.redirect_ok()
        refreshed = await run_in_threadpool(principal, request)
        return JSONResponse(me(refreshed).model_dump())

    async def send_code(request: Request, asked: _Asked, person: Principal) -> Response:
        contact = auth.directory().people.get(person.person_id)
        number = contact.contacts.sms if contact else None
        if not number:
            return asked.fail(409, "sms", f"second factor: the directory has no SMS number for {person.person_id}",
                              "person", SECOND_FACTOR_PAGE)
        if auth.sms is None:
            return asked.fail(503, "sms", "second factor: SMS is not configured (PINGAN_TWILIO_ACCOUNT_SID, "
                                          "_AUTH_TOKEN, _FROM_NUMBER)", "code", SECOND_FACTOR_PAGE)
        session = auth.sessions.find(request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            return asked.fail(401, "session", "session: signed out", "session", SECOND_FACTOR_PAGE)
        sent = await run_in_threadpool(_send, auth, session, person, number)
        if sent is not None:
            return asked.fail(502, "sms", f"second factor: the code could not be sent ({sent})", "code",
                              SECOND_FACTOR_PAGE)
        if asked.form:
            query = {"sent": "1", **({"next": asked.fields["next"]} if asked.fields.get("next") else {})}
            return RedirectResponse(f"{safe_next(asked.fields.get('back'), SECOND_FACTOR_PAGE)}?{urlencode(query)}",
                                    status_code=303)
        return JSONResponse(status_code=202, content={"sent": True, "channel": "sms", "to": mask_phone(number),
                                                      "valid_s": auth.settings.one_time_code_ttl_s})

    @router.post("/sign-out", status_code=204, responses={401: {}, 403: {}})
    async def sign_out(request: Request, person: Principal = Depends(principal)) -> Response:
        asked = await _asked(request)
        if person.method == "session":
            if not csrf_matches(request, person, asked.fields.get("csrf") or request.headers.get("x-csrf-token")):
                return asked.fail(403, "csrf", "csrf: missing or wrong CSRF token", "csrf", "/console/")
            session = auth.sessions.find(request.cookies.get(SESSION_COOKIE, ""))
            if session is not None:
                await run_in_threadpool(auth.sessions.end, session, person.person_id, "sign-out")
        response: Response = (RedirectResponse(safe_next(asked.fields.get("next"), SIGN_IN_PAGE), status_code=303)
                              if asked.form else Response(status_code=204))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/me", response_model=MeOut)
    def whoami(person: Principal = Depends(principal)) -> MeOut:
        return me(person)

    @router.post("/lang", response_model=MeOut)
    async def set_lang(request: Request, person: Principal = Depends(principal)) -> Response:
        """The person's language (zh or en), kept with their account."""
        asked = await _asked(request)
        if person.method == "session" and not csrf_matches(
                request, person, asked.fields.get("csrf") or request.headers.get("x-csrf-token")):
            return asked.fail(403, "csrf", "csrf: missing or wrong CSRF token", "csrf", "/console/")
        try:
            body = _model(LangIn, asked)
            assert isinstance(body, LangIn)
            await run_in_threadpool(auth.identity.set_lang, person.person_id, body.lang, person.person_id)
        except (_Invalid, IdentityRefused) as exc:
            return asked.fail(422, "lang", str(exc), "lang", "/console/")
        if asked.form:
            return asked.redirect_ok()
        return JSONResponse(me(await run_in_threadpool(principal, request)).model_dump())

    return router


def _send(auth: Auth, session: Any, person: Principal, number: str) -> str | None:
    """Send a fresh code to the person's own number through the Twilio channel; None when it went out."""
    assert auth.sms is not None
    code = auth.sessions.issue_code(session, auth.settings.one_time_code_ttl_s)
    lang = person.lang if person.lang in CODE_TEXT else "zh"
    text = CODE_TEXT[lang].format(code=code, minutes=max(1, auth.settings.one_time_code_ttl_s // 60))
    now = utcnow()
    notification = Notification(
        idempotency_key=secrets.token_hex(16), incident_id=f"user:{person.person_id}", plan_id="pingan:sign-in",
        plan_version=1, step="second-factor", recipient=Recipient(
            id=person.person_id, name=person.name or person.person_id, channel=Channel.twilio_sms, address=number,
            lang=lang), channel=Channel.twilio_sms, text=text, created_at=now)
    result = auth.sms.send(notification)
    ok = result.outcome is SendOutcome.accepted
    auth.sessions.code_sent(session, "sms", mask_phone(number), "sent" if ok else "failed",
                            None if ok else result.detail)
    return None if ok else (result.detail or result.outcome.value)


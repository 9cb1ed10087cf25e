"""Rendering console pages: the Jinja2 environment, the signed-in person, the language, times in the district's zone,
and the CSRF token every form carries.

CSRF is a double-submit token: a random value in an HttpOnly, SameSite=Strict cookie, repeated in each form's hidden
`csrf` field. Another site can neither read the cookie nor set it, so it cannot forge a form that matches."""

import asyncio
import inspect
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pingan import __version__
from pingan.handlers.access.permissions import Permission
from pingan.web import auth
from pingan.web.auth import Principal
from pingan.web.console.i18n import LANG_COOKIE, LANGS, normal_lang, term, translate
from pingan.web.guards import same_secret

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Static files are served under a versioned path, so a new release is never mixed with a cached old script.
ASSET_VERSION = f"{__version__}-1"
CSRF_COOKIE = "pingan_csrf"
PREFIX = "/console"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True,
                  lstrip_blocks=True)


@dataclass
class Page:
    """What every template gets: the person, their language and the helpers bound to it."""

    request: Request
    person: Principal | None
    lang: str
    tz: ZoneInfo
    csrf: str
    new_csrf: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def t(self, key: str, **fields: Any) -> str:
        return translate(self.lang, key, **fields)

    def term(self, group: str, value: object) -> str:
        return term(self.lang, group, value)

    def can(self, permission: str) -> bool:
        return self.person is not None and self.person.can(Permission(permission))

    def local(self, when: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if when is None:
            return ""
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(self.tz).strftime(fmt)

    def html(self, template: str, **context: Any) -> str:
        return env.get_template(template).render(page=self, t=self.t, term=self.term, can=self.can,
                                                 local=self.local, prefix=PREFIX, asset=ASSET_VERSION,
                                                 now=datetime.now(UTC), **context)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return self.respond(self.html(template, **context), status_code)

    def respond(self, html: str, status_code: int = 200) -> HTMLResponse:
        response = HTMLResponse(html, status_code=status_code)
        # Pages show live data and names: never cached, never framed by another site.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
        if self.new_csrf:
            response.set_cookie(CSRF_COOKIE, self.csrf, httponly=True, samesite="strict", path="/")
        return response


def language(request: Request, person: Principal | None) -> str:
    """The person's language; the cookie wins, so the switch works for everyone, signed in or not."""
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return str(cookie)
    return normal_lang(person.lang if person else None)


async def current_person(request: Request) -> Principal | None:
    """The signed-in person, or None. Calls web.auth.principal (or a test's override of it) directly, so that a page
    can send a browser without a session to the sign-in form instead of answering 401."""
    resolver = request.app.dependency_overrides.get(auth.principal, auth.principal)
    try:
        # A session lookup reads the store: in a thread, never on the event loop.
        if inspect.iscoroutinefunction(resolver):
            found = await resolver(request)
        else:
            found = await asyncio.to_thread(resolver, request)
    except HTTPException as exc:
        if exc.status_code == 401:
            return None
        raise
    return found if isinstance(found, Principal) else None


def sign_in_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return HTTPException(303, "sign in first", headers={"Location": f"{PREFIX}/sign-in?next={quote(target)}"})


async def signed_in(request: Request) -> Principal:
    """A FastAPI dependency: the person, or a redirect to the sign-in page."""
    person = await current_person(request)
    if person is None:
        raise sign_in_redirect(request)
    return person


def page_for(request: Request, person: Principal | None, tz: ZoneInfo) -> Page:
    token = request.cookies.get(CSRF_COOKIE)
    fresh = not token
    return Page(request, person, language(request, person), tz, token or secrets.token_urlsafe(24), fresh)


def check_csrf(request: Request, form_token: str | None, person: Principal | None = None) -> None:
    """403 unless the form's token matches the cookie's, or the session's own token (web.auth's contract)."""
    expected = [t for t in (request.cookies.get(CSRF_COOKIE), getattr(person, "csrf", None)) if t]
    if not form_token or not any(same_secret(form_token, t) for t in expected):
        raise HTTPException(403, "the form is stale or came from another site; reload the page")


def require_permission(person: Principal, permission: Permission) -> None:
    if not person.can(permission):
        raise HTTPException(403, f"your roles do not allow {permission.value}")

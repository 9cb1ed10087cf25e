"""Who is asking: the authenticated person behind a request, and the permission checks every route makes.

CONTRACT (the console and the API routes code against it; names are kept, fields and functions only added):
- `principal(request)` -> Principal, a FastAPI dependency (sync): from a personal API token
  (`Authorization: Bearer pa_…`, checked first) or the session cookie `pingan_session` (console); 401 when neither is
  valid (unknown, revoked, expired, idle, disabled or locked). Intake tokens never authenticate a person: one sent
  here is 403. `principal` does not check CSRF; a POST route that uses it alone awaits
  `check_csrf(request, person)`.
- `require(permission)` -> an (async) dependency returning the Principal: 401 without credentials, 403 when the
  person's roles lack the permission (handlers.access.permissions), 403 on an unsafe method of a session without a
  CSRF token (header `X-CSRF-Token` or form field `csrf`, equal to the session's `Principal.csrf` or to the
  `pingan_csrf` double-submit cookie), and for SECOND_FACTOR permissions (close, regrade) 403 unless the session
  passed the second factor within PINGAN_SECOND_FACTOR_WINDOW_S (a personal token never has). The dependency
  carries `.permission`, so tests can list what every route asks for.
- The actor of every command is `principal.person_id`; the log records `principal.method` (session, token).
- Sign-in over HTTP (web/auth_routes.py), JSON or a form (fields `person`, `password`, `code`, `csrf`, `next`,
  `back`): POST /auth/sign-in, POST /auth/second-factor (no `code`: send one by SMS; with it: verify),
  POST /auth/sign-out, GET /auth/me, GET /auth/csrf, POST /auth/lang. A form's `csrf` must equal the `pingan_csrf`
  cookie (the sign-in page sets it; GET /auth/csrf does too) or the session's token. A form post answers 303: to
  `next` (a local path; default /console/) on success, to `back` (default /console/sign-in) with
  `?error=credentials|locked|csrf|rate|code|sms|missing&next=…` on failure; the code step redirects to `back`
  (default /console/second-factor) with `?sent=1&next=…` once the code is sent.
- Phone numbers: `shown(person, data)` masks every number in JSON-like data unless the person has phones.read;
  `sees(person, timeline)` says whether a department liaison may see an incident with that log.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from pingan.handlers.access.identity import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    TOKEN_PREFIX,
    LockPolicy,
    describe_permission_gap,
    involved_departments,
    locked,
    mask_phones,
    second_factor_fresh,
)
from pingan.handlers.access.permissions import SECOND_FACTOR, Permission, Role, allowed, scoped, sees_incident
from pingan.handlers.channels.base import ChannelAdapter
from pingan.handlers.plans.directory import DirectoryIndex
from pingan.schemas.action import Action
from pingan.schemas.common import utcnow
from pingan.schemas.incident import Incident
from pingan.settings import Settings
from pingan.store.identity import IdentityStore
from pingan.store.repository import Store
from pingan.store.sessions import SessionStore
from pingan.web.guards import same_secret

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Principal:
    person_id: str  # a person of plans/directory/people.yaml
    roles: frozenset[Role]
    method: str  # how they authenticated: session, token (and, outside HTTP: cli, sms, voice)
    departments: frozenset[str] = frozenset()  # a department liaison's departments
    lang: str = "zh"  # the console's language for this person: zh or en
    session_id: str | None = None  # the session's stored hash (never the cookie's secret)
    second_factor: bool = False  # the session passed the second factor recently
    name: str = ""  # the person's name in the directory
    csrf: str | None = None  # the session's CSRF token, for forms and the X-CSRF-Token header
    token_id: str | None = None  # the personal token's id (method "token")

    def can(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)


@dataclass
class Auth:
    """What the dependencies need, kept on `app.state.auth` (web/auth_routes.install_auth)."""

    settings: Settings
    store: Store
    directory: Callable[[], DirectoryIndex]
    intake_tokens: dict[str, str]
    sms: ChannelAdapter | None = None
    identity: IdentityStore = field(init=False)
    sessions: SessionStore = field(init=False)

    def __post_init__(self) -> None:
        policy = LockPolicy(self.settings.sign_in_max_failures, float(self.settings.sign_in_lock_s))
        self.identity = IdentityStore(self.store.engine, policy)
        self.sessions = SessionStore(self.store.engine, self.identity, float(self.settings.session_max_age_s))

    @property
    def secure_cookies(self) -> bool:
        return bool(self.settings.public_url and self.settings.public_url.lower().startswith("https://"))

    def is_intake_token(self, given: str) -> bool:
        return any(same_secret(given, t) for t in self.intake_tokens.values())

    def name_of(self, person_id: str) -> str:
        person = self.directory().people.get(person_id)
        return person.name if person else ""


def _auth(request: Request) -> Auth:
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        raise HTTPException(503, "authentication is not configured on this app")
    return auth


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def principal(request: Request) -> Principal:
    auth = _auth(request)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return _from_token(auth, given.strip())
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        return session_principal(auth, raw)
    raise unauthorized("sign in first (POST /auth/sign-in), or send a personal token: Authorization: Bearer pa_…")


def _from_token(auth: Auth, given: str) -> Principal:
    if not given.startswith(TOKEN_PREFIX):
        if auth.is_intake_token(given):
            raise HTTPException(403, "token: an intake or scraper token reaches only its own endpoints; commands "
                                     "and reads need a person's token (pingan tokens create) or session")
        raise unauthorized("token: unknown; personal tokens start with pa_")
    found = auth.identity.token_owner(given)
    if found is None:
        raise unauthorized("token: unknown, revoked, or its person is disabled or locked")
    token, user, roles = found
    return Principal(person_id=user.person_id, roles=roles, method="token", departments=frozenset(user.departments),
                     lang=user.lang, name=auth.name_of(user.person_id), token_id=token.id)


def session_principal(auth: Auth, raw: str) -> Principal:
    session, why = auth.sessions.current(raw)
    if session is None:
        raise unauthorized("session: signed out" if why == "unknown" else f"session: ended ({why}); sign in again")
    user = auth.identity.user(session.person_id)
    if user is None or user.disabled or locked(user.locked_until, utcnow()):
        raise unauthorized("session: the account is disabled or locked")
    fresh = second_factor_fresh(session.second_factor_at, utcnow(), auth.settings.second_factor_window_s)
    return Principal(person_id=user.person_id, roles=frozenset(user.roles), method="session",
                     departments=frozenset(user.departments), lang=user.lang, session_id=session.id_hash,
                     second_factor=fresh, name=auth.name_of(user.person_id), csrf=session.csrf_token)


async def submitted_form(request: Request) -> dict[str, str]:
    """The form fields of a form post (urlencoded or multipart), or {} for any other body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == FORM_TYPES[0]:
        return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    if kind == FORM_TYPES[1]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return {}


def csrf_matches(request: Request, person: Principal | None, submitted: str | None) -> bool:
    """The submitted token equals the session's own, or the `pingan_csrf` double-submit cookie (both non-empty)."""
    if not submitted:
        return False
    expected = [t for t in (person.csrf if person else None, request.cookies.get(SIGN_IN_CSRF_COOKIE)) if t]
    return any(same_secret(submitted, t) for t in expected)


async def check_csrf(request: Request, person: Principal) -> None:
    """403 unless an unsafe request of a session carries its CSRF token (tokens and safe methods need none)."""
    if person.method != "session" or request.method in SAFE_METHODS:
        return
    submitted = request.headers.get(CSRF_HEADER)
    if not submitted:
        submitted = (await submitted_form(request)).get(CSRF_FIELD)
    if not csrf_matches(request, person, submitted):
        raise HTTPException(403, f"csrf: missing or wrong CSRF token (header X-CSRF-Token or form field "
                                 f"{CSRF_FIELD}); reload the page")


def require(permission: Permission) -> Callable[[Request], Any]:
    async def dependency(request: Request) -> Principal:
        resolver = request.app.dependency_overrides.get(principal, principal)
        person = await run_in_threadpool(resolver, request)
        if not person.can(permission):
            raise HTTPException(403, describe_permission_gap(person.roles, permission))
        await check_csrf(request, person)
        if permission in SECOND_FACTOR and not person.second_factor:
            how = ("a personal token cannot pass it: sign in to a session" if person.method == "token"
                   else "POST /auth/second-factor for a code by SMS, then try again")
            raise HTTPException(403, f"second factor: {permission.value} needs a second factor passed in the last "
                                     f"{_auth(request).settings.second_factor_window_s // 60} minutes; {how}")
        return person

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.name}"
    return dependency


def shown(person: Principal, data: Any) -> Any:
    """JSON-like data as this person may see it: phone numbers masked unless they have phones.read."""
    return data if person.can(Permission.phones_read) else mask_phones(data)


def sees(person: Principal, timeline: list[Action] | list[dict[str, Any]]) -> bool:
    """Whether the person sees an incident with this log (a department liaison: only their departments')."""
    return sees_incident(person.roles, person.departments, involved_departments(timeline))


def visible_incident(store: Store, person: Principal, some_id: str) -> Incident:
    """The incident (by its id or a report's), when it exists and the person may see it; else 404, the same answer
    for both, so a department liaison learns nothing of the incidents that are not theirs."""
    resolved = store.resolve_incident_id(some_id)
    incident = store.get_incident(resolved) if resolved else None
    if incident is None or (scoped(person.roles) and not sees(person, store.timeline(incident.id))):
        raise HTTPException(404, f"incident {some_id!r} not found")
    return incident

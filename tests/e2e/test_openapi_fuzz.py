"""Schemathesis over every operation of /openapi.json, bodies included, and over the duty console's pages and forms,
against the real API on 127.0.0.1 (uvicorn in a thread, create_api over a real store: PostgreSQL when it answers, else
SQLite): no generated request, valid or not, may get a 5xx (issue 14, finding 5). Every request carries valid
credentials for its operation, so the fuzz reaches past authentication: the intake tokens for their routes, an admin's
personal token for a person's (or, for about half of the GETs, the admin's session cookie), and for Twilio's an
X-Twilio-Signature computed over the exact URL and form each generated request sends; one request in WRONG_EVERY
carries wrong ones instead.

Bounded and repeatable: a fixed number of examples an operation, derandomized (the same cases every run). The module
takes about 3 minutes on this shared 2-core machine (some 36 s of CPU); EXAMPLES is the knob."""

import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from pingan.handlers.access.permissions import Role
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.settings import Settings
from pingan.store.identity import IdentityStore
from pingan.store.repository import Store
from pingan.web.app import create_api
from tests.fixtures.database import PG_ADMIN_URL, _pg_available

EXAMPLES = 12  # generated cases an operation, on top of the schema's examples and its coverage cases
CONSOLE_EXAMPLES = 8  # the console's pages take few parameters
TOKENS = {"api": "fuzz-api", "alertmanager": "fuzz-am", "cap": "fuzz-cap", "metrics": "fuzz-metrics"}
TWILIO_TOKEN = "fuzz-twilio-auth-token-" + "x" * 9
ADMIN = "zhou-haibo"  # an admin of the shipped directory
PASSWORD = "a-long-enough-password"
WRONG_EVERY = 7
CONSOLE_CSRF = "fuzz-console-csrf"  # the pingan_csrf cookie of every request, and the forms' csrf field
BEARER_BY_PATH = {"/v1/intake/cap": TOKENS["cap"], "/v1/intake/alertmanager": TOKENS["alertmanager"]}


@schemathesis.serializer("application/xml", "application/cap+xml")
def _xml_as_is(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    # The CAP body is a string schema: send the generated text itself (the example is a real CAP message).
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else repr(value).encode()


class Credentials(requests.Session):
    """Valid credentials on every request, decided from what is actually sent: the Twilio signature covers the
    final URL (query included) and the form exactly as the server will parse it (web/twilio_intake.py)."""

    def __init__(self, personal_token: str) -> None:
        super().__init__()
        self.personal_token = personal_token
        self.session_cookie: str | None = None  # the admin's signed-in session, for half of the GETs
        self.validator = RequestValidator(TWILIO_TOKEN)
        self.cookies.set("pingan_csrf", CONSOLE_CSRF)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        path = urlsplit(request.url or "").path
        # One request in WRONG_EVERY (by its size, so the same cases get it every run) carries wrong credentials
        # in non-ASCII text: refusing them must be a 401/403 too, never a 500.
        size = int(request.headers.get("Content-Length", 0))
        wrong = size % WRONG_EVERY == 1
        if path.startswith("/v1/intake/twilio/"):
            body = request.body or b""
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            form = dict(parse_qsl(text, keep_blank_values=True))
            signature = self.validator.compute_signature(request.url or "", form)
            request.headers["X-Twilio-Signature"] = ("签名" + signature if wrong else signature).encode()  # type: ignore[assignment]
        elif request.method == "GET" and self.session_cookie and len(request.url or "") % 2 == 0 and \
                not path.startswith(("/healthz", "/readyz")):
            # The session cookie scheme; GETs only, which need no CSRF token and cannot end the session.
            request.headers.pop("Authorization", None)
            raw = ("令牌" if wrong else "") + self.session_cookie
            cookies = "; ".join(c for c in (request.headers.get("Cookie"), f"pingan_session={raw}") if c)
            request.headers["Cookie"] = cookies.encode()  # type: ignore[assignment]
        else:
            token = BEARER_BY_PATH.get(path, self.personal_token)
            if (request.method, path) == ("POST", "/v1/incidents") and size % 2:
                token = TOKENS["api"]  # the intake token and a person (incidents.report) both file reports
            if wrong:
                token = "令牌" + token
            request.headers["Authorization"] = f"Bearer {token}".encode()  # type: ignore[assignment]
        return super().send(request, **kwargs)


class Served:
    def __init__(self, url: str, session: Credentials) -> None:
        self.url = url
        self.session = session


@pytest.fixture(scope="module")
def fuzz_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL when it answers (production's store, and the stricter one: it refuses NUL characters and
    out-of-range integers that SQLite keeps), else SQLite; under CI PostgreSQL must answer."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz-db') / 'pingan.db'}"
        return
    name = f"pingan_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # The answers are under test here, not durability: no waiting for the disk on each of some 3,000 requests.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fuzz_db_url: str) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = Store(fuzz_db_url)
    limits = 10_000_000  # every generated request reaches the route: no rate limit answers in its place
    app_settings = Settings(
        data_dir=data_dir, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, public_docs=True,
        public_url=url, twilio_auth_token=TWILIO_TOKEN, intake_rate_per_minute=limits,
        intake_unauthenticated_rate_per_minute=limits, sign_in_rate_per_minute=limits)
    identity = IdentityStore(store.engine)
    identity.add_user(load_plans(PLANS_DIR).directory, ADMIN, [Role.admin.value], PASSWORD, "cli:t")
    personal = identity.create_token(ADMIN, [Role.admin.value], "cli:tests")[1]
    server = uvicorn.Server(uvicorn.Config(create_api(app_settings, store, tokens=dict(TOKENS)), log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    session = Credentials(personal)
    signed_in = requests.post(url + "/auth/sign-in", json={"person": ADMIN, "password": PASSWORD}, timeout=30)
    assert signed_in.status_code == 200, signed_in.text
    session.session_cookie = signed_in.cookies["pingan_session"]
    yield Served(url, session)
    session.close()
    server.should_exit = True
    thread.join(timeout=10)
    with contextlib.suppress(OSError):
        sock.close()
    store.close()


def app_document() -> dict[str, Any]:
    """The API's OpenAPI document, from an app on a throwaway store: schemathesis needs the operations when pytest
    collects the tests (its lazy fixture loader does not run on pytest 9), before the served app exists."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/doc.db")
        try:
            return create_api(Settings(data_dir=Path(tmp), heartbeat_interval_s=0, cap_feeds=None), store,
                              tokens=dict(TOKENS)).openapi()
        finally:
            store.close()


def console_document() -> dict[str, Any]:
    """The duty console's pages and form posts, which /openapi.json leaves out (they are HTML for people, not an
    API): the same routers, described by FastAPI for this test only, so the fuzz covers them too. The live stream
    (/console/events) is left out: it never ends, and tests/e2e/test_console.py reads it. The forms' csrf field is
    the test's cookie, so generated forms get past the CSRF check to the handlers."""
    from fastapi.openapi.utils import get_openapi

    from pingan.web.console import Console
    from pingan.web.console.actions import actions_router
    from pingan.web.console.areas import areas_router
    from pingan.web.console.duty import duty_router
    from pingan.web.console.library import library_router
    from pingan.web.console.live import Broadcaster
    from pingan.web.console.pages import pages_router
    from pingan.web.console.releases import releases_router
    from pingan.web.console.render import PREFIX
    from pingan.web.intake import Intake

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), heartbeat_interval_s=0, cap_feeds=None)
        store = Store(f"sqlite:///{tmp}/doc.db")
        try:
            intake = Intake(settings, store, dict(TOKENS))
            console = Console(FastAPI(), intake, ZoneInfo(settings.timezone), Broadcaster(store, lambda ids: {}))
            routes = [route for make in (pages_router, actions_router, duty_router, library_router, releases_router,
                                                           areas_router)
                      for route in make(console).routes]
            document = get_openapi(title="console", version="0", routes=routes)
            intake.parser.stop()
        finally:
            store.close()
    document["paths"] = {PREFIX + path: ops for path, ops in document["paths"].items() if path != "/events"}
    for definition in document.get("components", {}).get("schemas", {}).values():
        if "csrf" in definition.get("properties", {}):
            definition["properties"]["csrf"] = {"type": "string", "enum": [CONSOLE_CSRF]}
    return document


DOCUMENT = app_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
console_schema = schemathesis.openapi.from_dict(console_document())


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case: schemathesis.Case, served: Served) -> None:
    if (case.method, case.path) == ("GET", "/readyz"):
        # The readiness probe's documented 503: no worker runs beside this API, so the pipeline is never ready.
        response = case.call(base_url=served.url, session=served.session, timeout=30)
        assert response.status_code in (200, 503) and "ready" in response.json()["status"], response.text
        return
    case.call_and_validate(base_url=served.url, session=served.session, checks=[not_a_server_error], timeout=30)


@console_schema.parametrize()
@settings(max_examples=CONSOLE_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_console_page_or_form_answers_5xx(case: schemathesis.Case, served: Served) -> None:
    case.call_and_validate(base_url=served.url, session=served.session, checks=[not_a_server_error], timeout=30)


def test_the_fuzz_covers_every_route_with_its_body(served: Served) -> None:
    """The document the fuzz reads is the one the API serves; every operation that reads a body declares it, and
    every operation says who may call it."""
    document = requests.get(served.url + "/openapi.json", timeout=10).json()
    assert document == DOCUMENT
    paths = document["paths"]
    assert set(document["components"]["securitySchemes"]) >= {
        "apiIntakeToken", "alertmanagerToken", "capToken", "personalToken", "sessionCookie", "twilioSignature"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "security" in operation, f"{method} {path}"
    no_body = {("post", "/auth/sign-out"), ("post", "/v1/drills/{run_id}/end")}  # they read no body
    for path, operations in paths.items():
        if "post" in operations and ("post", path) not in no_body:
            assert "requestBody" in operations["post"], f"POST {path} declares no body"
    cap = paths["/v1/intake/cap"]["post"]["requestBody"]["content"]["application/xml"]
    assert cap["schema"]["type"] == "string" and cap["example"].startswith("<alert")
    sms = paths["/v1/intake/twilio/sms"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert sms["schema"]["$ref"].endswith("/TwilioSmsForm")
    assert paths["/v1/intake/alertmanager"]["post"]["requestBody"]["content"]["application/json"]["schema"]

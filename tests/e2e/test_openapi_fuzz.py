"""Schemathesis over every operation of /openapi.json, bodies included, against the real API on 127.0.0.1 (uvicorn in
a thread, create_api over a real SQLite store): no generated request, valid or not, may get a 5xx (issue 14, finding
5). Every request carries valid credentials for its operation, so the fuzz reaches past authentication: the intake
tokens for their routes, an admin's personal token for a person's, and for Twilio's an X-Twilio-Signature computed
over the exact URL and form each generated request sends.

Bounded and repeatable: a fixed number of examples an operation, derandomized (the same cases every run). The whole
module runs in about two minutes on a 2-core machine; EXAMPLES is the knob."""

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from twilio.request_validator import RequestValidator

from pingan.handlers.access.permissions import Role
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.settings import Settings
from pingan.store.identity import IdentityStore
from pingan.store.repository import Store
from pingan.web.app import create_api

EXAMPLES = 15  # generated cases an operation, on top of the schema's examples and its coverage cases
TOKENS = {"api": "fuzz-api", "alertmanager": "fuzz-am", "cap": "fuzz-cap", "metrics": "fuzz-metrics"}
TWILIO_TOKEN = "fuzz-twilio-auth-token-" + "x" * 9
ADMIN = "zhou-haibo"  # an admin of the shipped directory
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
        self.validator = RequestValidator(TWILIO_TOKEN)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        path = urlsplit(request.url or "").path
        if path.startswith("/v1/intake/twilio/"):
            body = request.body or b""
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            form = dict(parse_qsl(text, keep_blank_values=True))
            request.headers["X-Twilio-Signature"] = self.validator.compute_signature(request.url or "", form)
        else:
            token = BEARER_BY_PATH.get(path, self.personal_token)
            size = int(request.headers.get("Content-Length", 0))
            if (request.method, path) == ("POST", "/v1/incidents") and size % 2:
                token = TOKENS["api"]  # the intake token and a person (incidents.report) both file reports
            request.headers["Authorization"] = f"Bearer {token}"
        return super().send(request, **kwargs)


class Served:
    def __init__(self, url: str, session: Credentials) -> None:
        self.url = url
        self.session = session


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = Store(f"sqlite:///{data_dir / 'pingan.db'}")
    limits = 10_000_000  # every generated request reaches the route: no rate limit answers in its place
    app_settings = Settings(
        data_dir=data_dir, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, public_docs=True,
        public_url=url, twilio_auth_token=TWILIO_TOKEN, intake_rate_per_minute=limits,
        intake_unauthenticated_rate_per_minute=limits, sign_in_rate_per_minute=limits)
    identity = IdentityStore(store.engine)
    identity.add_user(load_plans(PLANS_DIR).directory, ADMIN, [Role.admin.value], "a-long-enough-password", "cli:t")
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


DOCUMENT = app_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


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

"""Every HTTP route, tried with every role's personal token, every intake token, a revoked token and no credentials,
against the permission table (handlers/access/permissions.py): 401 without a person, 403 for a role without the
permission (or an intake token on a person's route), never a 5xx. The routes come from app.routes, so a new route is
tried too; a route of ours that names no permission and is not a known public or intake one fails the test."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI
    iter_route_contexts = None
from fastapi.testclient import TestClient

from pingan.handlers.access.permissions import SECOND_FACTOR, Permission, Role, allowed
from pingan.web import auth
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import INTAKE, PEOPLE, Rig

PUBLIC = {"/healthz", "/readyz", "/auth/sign-in", "/auth/csrf",  # anyone (sign-in checks the password itself)
          "/console/sign-in", "/console/lang"}  # the sign-in page, and its language switch (a cookie)
PUBLIC_PREFIX = "/public/"  # the explicit exception: the CAP feed, CAP documents and the warnings page (issue 17)
SOURCE_OF = {"/v1/intake/alertmanager": "alertmanager", "/v1/intake/cap": "cap"}  # intake token of one source
REPORTS = "/v1/incidents"  # POST: the api intake token, or a person with incidents.report
TWILIO = "/v1/intake/twilio/"  # X-Twilio-Signature: no token of any kind opens them
METRICS = "/metrics"  # the scraper's token only
SESSION_ONLY = {"/auth/second-factor"}  # a person, and only a session (a token is 403)
CONSOLE = "/console"  # the console's pages check permissions inside; a browser without a session is sent to sign in
STREAMS = ("/events",)  # endpoints that stream until the client leaves: tried only where they must refuse


def public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIX)


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # the template, e.g. /v1/incidents/{incident_id}/ack
    url: str  # with its parameters filled in
    permission: Permission | None  # from the route's require() dependency
    person: bool  # the route needs a person (require() or principal)


def _needs(route: APIRoute) -> tuple[Permission | None, bool]:
    stack, permission, person = list(route.dependant.dependencies), None, False
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "permission", None) is not None:
            permission, person = dep.call.permission, True
        if dep.call is auth.principal:
            person = True
        stack.extend(dep.dependencies)
    return permission, person


def routes(app: FastAPI) -> Iterator[tuple[str, set[str], APIRoute]]:
    """(path with its router's prefix, methods, the APIRoute) of every route, however routers were included."""
    if iter_route_contexts is None:  # FastAPI before included routers became lazy
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods), route
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):  # the console's static files (a Mount) are public
            yield str(context.path), set(context.methods or {"GET"}), context.original_route


def calls(rig: Rig) -> list[Call]:
    fill = {"incident_id": rig.fire, "run_id": "perm-run", "verb": "no-such-verb", "plan_id": "building-fire"}
    out = []
    for path, methods, route in routes(rig.app):
        permission, person = _needs(route)
        url = re.sub(r"{(\w+)(:[^}]*)?}", lambda m: fill.get(m.group(1), "x"), path)
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append(Call(method, path, url, permission, person))
    return out


BODY: dict[str, Any] = {"reason": "test", "to": "lin-xiaodong", "task": "no-such-task", "grade": "III",
                        "from": "INC-NOSUCHONE", "event_id": "no-such-event", "run_id": "perm-x", "title": "权限",
                        "responder": "lin-xiaodong", "category": "accident_disaster", "subtype": "fire",
                        "lang": "en", "person": "nobody", "password": "x"}


def send(client: TestClient, call: Call, headers: dict[str, str]) -> int:
    if call.method == "GET":
        return client.get(call.url, headers=headers, follow_redirects=False).status_code
    return client.request(call.method, call.url, json=BODY, headers=headers, follow_redirects=False).status_code


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    twilio = FakeTwilio().start()
    tmp: Path = tmp_path_factory.mktemp("permissions")
    r = Rig(tmp, f"sqlite:///{tmp / 'pingan.db'}", twilio)
    yield r
    r.close()
    twilio.stop()


def server_error(call: "Call", code: int) -> bool:
    """A 5xx, except /readyz's 503: with no worker in this rig the pipeline is rightly "not ready"."""
    return code >= 500 and not (call.path == "/readyz" and code == 503)


def refused(code: int) -> bool:
    return code in (401, 403) or code == 303  # 303: a console page sends a browser without a session to sign in


def test_every_route_is_known_to_the_table(rig: Rig) -> None:
    unknown = [f"{c.method} {c.path}" for c in calls(rig)
               if not c.person and not public(c.path) and c.path not in SOURCE_OF.keys() | {REPORTS, METRICS}
               and not c.path.startswith((TWILIO, CONSOLE, "/docs", "/redoc", "/openapi"))]
    assert unknown == [], "routes that ask for no person and are not public, intake or the console's"
    assert len(calls(rig)) >= 25


def test_no_credentials_and_a_revoked_token_reach_nothing_but_the_public_routes(rig: Rig) -> None:
    client = rig.client()
    for call in calls(rig):
        for headers in ({}, {"Authorization": f"Bearer {rig.revoked}"}, {"Authorization": "Bearer not-a-token"}):
            code = send(client, call, headers)
            assert not server_error(call, code), (call, headers, code)
            if public(call.path):
                continue
            if call.path.startswith(TWILIO):
                assert code == 403, (call, code)
            elif call.path.startswith(CONSOLE):
                assert code in (303, 401), (call, headers, code)
            else:
                assert code == 401, (call, headers, code)


def test_an_intake_token_reaches_only_its_own_intake_endpoint(rig: Rig) -> None:
    client = rig.client()
    for source, token in INTAKE.items():
        headers = {"Authorization": f"Bearer {token}"}
        for call in calls(rig):
            code = send(client, call, headers)
            assert not server_error(call, code), (source, call, code)
            own = (SOURCE_OF.get(call.path) == source or (call.path == REPORTS and call.method == "POST"
                                                         and source == "api") or (call.path == METRICS
                                                                                  and source == "metrics"))
            if own:
                assert not refused(code), (source, call, code)
            elif public(call.path):
                continue
            else:
                # A monitoring system's token never reads, acknowledges or closes.
                assert refused(code), (source, call, code)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_what_the_table_gives_it(rig: Rig, role: Role) -> None:
    client = rig.client()
    headers = rig.bearer(role)
    for call in calls(rig):
        if call.path.endswith(STREAMS) and call.person is False and call.path.startswith(CONSOLE):
            continue  # a live stream answers until the client leaves; its refusals are tried above
        code = send(client, call, headers)
        assert not server_error(call, code), (role, call, code)
        if call.permission is not None:
            if not allowed([role], call.permission):
                assert code == 403, (role, call, code)
            elif call.permission in SECOND_FACTOR:
                assert code == 403, (role, call, code)  # a token never passes the second factor
            else:
                assert code not in (401, 403), (role, call, code)
        elif call.path in SESSION_ONLY:
            assert code == 403, (role, call, code)
        elif call.person:
            assert code not in (401, 403), (role, call, code)
        elif public(call.path):
            continue  # a wrong password is 401 whoever asks
        elif call.path in SOURCE_OF or call.path == METRICS:
            assert code == 401, (role, call, code)  # a person's token is no intake or scraper token
        elif call.path == REPORTS and call.method == "POST":
            assert (code == 403) != allowed([role], Permission.incidents_report), (role, code)
        elif call.path.startswith(TWILIO):
            assert code == 403, (role, call, code)
        # The console's own pages check inside: any answer but a server error will do here.
    assert PEOPLE[role]

"""People sign in, pass the second factor by SMS, and act as themselves (issue 13), on a real store (SQLite and
PostgreSQL) through the real app, with a local Twilio-compatible server carrying the codes."""

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pingan.handlers.access.permissions import Role
from pingan.schemas.common import utcnow
from pingan.schemas.events import RawEvent
from pingan.store.tables import sessions
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import MAX_FAILURES, PASSWORD, PEOPLE, PLANS, REPORTER_PHONE, Rig

COMMANDER = PEOPLE[Role.commander]


@pytest.fixture
def rig(tmp_path: Path, db_url: str, twilio_server: FakeTwilio) -> Iterator[Rig]:
    r = Rig(tmp_path, db_url, twilio_server)
    yield r
    r.close()


def sign_in(client: TestClient, person: str, password: str = PASSWORD) -> dict[str, str]:
    """Signs the client in; the headers its POSTs need (the session's CSRF token)."""
    response = client.post("/auth/sign-in", json={"person": person, "password": password})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf"]}


def kinds(rig: Rig, log: str) -> list[str]:
    return [a.kind.value for a in rig.store.timeline(log)]


def code_sent_to(rig: Rig, person: str) -> str:
    number = PLANS.directory.people[person].contacts.sms
    texts = [m["body"] for m in rig.twilio.messages if m["to"] == number]
    assert texts, f"no SMS to {number}"
    found = re.search(r"\b(\d{6})\b", texts[-1])
    assert found, texts[-1]
    return found.group(1)


def test_a_session_needs_its_csrf_token_and_ends_at_sign_out(rig: Rig) -> None:
    client = rig.client()
    csrf = sign_in(client, PEOPLE[Role.duty_officer])
    me = client.get("/auth/me").json()
    assert me["person_id"] == PEOPLE[Role.duty_officer] and me["method"] == "session" and me["roles"] == [
        "duty_officer"]
    assert "set-cookie" not in client.get("/auth/me").headers  # the cookie is set once, at sign-in
    refused = client.post(f"/v1/incidents/{rig.fire}/ack", json={})
    assert refused.status_code == 403 and refused.json()["detail"].startswith("csrf:")
    done = client.post(f"/v1/incidents/{rig.fire}/ack", json={}, headers=csrf)
    assert done.status_code == 200, done.text
    ack = [a for a in rig.store.timeline(rig.fire) if a.kind.value == "acknowledged"][-1]
    assert ack.actor == PEOPLE[Role.duty_officer] and ack.details["auth"] == "session" and ack.details["via"] == "api"
    assert client.post("/auth/sign-out", json={}, headers=csrf).status_code == 204
    assert client.get("/auth/me").status_code == 401
    assert kinds(rig, f"user:{PEOPLE[Role.duty_officer]}")[-2:] == ["signed_in", "signed_out"]


def test_the_cookie_is_httponly_and_strict(rig: Rig) -> None:
    response = rig.client().post("/auth/sign-in", json={"person": COMMANDER, "password": PASSWORD})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_the_sign_in_form_checks_its_csrf_and_redirects(rig: Rig) -> None:
    client = rig.client()
    token = client.get("/auth/csrf").json()["csrf"]
    form = {"person": COMMANDER, "password": PASSWORD, "next": "/console/incidents/x"}
    stale = client.post("/auth/sign-in", data={**form, "csrf": "forged"}, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/console/sign-in?error=csrf")
    wrong = client.post("/auth/sign-in", data={**form, "password": "not it", "csrf": token}, follow_redirects=False)
    assert wrong.status_code == 303 and "error=credentials" in wrong.headers["location"]
    assert "next=%2Fconsole%2Fincidents%2Fx" in wrong.headers["location"]
    ok = client.post("/auth/sign-in", data={**form, "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/console/incidents/x"
    assert client.get("/auth/me").json()["person_id"] == COMMANDER
    evil = client.post("/auth/sign-in", data={**form, "csrf": token, "next": "https://evil.example/"},
                       follow_redirects=False)
    assert evil.headers["location"] == "/console/"


def test_close_and_regrade_need_the_second_factor_and_a_wrong_code_is_refused_and_logged(rig: Rig) -> None:
    client = rig.client()
    csrf = sign_in(client, COMMANDER)
    close = client.post(f"/v1/incidents/{rig.fire}/close", json={"reason": "扑灭"}, headers=csrf)
    assert close.status_code == 403 and close.json()["detail"].startswith("second factor:")
    regrade = client.post(f"/v1/incidents/{rig.fire}/regrade", json={"grade": "III", "reason": "扩大"}, headers=csrf)
    assert regrade.status_code == 403 and "second factor" in regrade.json()["detail"]

    sent = client.post("/auth/second-factor", json={}, headers=csrf)
    assert sent.status_code == 202 and sent.json()["to"] == "+1202555****", sent.text
    code = code_sent_to(rig, COMMANDER)
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post("/auth/second-factor", json={"code": wrong}, headers=csrf)
    assert refused.status_code == 403 and refused.json()["field"] == "code"
    log = rig.store.timeline(f"user:{COMMANDER}")
    failed = [a for a in log if a.kind.value == "second_factor_failed"]
    assert failed and failed[-1].details["reason"] == "wrong or expired code"
    assert client.post(f"/v1/incidents/{rig.fire}/close", json={"reason": "扑灭"}, headers=csrf).status_code == 403

    passed = client.post("/auth/second-factor", json={"code": code}, headers=csrf)
    assert passed.status_code == 200 and passed.json()["second_factor"] is True, passed.text
    assert client.post("/auth/second-factor", json={"code": code}, headers=csrf).status_code == 403  # used once
    regraded = client.post(f"/v1/incidents/{rig.fire}/regrade", json={"grade": "III", "reason": "扩大"},
                           headers=csrf)
    assert regraded.status_code == 200, regraded.text
    closed = client.post(f"/v1/incidents/{rig.fire}/close", json={"reason": "扑灭"}, headers=csrf)
    assert closed.status_code == 200, closed.text
    entries = {a.kind.value: a for a in rig.store.timeline(rig.fire)}
    assert entries["regraded"].actor == COMMANDER and entries["regraded"].details["to"] == "III"
    assert entries["closed"].actor == COMMANDER and entries["closed"].details["auth"] == "session"
    assert {"second_factor_sent", "second_factor_failed", "second_factor_passed"} <= set(
        kinds(rig, f"user:{COMMANDER}"))
    # A duty officer holds neither permission, second factor or not.
    officer = rig.client()
    other = sign_in(officer, PEOPLE[Role.duty_officer])
    assert officer.post(f"/v1/incidents/{rig.cluster}/close", json={"reason": "x"}, headers=other).status_code == 403


def test_lockout_after_repeated_failures_is_logged(rig: Rig) -> None:
    client = rig.client()
    person = PEOPLE[Role.viewer]
    for _ in range(MAX_FAILURES):
        assert client.post("/auth/sign-in", json={"person": person, "password": "wrong-password"}).status_code == 401
    locked = client.post("/auth/sign-in", json={"person": person, "password": PASSWORD})
    assert locked.status_code == 401 and locked.json()["code"] == "locked" and "locked" in locked.json()["error"]
    log = kinds(rig, f"user:{person}")
    assert log.count("sign_in_failed") == MAX_FAILURES + 1 and "account_locked" in log
    # A locked person's token stops working too, until the lock ends or `pingan users passwd` clears it.
    assert rig.client().get("/v1/incidents", headers=rig.bearer(Role.viewer)).status_code == 401
    rig.identity.set_password(person, PASSWORD, "cli:tests")
    assert rig.client().get("/v1/incidents", headers=rig.bearer(Role.viewer)).status_code == 200


def test_wrong_codes_lock_the_account_and_end_its_sessions(rig: Rig) -> None:
    client = rig.client()
    csrf = sign_in(client, COMMANDER)
    assert client.post("/auth/second-factor", json={}, headers=csrf).status_code == 202
    code = code_sent_to(rig, COMMANDER)
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != code][:MAX_FAILURES]
    answers = [client.post("/auth/second-factor", json={"code": c}, headers=csrf) for c in wrong]
    assert [a.status_code for a in answers] == [403] * (MAX_FAILURES - 1) + [401]
    assert answers[-1].json()["code"] == "locked"
    assert client.get("/auth/me").status_code == 401  # the lock ended the session
    assert "account_locked" in kinds(rig, f"user:{COMMANDER}")


def test_an_idle_session_ends(rig: Rig) -> None:
    client = rig.client()
    sign_in(client, PEOPLE[Role.viewer])
    with rig.store.engine.begin() as conn:
        conn.execute(update(sessions).values(last_seen=utcnow() - timedelta(hours=1)))
    answer = client.get("/auth/me")
    assert answer.status_code == 401 and "idle" in answer.json()["detail"]
    assert kinds(rig, f"user:{PEOPLE[Role.viewer]}")[-1] == "signed_out"


def test_a_body_naming_someone_else_is_refused_and_the_actor_is_the_caller(rig: Rig) -> None:
    client = rig.client()
    officer = PEOPLE[Role.duty_officer]
    headers = rig.bearer(Role.duty_officer)
    refused = client.post(f"/v1/incidents/{rig.fire}/escalate", json={"by": COMMANDER, "reason": "x"},
                          headers=headers)
    assert refused.status_code == 403 and refused.json()["detail"].startswith("by:")
    logged = [a for a in rig.store.timeline(rig.fire) if a.kind.value == "refused"][-1]
    assert logged.actor == officer and COMMANDER in logged.details["reason"]
    assert not [a for a in rig.store.timeline(rig.fire) if a.kind.value == "escalated" and a.actor == COMMANDER]
    same = client.post(f"/v1/incidents/{rig.fire}/ack", json={"by": officer}, headers=headers)
    assert same.status_code == 200, same.text
    ack = [a for a in rig.store.timeline(rig.fire) if a.kind.value == "acknowledged"][-1]
    assert ack.actor == officer and ack.details["auth"] == "token" and ack.details["token"]
    merge = client.post(f"/v1/incidents/{rig.fire}/merge", json={"from": rig.cluster, "by": COMMANDER},
                        headers=headers)
    assert merge.status_code == 403 and "by:" in merge.json()["detail"]


def test_a_fire_liaison_sees_the_fire_and_not_the_disease_cluster(rig: Rig) -> None:
    client = rig.client()
    liaison = rig.bearer(Role.department_liaison)
    listed = {i["id"] for i in client.get("/v1/incidents", headers=liaison).json()["items"]}
    assert rig.fire in listed and rig.cluster not in listed
    assert client.get(f"/v1/incidents/{rig.fire}", headers=liaison).status_code == 200
    hidden = client.get(f"/v1/incidents/{rig.cluster}", headers=liaison)
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"incident {rig.cluster!r} not found"
    assert client.get(f"/v1/incidents/{rig.cluster}/reports", headers=liaison).status_code == 404
    assert client.post(f"/v1/incidents/{rig.cluster}/ack", json={}, headers=liaison).status_code == 404
    assert client.post(f"/v1/incidents/{rig.fire}/ack", json={}, headers=liaison).status_code == 200
    viewer = {i["id"] for i in client.get("/v1/incidents", headers=rig.bearer(Role.viewer)).json()["items"]}
    assert {rig.fire, rig.cluster} <= viewer


def test_phone_numbers_are_masked_for_those_without_phones_read(rig: Rig) -> None:
    client = rig.client()
    seen = client.get(f"/v1/incidents/{rig.fire}", headers=rig.bearer(Role.viewer)).text
    assert REPORTER_PHONE not in seen and "+1202555****" in seen
    assert "+12025550" not in seen  # the responders' numbers in the timeline too
    full = client.get(f"/v1/incidents/{rig.fire}", headers=rig.bearer(Role.duty_officer)).json()
    assert full["incident"]["reporter"]["phone"] == REPORTER_PHONE
    reports = client.get(f"/v1/incidents/{rig.fire}/reports", headers=rig.bearer(Role.viewer)).text
    assert REPORTER_PHONE not in reports


def test_only_a_drill_coordinator_starts_a_drill_and_plays_its_responders(rig: Rig) -> None:
    client = rig.client()
    body = {"run_id": "drill-1", "title": "演练", "live": True, "participants": [PEOPLE[Role.duty_officer]]}
    for role in (Role.viewer, Role.duty_officer, Role.commander, Role.plan_author):
        assert client.post("/v1/drills", json=body, headers=rig.bearer(role)).status_code == 403
    started = client.post("/v1/drills", json=body, headers=rig.bearer(Role.drill_coordinator))
    assert started.status_code == 201 and started.json()["live"] is True
    coordinator = rig.bearer(Role.drill_coordinator)
    # The coordinator plays a responder on the run's exercise incident, never on an actual one.
    played = client.post(f"/v1/drills/perm-run/incidents/{rig.drill_incident}/ack",
                         json={"responder": PEOPLE[Role.duty_officer]}, headers=coordinator)
    assert played.status_code == 200, played.text
    ack = [a for a in rig.store.timeline(rig.drill_incident) if a.kind.value == "acknowledged"][-1]
    assert ack.actor == PEOPLE[Role.duty_officer] and ack.details["simulated_by"] == PEOPLE[Role.drill_coordinator]
    actual = client.post(f"/v1/drills/perm-run/incidents/{rig.fire}/ack", json={"responder": COMMANDER},
                         headers=coordinator)
    assert actual.status_code == 404
    # Acting in their own name, the coordinator may not acknowledge anything.
    assert client.post(f"/v1/incidents/{rig.fire}/ack", json={}, headers=coordinator).status_code == 403


def test_a_person_files_a_report_and_tokens_are_personal(rig: Rig) -> None:
    client = rig.client()
    report = {"category": "accident_disaster", "subtype": "fire", "grade": "IV", "title": "配电房冒烟"}
    filed = client.post("/v1/incidents", json=report, headers=rig.bearer(Role.duty_officer))
    assert filed.status_code == 202
    assert client.post("/v1/incidents", json=report, headers=rig.bearer(Role.viewer)).status_code == 403
    row = next(r for r in rig.store.unpublished() if r.event_id == filed.json()["event_id"])
    assert RawEvent.model_validate_json(row.payload).report.labels["reported_by"] == PEOPLE[Role.duty_officer]
    # A token carries only the person's own roles, and a revoked one stops at once.
    from pingan.store.identity import IdentityRefused

    with pytest.raises(IdentityRefused, match="does not hold admin"):
        rig.identity.create_token(PEOPLE[Role.viewer], ["admin"], "cli:tests")
    token, secret = rig.identity.create_token(PEOPLE[Role.viewer], ["viewer"], "cli:tests")
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    rig.identity.revoke_token(token.id, "cli:tests")
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "token_revoked" in kinds(rig, f"user:{PEOPLE[Role.viewer]}")

"""Issue 14, finding 1, end to end: one abusive body must not stall the API.

A CAP message of 50,000 empty <info/> (350 KB) once stopped the whole HTTP API for over 8 minutes, and an
Alertmanager webhook of 10,000 alerts for 12.8 s: the checks were quadratic and ran on the event loop. Here each is
POSTed to a real `pingan up` while /healthz and signed Twilio SMS reports keep being asked; every one of those must
answer within 1 s while the big body is refused. Twice: with the default limits (refused by count, 413, before any
rule is checked), and with the count limits raised out of the way and a CPU budget of 0.1 s (each body is read off
the event loop until the budget stops it: 50,000 infos take about 0.3 s of CPU to check, 10,000 alerts 0.5 s).
"""

import secrets
import threading
import time
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.fixtures.stack import Stack
from tests.fixtures.twilio_server import FakeTwilio

SMS_PATH = "/v1/intake/twilio/sms"
CAP_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
            "<identifier>abuse-{n}</identifier><sender>abuse@example.org</sender>"
            "<sent>2026-08-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType>"
            "<scope>Public</scope>")
BIG_CAP = (CAP_HEAD.format(n=50_000) + "<info/>" * 50_000 + "</alert>").encode()
BIG_WEBHOOK = ('{"version":"4","groupKey":"abuse","status":"firing","receiver":"r","alerts":['
               + ",".join(f'{{"labels":{{"alertname":"Abuse","i":"{i}"}}}}' for i in range(10_000)) + "]}").encode()
RAISED = {"PINGAN_CAP_MAX_INFOS": "100000", "PINGAN_ALERTMANAGER_MAX_ALERTS": "100000",
          "PINGAN_INTAKE_PARSE_CPU_BUDGET_S": "0.1"}


def signed_sms(stack: Stack, twilio: FakeTwilio) -> httpx.Response:
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": twilio.account_sid, "From": "+8613900000007",
            "To": twilio.from_number, "Body": "唐家社区幸福路仓库着火了，有浓烟", "NumMedia": "0"}
    url = stack.env["PINGAN_PUBLIC_URL"] + SMS_PATH
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    return httpx.post(stack.url + SMS_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


@pytest.mark.parametrize("limits", ["default limits", "count limits raised"])
def test_healthz_and_signed_sms_answer_within_1s_while_huge_bodies_are_refused(  # type: ignore[no-untyped-def]
        tmp_path, twilio_server, limits: str) -> None:
    stack = Stack(tmp_path, PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  **(RAISED if limits == "count limits raised" else {}))
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        assert signed_sms(stack, twilio_server).status_code == 200  # warm: the classifier's tokenizer is loaded

        answers: dict[str, httpx.Response] = {}
        errors: list[BaseException] = []

        def send_big_bodies() -> None:
            try:
                answers["cap"] = stack.post("/v1/intake/cap", source="cap", content=BIG_CAP,
                                            headers={"Content-Type": "application/cap+xml"})
                answers["alertmanager"] = stack.post("/v1/intake/alertmanager", source="alertmanager",
                                                     content=BIG_WEBHOOK,
                                                     headers={"Content-Type": "application/json"})
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        sender = threading.Thread(target=send_big_bodies)
        healthz: list[float] = []
        sms: list[float] = []
        started = time.monotonic()
        sender.start()
        # Ask all the while the bodies are in flight, and two seconds past (anything they left behind shows there).
        while sender.is_alive() or time.monotonic() - started < 2.0 or not sms:
            t0 = time.monotonic()
            assert httpx.get(stack.url + "/healthz", timeout=10).status_code == 200
            healthz.append(time.monotonic() - t0)
            if len(healthz) % 3 == 1:
                t0 = time.monotonic()
                reply = signed_sms(stack, twilio_server)
                sms.append(time.monotonic() - t0)
                assert reply.status_code == 200 and "INC-" in reply.text, reply.text
            assert time.monotonic() - started < 120, "the big bodies got no answer within 2 minutes"
            time.sleep(0.1)
        sender.join()
        assert not errors, errors
        assert max(healthz) < 1.0, f"/healthz took up to {max(healthz):.2f} s ({len(healthz)} asked)"
        assert max(sms) < 1.0, f"a signed SMS took up to {max(sms):.2f} s ({len(sms)} sent)"

        cap, webhook = answers["cap"], answers["alertmanager"]
        if limits == "default limits":
            assert cap.status_code == 413, cap.text[:300]
            assert _error(cap)["setting"] == "PINGAN_CAP_MAX_INFOS" and _error(cap)["count"] == 50_000
            assert webhook.status_code == 413, webhook.text[:300]
            assert _error(webhook)["setting"] == "PINGAN_ALERTMANAGER_MAX_ALERTS"
        else:
            for refused in (cap, webhook):
                assert refused.status_code == 413, refused.text[:300]
                assert _error(refused)["setting"] == "PINGAN_INTAKE_PARSE_CPU_BUDGET_S"
                assert "took more than 0.1 s of CPU" in _error(refused)["error"]
    finally:
        stack.stop()


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict)
    return body

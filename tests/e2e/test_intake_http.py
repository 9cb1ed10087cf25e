"""Intake over HTTP against a running `pingan up`: the real CAP and Alertmanager samples, Twilio SMS and IVR."""

import json
import re
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.fixtures.stack import Stack, wait_for

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
CAP_DIR = SAMPLES / "cap"
AM_DIR = SAMPLES / "alertmanager"
TWILIO_TOKEN = "test-auth-token-" + "x" * 16
pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/samples is not beside the project")

# What each rejected sample must be rejected for (SOURCES.txt says what is wrong with each).
CAP_REJECTIONS = {
    "INVALID-ca-ec-empty-references.cap": "references",
    "INVALID-missing-scope.cap": "scope",
    "INVALID-us-nws-flood-empty-polygon.cap": "polygon",
    "INVALID-wrong-namespace-zh.cap": "namespace",
    "ATTACK-xxe-external-entities.cap": "DOCTYPE",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = Stack(tmp_path_factory.mktemp("intake"), PINGAN_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
              PINGAN_INTAKE_RATE_PER_MINUTE="100000")
    s.up()
    yield s
    s.stop()


def cap_files() -> list[str]:
    if not CAP_DIR.exists():
        return []
    return sorted(p.name for p in CAP_DIR.iterdir() if p.is_file() and p.name != "SOURCES.txt")


def am_files() -> list[str]:
    return sorted(p.name for p in AM_DIR.glob("*.json")) if AM_DIR.exists() else []


@pytest.mark.parametrize("name", cap_files())
def test_cap_sample_accepted_or_rejected_as_its_name_says(stack: Stack, name: str) -> None:
    body = (CAP_DIR / name).read_bytes()
    response = stack.post("/v1/intake/cap", source="cap", content=body,
                          headers={"Content-Type": "application/cap+xml"})
    if name.startswith(("INVALID-", "ATTACK-")):
        assert response.status_code == 422, response.text
        error = response.json()
        assert CAP_REJECTIONS[name].lower() in json.dumps(error, ensure_ascii=False).lower(), error
        assert error["error"] and ("line" in error)
        if name.startswith("ATTACK-"):
            assert "root:" not in response.text  # nothing of /etc/passwd came back
    else:
        assert response.status_code == 202, response.text
        accepted = response.json()["accepted"]
        assert len(accepted) >= 1


@pytest.mark.parametrize("name", am_files())
def test_alertmanager_sample_accepted_or_rejected(stack: Stack, name: str) -> None:
    payload = json.loads((AM_DIR / name).read_text())
    response = stack.post("/v1/intake/alertmanager", source="alertmanager", json=payload)
    if name.startswith("INVALID-"):
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "alerts[0].status"
        return
    assert response.status_code == 202, response.text
    assert len(response.json()["accepted"]) == len(payload["alerts"])
    again = stack.post("/v1/intake/alertmanager", source="alertmanager", json=payload)
    assert all(a["duplicate"] for a in again.json()["accepted"])  # a retried webhook makes nothing new


def test_truncated_alerts_are_recorded(stack: Stack) -> None:
    payload = json.loads((AM_DIR / "prom2teams-k8s-cputhrottling-full.json").read_text())
    payload["truncatedAlerts"] = 7
    payload["groupKey"] = "truncated-test"
    payload["status"] = "firing"  # the sample is resolved, which would close rather than report
    for alert in payload["alerts"]:
        alert["status"] = "firing"
    response = stack.post("/v1/intake/alertmanager", source="alertmanager", json=payload)
    assert response.status_code == 202
    incident_id = response.json()["accepted"][0]["id"]
    body = wait_for(lambda: stack.incident(incident_id), 30, 0.2, "incident")
    assert body["incident"]["labels"]["am_truncated_alerts"] == "7"


def _signed(stack: Stack, path: str, form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    url = stack.url + path
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    return form, {"X-Twilio-Signature": signature}


def test_signed_sms_makes_an_incident_and_one_changed_byte_is_refused(stack: Stack) -> None:
    form = {"MessageSid": "SM" + "a" * 32, "AccountSid": "AC" + "b" * 32, "From": "+8613900000001",
            "To": "+8612345", "Body": "唐家社区仓库着火了，有浓烟", "NumMedia": "0"}
    data, headers = _signed(stack, "/v1/intake/twilio/sms", form)
    response = httpx.post(stack.url + "/v1/intake/twilio/sms", data=data, headers=headers)
    assert response.status_code == 200, response.text
    assert "<Message>" in response.text and "INC-" in response.text
    incident_id = re.search(r"INC-[0-9A-Z]+", response.text).group(0)  # type: ignore[union-attr]
    body = wait_for(lambda: stack.incident(incident_id), 30, 0.2, "triaged")
    assert body["incident"]["subtype"] == "fire" and body["incident"]["source"] == "hotline_sms"
    assert body["incident"]["location"]["area_name"] == "唐家社区"

    tampered = dict(data, Body=data["Body"].replace("着火", "看火"))
    refused = httpx.post(stack.url + "/v1/intake/twilio/sms", data=tampered, headers=headers)
    assert refused.status_code == 403
    unsigned = httpx.post(stack.url + "/v1/intake/twilio/sms", data=data)
    assert unsigned.status_code == 403


def test_ivr_menu_then_digit_2_makes_a_natural_disaster_incident(stack: Stack) -> None:
    call = {"CallSid": "CA" + "c" * 32, "AccountSid": "AC" + "b" * 32, "From": "+8613900000002", "To": "+8612345"}
    data, headers = _signed(stack, "/v1/intake/twilio/voice", call)
    menu = httpx.post(stack.url + "/v1/intake/twilio/voice", data=data, headers=headers)
    assert menu.status_code == 200 and "<Gather" in menu.text
    action = re.search(r'action="([^"]+)"', menu.text).group(1)  # type: ignore[union-attr]
    assert action.endswith("/v1/intake/twilio/voice/choice")
    data, headers = _signed(stack, "/v1/intake/twilio/voice/choice", {**call, "Digits": "2"})
    chosen = httpx.post(action, data=data, headers=headers)
    assert chosen.status_code == 200 and "<Hangup" in chosen.text
    listing = wait_for(lambda: [i for i in stack.get("/v1/incidents", params={"source": "hotline_voice"})
                                .json()["items"] if i["labels"].get("twilio_call_sid") == call["CallSid"]],
                       30, 0.2, "voice incident")
    assert listing[0]["category"] == "natural_disaster"


def test_bearer_token_size_and_rate_limits(stack: Stack) -> None:
    report = {"category": "accident_disaster", "subtype": "fire", "grade": "IV", "title": "测试"}
    assert httpx.post(stack.url + "/v1/incidents", json=report).status_code == 401
    wrong = httpx.post(stack.url + "/v1/incidents", json=report, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A token for another source does not open this one.
    assert stack.post("/v1/incidents", source="cap", json=report).status_code == 401
    huge = stack.post("/v1/intake/cap", source="cap", content=b"<a>" + b"x" * (1024 * 1024 + 10) + b"</a>")
    assert huge.status_code == 413

"""CAP message lifecycles against a fresh `pingan up`: Update and Cancel samples change, then close, their original.

A stack of its own, because the samples' own ids make a second delivery of the same message a no-op by design.
"""

import json
import re
from typing import Any

import pytest

from tests.e2e.test_intake_http import CAP_DIR, SAMPLES
from tests.fixtures.stack import Stack, cli, wait_for

pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/samples is not beside the project")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = Stack(tmp_path_factory.mktemp("cap-lifecycle"))
    s.up()
    yield s
    s.stop()


def _cap_with(sample: str, **replace: str) -> bytes:
    """A real sample with some header fields rewritten: the originals that the real Update/Cancel samples refer to
    are not among the samples, so the tests make them from a real message of the same sender."""
    text = (CAP_DIR / sample).read_bytes().decode("utf-8")
    for tag, value in replace.items():
        if value == "":
            text = re.sub(rf"\s*<{tag}>[^<]*</{tag}>", "", text, count=1)
        else:
            text = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text, count=1)
    return text.encode("utf-8")


def _post_cap(stack: Stack, body: bytes) -> str:
    response = stack.post("/v1/intake/cap", source="cap", content=body)
    assert response.status_code == 202, response.text
    return str(response.json()["accepted"][0]["id"])


def _kinds(body: dict[str, Any]) -> list[str]:
    return [a["kind"] for a in body["timeline"]]


def test_cap_update_then_cancel_change_then_close_the_original(stack: Stack) -> None:
    # The original of the OASIS A.3 earthquake Update, at a lower severity than the update.
    original = _cap_with("oasis-cap12-A3-earthquake-update.xml", msgType="Alert", identifier="TRI13970876.1",
                         sent="2003-06-11T20:30:00-07:00", references="", severity="Severe")
    incident_id = _post_cap(stack, original)
    wait_for(lambda: stack.incident(incident_id), 60, 0.2, "original triaged")
    _post_cap(stack, (CAP_DIR / "oasis-cap12-A3-earthquake-update.xml").read_bytes())
    body = wait_for(lambda: (b := stack.incident(incident_id)) and "updated" in _kinds(b) and b, 30, 0.2, "update")
    assert "grade_changed" in _kinds(body)
    # A Cancel for it, from the real IPAWS Cancel with its references pointed at the earthquake and its sender the
    # earthquake's: a Cancel applies only to its own sender's messages (issue 14, finding 4: IPAWS's is refused).
    cancel = _cap_with("us-ipaws-cancel-no-info.xml", identifier="TRI13970876.1-cancel", sender="trinet@caltech.edu",
                       references="trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00")
    foreign = _cap_with("us-ipaws-cancel-no-info.xml", identifier="TRI13970876.1-foreign",
                        references="trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00")
    refused = stack.post("/v1/intake/cap", source="cap", content=foreign)
    assert refused.status_code == 409 and refused.json()["field"] == "alert.references", refused.text
    _post_cap(stack, cancel)
    body = wait_for(lambda: (b := stack.incident(incident_id)) and "closed" in _kinds(b) and b, 60, 0.2, "closed")
    assert body["incident"]["state"] == "closed"


def test_real_ipaws_cancel_closes_its_original(stack: Stack) -> None:
    original = _cap_with("us-ipaws-local-area-emergency-polygon.xml", sender="bbrundage@dps.state.nv.us",
                         identifier="AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd", sent="2019-04-18T12:02:32-06:00")
    incident_id = _post_cap(stack, original)
    wait_for(lambda: stack.incident(incident_id), 60, 0.2, "original triaged")
    _post_cap(stack, (CAP_DIR / "us-ipaws-cancel-no-info.xml").read_bytes())
    body = wait_for(lambda: (b := stack.incident(incident_id)) and "closed" in _kinds(b) and b, 60, 0.2, "closed")
    assert body["incident"]["state"] == "closed"


def test_cap_test_status_is_kept_end_to_end(stack: Stack) -> None:
    incident_id = _post_cap(stack, (CAP_DIR / "ph-pagasa-tropical-cyclone-TEST.cap").read_bytes())
    body = wait_for(lambda: stack.incident(incident_id), 30, 0.2, "triaged")
    assert body["incident"]["status"] == "test"
    assert body["timeline"][0]["details"]["status"] == "test"


def test_cap_exercise_status_is_kept_end_to_end(stack: Stack) -> None:
    exercise = _cap_with("oasis-cap12-A2-severe-thunderstorm.xml", status="Exercise", identifier="EXERCISE-1")
    incident_id = _post_cap(stack, exercise)
    body = wait_for(lambda: stack.incident(incident_id), 30, 0.2, "triaged")
    assert body["incident"]["status"] == "exercise"
    assert body["timeline"][0]["details"]["status"] == "exercise"


def test_zh_cap_shows_the_chinese_text(stack: Stack) -> None:
    incident_id = _post_cap(stack, (CAP_DIR / "tw-wra-reservoir-discharge-zh.cap").read_bytes())
    body = wait_for(lambda: stack.incident(incident_id), 30, 0.2, "triaged")
    assert re.search(r"[\u4e00-\u9fff]", body["incident"]["title"])


def _status(stack: Stack, some_id: str) -> dict[str, Any] | None:
    response = stack.get(f"/v1/incidents/{some_id}")
    return response.json() if response.status_code == 200 and response.json().get("state") == "ignored" else None


def test_a_cancel_naming_no_known_message_has_a_final_status(stack: Stack) -> None:
    # The real IPAWS Cancel, its reference pointed at a message this office never received (issue #12).
    cancel = _cap_with("us-ipaws-cancel-no-info.xml", identifier="NEVER-SEEN-cancel",
                       references="bbrundage@dps.state.nv.us,NEVER-SEEN,2019-04-18T12:02:32-06:00")
    cancel_id = _post_cap(stack, cancel)
    body = wait_for(lambda: _status(stack, cancel_id), 60, 0.2, "a final status, not 'accepted' forever")
    assert body["message"] == "ignored: references no known message"
    assert [a["kind"] for a in body["timeline"]] == ["ignored"]
    printed = cli(stack.env, "timeline", cancel_id)  # was an AssertionError
    assert printed.returncode == 0, printed.stderr
    assert "reason=references no known message" in printed.stdout


def test_a_resolved_alert_for_an_unknown_fingerprint_has_a_final_status(stack: Stack) -> None:
    payload = json.loads((CAP_DIR.parent / "alertmanager" / "prom2teams-resolved-1-alert.json").read_text())
    response = stack.post("/v1/intake/alertmanager", source="alertmanager", json=payload)
    assert response.status_code == 202, response.text
    resolved_id = response.json()["accepted"][0]["id"]
    body = wait_for(lambda: _status(stack, resolved_id), 60, 0.2, "a final status for the resolve")
    assert body["state"] == "ignored" and "no open" in body["reason"]

"""Drill injects through every real intake route (issue 14, finding 12), against `pingan up` with a Twilio-compatible
server behind it: a signed SMS and signed voice calls (the IVR key, a recorded message) and an Alertmanager webhook
arrive as the drill's exercise incidents (status exercise, its drill_run, every message in the sandbox, none sent);
a CAP Alert → Update → Update chain where each Update names the message before it, as sent; a plan task done at
grade III and again at grade II, both scored.
"""

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from twilio.request_validator import RequestValidator

from pingan.drill_intake import twilio_signer
from pingan.drill_runner import DrillRun
from pingan.handlers.drills.injects import cap_triple
from pingan.handlers.drills.scenario import read_scenario
from tests.fixtures.stack import READER, Stack, wait_for
from tests.fixtures.twilio_server import FakeTwilio

SPEED = 120.0  # plan minutes per real minute: one plan minute is half a second
PUBLIC_URL = "https://pingan.example.org"  # what Twilio calls: the signature is computed over it


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FakeTwilio]]:
    twilio = FakeTwilio().start()
    tmp = tmp_path_factory.mktemp("injects")
    stack = Stack(tmp, PINGAN_TWILIO_ACCOUNT_SID=twilio.account_sid, PINGAN_TWILIO_AUTH_TOKEN=twilio.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio.from_number, PINGAN_TWILIO_API_BASE_URL=twilio.base_url,
                  PINGAN_PUBLIC_URL=PUBLIC_URL, PINGAN_ESCALATION_TIME_SCALE=str(SPEED))
    stack.up()
    try:
        # Ready: the worker holds its partitions, so plans activate at once and scripted commands (minutes after the
        # activation) fall in the levels they are meant for.
        wait_for(lambda: httpx.get(stack.url + "/readyz", timeout=2).status_code == 200, 60, 0.5, "/readyz")
        yield stack, twilio
    finally:
        stack.stop()
        twilio.stop()


def cap(msg_type: str, identifier: str, severity: str, urgency: str, certainty: str, event: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>weather@tangjiawan.example</sender>
  <sent>2026-08-01T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>{event}</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>{certainty}</certainty>
    <headline>{event}（唐家湾镇）</headline>
    <area><areaDesc>唐家湾镇沿海社区</areaDesc></area>
  </info>
</alert>
"""


def run_drill(stack: Stack, twilio: FakeTwilio, path: Path) -> DrillRun:
    """The scenario run in-process by the same runner `pingan drill run` uses, with the stack's credentials."""
    drill = DrillRun(read_scenario(path), path.parent, stack.url, stack.tokens, SPEED,
                     person_token=stack.token_for(READER, "drill_coordinator"),
                     twilio=twilio_signer(twilio.auth_token, PUBLIC_URL))
    drill.run()
    return drill


def test_signed_sms_and_voice_injects_arrive_as_the_drills_exercise_incidents(
        rig: tuple[Stack, FakeTwilio], tmp_path: Path) -> None:
    stack, twilio = rig
    fire = {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "唐家工业区仓库起火（探测器）",
            "location": {"area_code": "440402100001", "area_name": "唐家社区"}, "dedup_key": "probe-fire"}
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump({"title": "多渠道接警演练", "watch_min": 4, "injects": [
        {"id": "text", "at_min": 0, "sms": {"phone": "+8613800000001", "text": "唐家社区3栋起火了，浓烟很大"}},
        {"id": "call", "at_min": 0.5, "voice": {"phone": "+8613800000002", "digit": "3"}},
        {"id": "message", "at_min": 1, "voice": {"phone": "+8613800000003", "digit": "0",
                                                 "recording_url": "https://api.twilio.com/rec/RE1"}},
        {"id": "probe", "at_min": 1.5, "via": "alertmanager", "report": fire}]}, allow_unicode=True))
    twilio.reset()
    drill = run_drill(stack, twilio, path)

    sent = {e["inject"]: e for e in drill.log if e.get("inject") and "http" in e and e["what"] != "plan_activated"}
    for inject, source in (("text", "hotline_sms"), ("call", "hotline_voice"), ("message", "hotline_voice"),
                           ("probe", "alertmanager")):
        assert sent[inject]["http"] in (200, 202), sent[inject]
        incident_id = drill.tracked[inject].incident_id
        assert incident_id, (inject, drill.log)
        # The first report of a fresh stack waits for the worker's first consumer-group join.
        body = wait_for(lambda i=incident_id: stack.incident(i), 60, 0.2, f"incident of {inject}")  # type: ignore[misc]
        incident = body["incident"]
        assert (incident["status"], incident["source"], incident["labels"]["drill_run"]) == \
            ("exercise", source, drill.run_id), (inject, incident)
    results = drill.results()
    assert {i["inject"] for i in results["incidents"]} == {"text", "call", "message", "probe"}
    # Exercise traffic: the plans' SMS and calls went to the sandbox, none to Twilio.
    assert twilio.messages == [] and twilio.calls == []
    carried = [(a["details"].get("planned_channel"), a["details"]["channel"])
               for inject in ("text", "call", "message", "probe")
               for a in stack.incident(drill.tracked[inject].incident_id or "")["timeline"]  # type: ignore[index]
               if a["kind"] == "notified"]
    assert ("twilio_sms", "sandbox") in carried and all(c in ("sandbox", "console") for _, c in carried), carried

    # A run id that is not running is refused, naming the field; unsigned, it is refused before anything.
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": twilio.account_sid, "From": "+8613800000009",
            "To": twilio.from_number, "Body": "唐家社区起火", "PinganDrillRun": drill.run_id}  # ended with the run
    url = PUBLIC_URL + "/v1/intake/twilio/sms"
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    ended = httpx.post(stack.url + "/v1/intake/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert ended.status_code == 422 and ended.json()["field"] == "PinganDrillRun", ended.text
    forged = httpx.post(stack.url + "/v1/intake/twilio/sms", data=form, headers={"X-Twilio-Signature": "x" * 28})
    assert forged.status_code == 403


def test_a_cap_update_names_the_previous_update_and_a_task_is_done_at_iii_and_again_at_ii(
        rig: tuple[Stack, FakeTwilio], tmp_path: Path) -> None:
    stack, twilio = rig
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump({"title": "台风预警链演练", "watch_min": 3, "injects": [
        {"id": "yellow", "at_min": 0, "cap": {"xml": cap("Alert", "WX-CHAIN-1", "Moderate", "Expected", "Likely",
                                                         "台风黄色预警")}},
        {"id": "orange", "at_min": 4, "cap": {"references": "previous", "xml": cap(
            "Update", "WX-CHAIN-2", "Severe", "Immediate", "Likely", "台风橙色预警")}},
        {"id": "red", "at_min": 8, "cap": {"references": "previous", "xml": cap(
            "Update", "WX-CHAIN-3", "Extreme", "Immediate", "Observed", "台风红色预警")}}],
        "commands": [{"incident": "yellow", "after_min": 1, "verb": "task", "by": "xu-jing", "task": "report-city"},
                     {"incident": "yellow", "after_min": 5.5, "verb": "task", "by": "chen-jianhua",
                      "task": "report-city"}],
        "expect": [{"incident": "yellow", "plan": "typhoon", "grade": "I"}]}, allow_unicode=True))
    drill = run_drill(stack, twilio, path)

    # Each Update names the message before it as that was sent: the second Update names the first Update.
    alert, first, second = drill.cap_sent["yellow"], drill.cap_sent["orange"], drill.cap_sent["red"]
    assert re.search(r"<references>([^<]*)</references>", first).group(1) == cap_triple(alert)  # type: ignore[union-attr]
    assert re.search(r"<references>([^<]*)</references>", second).group(1) == cap_triple(first)  # type: ignore[union-attr]
    assert ".drill-" in cap_triple(first) and "WX-CHAIN-2" in cap_triple(first)

    incident_id = drill.tracked["yellow"].incident_id
    body = stack.incident(incident_id or "")
    assert body is not None and body["incident"]["grade"] == "I", drill.log
    levels = [a["details"]["level"] for a in body["timeline"] if a["kind"] == "plan_activated"]
    assert levels == ["III", "II", "I"], body["timeline"]
    done = [(a["details"]["task"], a["details"]["level"], a["actor"]) for a in body["timeline"]
            if a["kind"] == "task_done"]
    assert done == [("report-city", "III", "xu-jing"), ("report-city", "II", "chen-jianhua")], drill.log

    results = drill.results()
    assert [i["inject"] for i in results["incidents"]] == ["yellow"]  # the Updates are the same incident
    scored = {lv["grade"]: {t["task"]: t for t in lv["tasks"]} for lv in results["incidents"][0]["levels"]}
    assert scored["III"]["report-city"]["result"] == "met" and scored["III"]["report-city"]["by"] == "xu-jing"
    assert scored["II"]["report-city"]["result"] == "met" and scored["II"]["report-city"]["by"] == "chen-jianhua"
    assert results["incidents"][0]["failures"] == [], results["incidents"][0]["failures"]

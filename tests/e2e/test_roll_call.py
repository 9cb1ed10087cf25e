"""A roll call (点名) end to end: ten people are called, seven reply "1", the three missing are called again.

The plan set is our own (the shipped directory plus one plan whose only step is a roll call of ten people by
SMS, 3-minute window, one repeat): t+0 the ten SMS; the seven confirm by a bare "1"; t+3 the repeat goes to the
three missing only; t+6 (the end of the last window) the `roll_call` check lists 7 confirmed and 3 missing.
"""

import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import yaml
from twilio.request_validator import RequestValidator

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, wait_for
from tests.fixtures.twilio_server import FakeTwilio

DIRECTORY = load_plans(PLANS_DIR).directory
CALLED = ["zhong-lei", "liu-yang", "chen-jiawei", "su-peng", "ye-jiahao", "lu-kai", "pan-jun", "xie-na", "zhu-xuan",
          "ma-tengfei"]
REPLYING = CALLED[:7]
MISSING = CALLED[7:]
PHONE = {p: DIRECTORY.people[p].contacts.sms for p in CALLED}
STEP = "roll-call"
# 1 plan minute = 1/SCALE min: the repeat at t+3 is 9 s after activation, the check at t+6 is 18 s. Slower than
# the x60 of the escalation test, so that the seven replies land safely inside the first window.
SCALE = 20
SMS_PATH = "/v1/intake/twilio/sms"


def write_plans(root: Path) -> Path:
    plans = root / "plans"
    shutil.copytree(Path(PLANS_DIR) / "directory", plans / "directory")
    step = {"id": STEP, "targets": [{"person": p} for p in CALLED], "channels": ["sms"], "delay_min": 0,
            "ack_timeout_min": 3, "repeat": 1, "roll_call": True,
            "template": {"zh": "点名：{title}，到岗请回复1。编号 {id}"}}
    plan = {"id": "transport-roll-call", "title": {"zh": "交通事故到岗点名预案", "en": "Transport roll call"},
            "version": 1, "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
            "approved_by": ["huang-liping"], "last_editor": "xu-jing",
            "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]},
            "levels": [{"grade": g, "response_level": f"{g}级响应", "notify": [step]}
                       for g in ("I", "II", "III", "IV")]}
    (plans / "transport-roll-call.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True, sort_keys=False))
    return plans


def send_sms(stack: Stack, twilio: FakeTwilio, sender: str, text: str) -> httpx.Response:
    url = stack.env["PINGAN_PUBLIC_URL"] + SMS_PATH
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": twilio.account_sid, "From": sender,
            "To": twilio.from_number, "Body": text, "NumMedia": "0"}
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    return httpx.post(stack.url + SMS_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)


def sent_to(twilio: FakeTwilio, incident_id: str) -> dict[str, int]:
    counts = {p: 0 for p in CALLED}
    by_phone = {v: k for k, v in PHONE.items()}
    for m in twilio.messages:
        if incident_id in m["body"]:
            counts[by_phone[m["to"]]] += 1  # a KeyError here: someone outside the roll call got an SMS
    return counts


def entries(stack: Stack, incident_id: str, kind: str) -> list[dict[str, Any]]:
    body = stack.incident(incident_id)
    return [a for a in body["timeline"] if a["kind"] == kind] if body else []


def test_plan_set_lints_clean(tmp_path: Path) -> None:
    plans = write_plans(tmp_path)
    out = subprocess.run([sys.executable, "-m", "pingan.cli.main", "plans", "lint", str(plans)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 error(s)" in out.stdout + out.stderr
    # The only warnings are the categories this one-plan set leaves uncovered, and that it has no catch-all.
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "warning" in line and "coverage gap" not in line and "warning(s)" not in line
                and "no catch-all plan" not in line]
    assert problems == []
    assert len(set(PHONE.values())) == 10 and all(PHONE.values())


def test_roll_call_of_ten_seven_confirm_three_are_called_again(tmp_path: Path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    plans = write_plans(tmp_path)
    stack = Stack(tmp_path, PINGAN_PLANS_DIR=str(plans), PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE=str(SCALE))
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        response = stack.post("/v1/incidents", json={
            "category": "accident_disaster", "subtype": "transport", "grade": "III",
            "title": "沿江大道多车追尾", "location": {"area_name": "东湖街道"}})
        assert response.status_code == 202, response.text
        incident_id = response.json()["id"]

        # t+0: one SMS to each of the ten.
        wait_for(lambda: all(n == 1 for n in sent_to(twilio_server, incident_id).values()), 60, 0.1,
                 "the ten roll-call SMS")
        body = stack.incident(incident_id)
        assert body is not None
        activated = next(a for a in body["timeline"] if a["kind"] == "plan_activated")
        assert activated["plan_id"] == "transport-roll-call"
        first = next(m for m in twilio_server.messages if m["to"] == PHONE[CALLED[0]])
        assert first["body"].startswith("点名：沿江大道多车追尾，到岗请回复1。") and incident_id in first["body"]

        # Seven reply with a bare "1" from their own phones.
        for person in REPLYING:
            reply = send_sms(stack, twilio_server, PHONE[person], "1")
            assert reply.status_code == 200, reply.text
            text = "".join(ElementTree.fromstring(reply.text).find("Message").itertext())  # type: ignore[union-attr]
            assert incident_id in text and ("Confirmed" in text or "确认到岗" in text), text
        assert sum(sent_to(twilio_server, incident_id).values()) == 10, (
            "the t+3 repeat fired before the seven replies were in: this machine is too slow for SCALE")
        confirmed = entries(stack, incident_id, "confirmed")
        assert sorted(a["actor"] for a in confirmed) == sorted(REPLYING)
        assert all(a["details"]["step"] == STEP and a["details"]["via"] == "sms" for a in confirmed)

        # t+3: the repeat goes to the three missing only.
        wait_for(lambda: all(sent_to(twilio_server, incident_id)[p] == 2 for p in MISSING), 30, 0.1,
                 "the repeat to the three missing")
        # t+6: the check at the end of the last window.
        roll_call = wait_for(lambda: entries(stack, incident_id, "roll_call"), 30, 0.2, "the roll_call entry")
        assert len(roll_call) == 1
        details = roll_call[0]["details"]
        assert details["step"] == STEP
        assert details["confirmed"] == sorted(REPLYING)
        assert details["missing"] == sorted(MISSING)

        time.sleep(2)  # a little longer: nothing else follows
        counts = sent_to(twilio_server, incident_id)
        assert {p: counts[p] for p in MISSING} == {p: 2 for p in MISSING}
        assert {p: counts[p] for p in REPLYING} == {p: 1 for p in REPLYING}
        assert len(twilio_server.messages) == 13
        repeat = [m for m in twilio_server.messages if m["to"] == PHONE[MISSING[0]]][1]
        assert repeat["body"].startswith("点名：") and incident_id in repeat["body"]

        body = stack.incident(incident_id)
        assert body is not None
        assert len([a for a in body["timeline"] if a["kind"] == "confirmed"]) == 7
        assert len([a for a in body["timeline"] if a["kind"] == "roll_call"]) == 1
        escalated = [a for a in body["timeline"] if a["kind"] == "escalated"]
        assert len(escalated) == 1  # the one repeat, and the log names whom it reached
        assert escalated[0]["details"]["step"] == STEP and escalated[0]["details"]["deadline"] == "repeat"
        assert escalated[0]["details"]["recipients"] == sorted(MISSING)
        notified = [a["details"]["recipient"] for a in body["timeline"]
                    if a["kind"] == "notified" and a["details"].get("step") == STEP]
        assert sorted(notified) == sorted(CALLED + MISSING)
        assert body["incident"]["state"] != "acknowledged"  # confirming is not acknowledging
    finally:
        stack.stop()

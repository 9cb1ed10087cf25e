"""The response end to end, with a fast-forwarded clock (1 plan minute = 1 s): a real broker, worker, twilio
library and a local Twilio-compatible server.

Grade II typhoon → SMS to the on-duty officer → no ack → voice call to the commander → the commander presses 4 →
the escalation stops → the commander hands over to the deputy with `pingan handover`.
"""

import re
import time
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from pingan.handlers.plans.directory import DirectoryIndex, on_duty
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.common import utcnow
from tests.fixtures.stack import Stack, cli, wait_for

PLANS = load_plans(PLANS_DIR)
PEOPLE: DirectoryIndex = PLANS.directory
COMMANDER = PEOPLE.people["huang-liping"]  # typhoon level II commander
DEPUTY = PEOPLE.people["zhou-haibo"]


def kinds(body: dict[str, Any]) -> list[str]:
    return [a["kind"] for a in body["timeline"]]


def test_typhoon_escalates_until_the_commander_presses_4(tmp_path: Path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE="60")
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        officer = PEOPLE.people[on_duty(PEOPLE.rosters["duty-officer"], utcnow())]
        response = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "title": "台风“海葵”登陆", "location": {"area_name": "东湖街道"}})
        assert response.status_code == 202
        incident_id = response.json()["id"]

        # 1-2: the plan activates and the on-duty officer gets an SMS at t+0.
        wait_for(lambda: any(m["to"] == officer.contacts.sms for m in twilio_server.messages), 60, 0.2,
                 "SMS to the on-duty officer")
        body = stack.incident(incident_id)
        assert body is not None and "plan_activated" in kinds(body)
        assert body["timeline"][1]["plan_id"] == "typhoon"
        # 3-4: nobody acknowledges; at t+5 the commander is called (and the officer's SMS repeats).
        call = wait_for(lambda: next((c for c in twilio_server.calls if c["to"] == COMMANDER.contacts.sms), None),
                        30, 0.2, "voice call to the commander")
        assert "<Gather" in call["twiml"] and 'language="zh-CN"' in call["twiml"]
        wait_for(lambda: "escalated" in kinds(stack.incident(incident_id) or {"timeline": []}), 15, 0.2,
                 "an escalation entry")

        # 5: the commander presses 4 on that call (Twilio posts the Gather's action, signed).
        action = re.search(r'action="([^"]+)"', call["twiml"]).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
        form = {"CallSid": call["sid"], "From": twilio_server.from_number, "To": COMMANDER.contacts.sms,
                "Digits": "4", "AccountSid": twilio_server.account_sid}
        signature = RequestValidator(twilio_server.auth_token).compute_signature(action, form)
        pressed = httpx.post(action, data=form, headers={"X-Twilio-Signature": signature})
        assert pressed.status_code == 200 and "<Hangup" in pressed.text
        body = wait_for(lambda: (b := stack.incident(incident_id)) and "acknowledged" in kinds(b) and b, 10, 0.2,
                        "acknowledged")
        ack = next(a for a in body["timeline"] if a["kind"] == "acknowledged")
        assert ack["actor"] == "huang-liping" and ack["details"]["via"] == "voice"
        assert body["incident"]["state"] == "acknowledged"

        # 6: the escalation stops: no more repeats to the officer, no more calls to the commander. (The plan's
        # t+10 roll-call of the command group still runs: it is a step every grade II response takes.)
        calls_to_commander = sum(c["to"] == COMMANDER.contacts.sms for c in twilio_server.calls)
        time.sleep(12)  # twelve plan minutes: two more repeat windows would have passed
        after = stack.incident(incident_id)
        assert after is not None
        later = [a for a in after["timeline"] if a["seq"] > ack["seq"]]
        assert [a for a in later if a["kind"] == "escalated"] == []
        paging = [a for a in later if a["details"].get("step") in ("duty-officer-sms", "commander-voice")
                  and a["kind"] == "notified"]
        assert paging == []
        assert sum(c["to"] == COMMANDER.contacts.sms for c in twilio_server.calls) == calls_to_commander

        # 7: the commander hands over to the deputy from the CLI.
        handed = cli(stack.env, "handover", incident_id, "--to", DEPUTY.id, "--reason", "赴现场指挥部",
                     "--by", COMMANDER.id)
        assert handed.returncode == 0, handed.stderr
        final = stack.incident(incident_id)
        assert final is not None
        handover = next(a for a in final["timeline"] if a["kind"] == "handed_over")
        assert handover["details"]["to"] == DEPUTY.id and handover["details"]["role"] == "commander"
        assert handover["details"]["from"] == "person:huang-liping"
        order = [k for k in kinds(final) if k in ("created", "plan_activated", "escalated", "acknowledged",
                                                  "handed_over")]
        assert order[:2] == ["created", "plan_activated"] and order[-1] == "handed_over"
        assert order.index("escalated") < order.index("acknowledged")
        assert cli(stack.env, "log", "verify").returncode == 0
    finally:
        stack.stop()

"""Approval requests through a real stack (issue 17): `pingan up` with the shipped plans and directory, a real broker
and the local Twilio server. The public information officer drafts a grade II typhoon's release over HTTP; the
worker's scheduler picks the intents the draft wrote into the ledger and the notifier delivers them: the commander
the plan names (huang-liping) gets the request on the console and by SMS, the drafter nothing. The commander rejects it
with a reason; the drafter gets the reason by SMS. The timeline lists the intents and has their delivery entries."""

from pathlib import Path
from typing import Any

from pingan.handlers.channels.console import read_sink
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, wait_for
from tests.fixtures.twilio_server import FakeTwilio

PEOPLE = load_plans(PLANS_DIR).directory.people
COMMANDER, PIO = PEOPLE["huang-liping"], PEOPLE["xiang-yun"]  # the typhoon plan's grade II commander and PIO
TYPHOON = {"category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
           "title": "台风“海葵”", "location": {"area_name": "唐家湾镇", "area_code": "440402"}}


def timeline(stack: Stack, incident_id: str) -> list[dict[str, Any]]:
    body = stack.incident(incident_id)
    return body["timeline"] if body else []


def test_the_commander_is_asked_on_console_and_sms_and_the_drafter_hears_the_rejection(
        tmp_path: Path, twilio_server: FakeTwilio) -> None:
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)
    stack.up()
    try:
        reported = stack.post("/v1/incidents", json=TYPHOON)
        assert reported.status_code == 202, reported.text
        activated = wait_for(lambda: next((a for a in timeline(stack, reported.json()["id"])
                                           if a["kind"] == "plan_activated"), None), 60, 0.2, "the typhoon plan")
        assert activated["plan_id"] == "typhoon", activated
        incident = stack.incident(reported.json()["id"])["incident"]["id"]  # type: ignore[index]
        drafted = stack.post(f"/v1/incidents/{incident}/releases", person=PIO.id, roles=("public_information",),
                             json={})
        assert drafted.status_code == 201, drafted.text
        release = drafted.json()["release"]["id"]

        line = wait_for(lambda: next((r for r in read_sink(stack.sink) if r["recipient_id"] == COMMANDER.id
                                      and release in r["text"]), None), 60, 0.2, "the commander's console request")
        assert "待审批" in line["text"] and f"pingan release approve {release}" in line["text"]
        sms = wait_for(lambda: [m for m in twilio_server.messages if m["to"] == COMMANDER.contacts.sms
                                and release in m["body"]], 60, 0.2, "the commander's SMS request")
        assert len(sms) == 1 and "待审批" in sms[0]["body"]
        assert not [r for r in read_sink(stack.sink) if r["recipient_id"] == PIO.id]  # the drafter is not asked

        rejected = stack.post(f"/v1/releases/{release}/reject", person=COMMANDER.id, roles=("commander",),
                              json={"reason": "请补充避护场所地址"})
        assert rejected.status_code == 200, rejected.text
        told = wait_for(lambda: [m for m in twilio_server.messages if m["to"] == PIO.contacts.sms
                                 and "请补充避护场所地址" in m["body"]], 60, 0.2, "the drafter's SMS")
        assert len(told) == 1 and release in told[0]["body"]

        # The timeline: the draft's entry lists the intents; the notifier's delivery entries follow for each.
        entries = timeline(stack, incident)
        listed = next(a for a in entries if a["kind"] == "release_drafted")["details"]["notifications"]
        assert {(n["recipient"], n["channel"]) for n in listed} >= {(COMMANDER.id, "console"),
                                                                   (COMMANDER.id, "twilio_sms")}
        notified = {a["details"]["notification"] for a in entries if a["kind"] in ("notified", "delivered")}
        assert {n["key"] for n in listed if n["channel"] in ("console", "twilio_sms")} <= notified
    finally:
        stack.stop()

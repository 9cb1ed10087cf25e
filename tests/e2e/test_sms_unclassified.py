"""Citizen texts end to end: `pingan up` with the shipped plans, a real broker and the fake Twilio.

A text nobody can classify (a greeting; control characters around 火) is no incident with a plan: it comes in as
other/unclassified at grade IV and the unclassified-report procedure puts it, with the citizen's text, on the duty
room's console only (no SMS, not the catch-all). A clear text in Cantonese that names a community activates the
building-fire plan with the community as its place.
"""

import re
from pathlib import Path
from typing import Any

from pingan.handlers.channels.console import read_sink
from tests.e2e.test_sms_commands import send_sms, twiml_message
from tests.fixtures.stack import Stack, wait_for

CITIZEN = "+12025550197"  # the fictional range, nobody in the directory
REFERENCE = re.compile(r"INC-[0-9A-Z]+")


def reported(stack: Stack, twilio: Any, text: str) -> str:
    reply = twiml_message(send_sms(stack, twilio, CITIZEN, text))
    found = REFERENCE.search(reply)
    assert found, reply
    return found.group(0)


def activation(stack: Stack, incident_id: str) -> dict[str, Any] | None:
    body = stack.incident(incident_id)
    timeline = body["timeline"] if body and "timeline" in body else []
    return next((a for a in timeline if a["kind"] == "plan_activated"), None)


def test_unclassifiable_texts_reach_the_duty_room_and_clear_ones_their_plan(tmp_path: Path,
                                                                            twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        greeting = reported(stack, twilio_server, "你好，在吗？")
        noise = reported(stack, twilio_server, "\x02\x03火\x04\x05\x06")
        fire = reported(stack, twilio_server, "唐家市场二楼火烛呀，好大烟")
        for incident_id, text in ((greeting, "你好，在吗？"), (noise, "火")):
            lines = wait_for(lambda i=incident_id: [r["text"] for r in read_sink(stack.sink)
                                                    if r["incident_id"] == i], 60, 0.2, f"console of {incident_id}")
            assert "待甄别" in lines[0] and f"“{text}”" in lines[0] and "无对应预案" not in lines[0], lines
            activated = wait_for(lambda i=incident_id: activation(stack, i), 30, 0.2, "plan_activated")
            assert activated["plan_id"] == "unclassified-report" and not activated["details"].get("catch_all")
            incident = stack.incident(incident_id)["incident"]
            assert (incident["category"], incident["subtype"], incident["grade"]) == ("other", "unclassified", "IV")
            assert incident["labels"]["pingan_unclassified"] == "true"
        assert stack.incident(noise)["incident"]["labels"]["sms_hint"] == "fire_weak"
        # Only the duty room hears of them: nobody was texted about the greeting or the noise.
        assert not [m for m in twilio_server.messages if greeting in m["body"] or noise in m["body"]]
        activated = wait_for(lambda: activation(stack, fire), 60, 0.2, "the fire's plan")
        assert activated["plan_id"] == "building-fire" and not activated["details"].get("catch_all")
        incident = stack.incident(fire)["incident"]
        assert (incident["subtype"], incident["location"]["area_code"]) == ("fire", "440402100001")
    finally:
        stack.stop()

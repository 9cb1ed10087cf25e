"""Commands by SMS reply, end to end (1 plan minute = 1 s): only someone the incident told may command it.

Grade II typhoon → the on-duty officer gets the t+0 SMS → a stranger replies `<ref> 1` and is refused politely
(logged) → the officer replies `<ref> 1` → acknowledged, and the escalation stops.
"""

import secrets
import time
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from twilio.request_validator import RequestValidator

from pingan.commands import parse_sms_command
from pingan.handlers.incidents.escalation import Command
from pingan.handlers.plans.directory import DirectoryIndex, on_duty
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.common import utcnow
from tests.fixtures.stack import Stack, wait_for
from tests.fixtures.twilio_server import FakeTwilio

PEOPLE: DirectoryIndex = load_plans(PLANS_DIR).directory
STRANGER = "+12025550199"  # in the fictional range, but nobody in the directory
STRANGER_2 = "+12025550198"
SMS_PATH = "/v1/intake/twilio/sms"


def kinds(body: dict[str, Any]) -> list[str]:
    return [a["kind"] for a in body["timeline"]]


def send_sms(stack: Stack, twilio: FakeTwilio, sender: str, text: str, sid: str | None = None) -> httpx.Response:
    """An inbound SMS as Twilio posts it: form-encoded and signed over PINGAN_PUBLIC_URL + path. `sid`: the same
    message posted again (a retry, or a replay of a captured request)."""
    url = stack.env["PINGAN_PUBLIC_URL"] + SMS_PATH
    form = {"MessageSid": sid or "SM" + secrets.token_hex(16), "AccountSid": twilio.account_sid, "From": sender,
            "To": twilio.from_number, "Body": text, "NumMedia": "0", "NumSegments": "1"}
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    return httpx.post(stack.url + SMS_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)


def twiml_message(response: httpx.Response) -> str:
    """The text of the single <Message> in a TwiML reply."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) == 1, response.text
    return "".join(messages[0].itertext())


# ── parsing (no stack) ───────────────────────────────────────────────────────────────────────────────────

REF = "INC-7K3M9Q2XAB"


@pytest.mark.parametrize(("text", "expected"), [
    (f"{REF} 1", (REF, Command.acknowledge)),
    (f"{REF} 2", (REF, Command.escalate)),
    (f"{REF} 3", (REF, Command.close)),
    (f"  {REF.lower()}   1 ", (REF, Command.acknowledge)),  # case and spacing from a phone keyboard
    (f"ACK {REF}", (REF, Command.acknowledge)),
    (f"ack {REF}", (REF, Command.acknowledge)),
    (f"确认 {REF}", (REF, Command.acknowledge)),
    (f"确认{REF}", (REF, Command.acknowledge)),
    (f"收到 {REF}", (REF, Command.acknowledge)),
])
def test_sms_commands_parse(text: str, expected: tuple[str, Command]) -> None:
    assert parse_sms_command(text) == expected


@pytest.mark.parametrize("text", [
    "唐家社区幸福路12号三楼着火了，有人被困",  # a plain report
    "Fire at 12 Xingfu Road, people trapped on the 3rd floor",
    f"{REF} 1 楼道里有浓烟",  # a report that happens to start with a ref and a digit
    f"看到 {REF} 的短信了，现在积水很深",  # mentions a ref, but is no command
    f"{REF} 4",  # 4 is a voice key, not an SMS command
    f"{REF}",
    "1",  # a bare 1 answers a roll call, never an incident command
    "ACK",
    "确认",
    "INC-123 1",  # not a ref
    "",
])
def test_plain_text_is_not_a_command(text: str) -> None:
    assert parse_sms_command(text) is None


# ── end to end ───────────────────────────────────────────────────────────────────────────────────────────

def test_sms_reply_from_a_stranger_is_refused_and_from_the_officer_acknowledges(tmp_path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE="60")
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    assert STRANGER not in {p.contacts.sms for p in PEOPLE.people.values()}
    assert STRANGER_2 not in {p.contacts.sms for p in PEOPLE.people.values()}
    stack.up()
    try:
        officer = PEOPLE.people[on_duty(PEOPLE.rosters["duty-officer"], utcnow())]
        response = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "title": "台风“海葵”登陆", "location": {"area_name": "东湖街道"}})
        assert response.status_code == 202, response.text
        incident_id = response.json()["id"]
        wait_for(lambda: any(m["to"] == officer.contacts.sms and incident_id in m["body"]
                             for m in twilio_server.messages), 60, 0.2, "the t+0 SMS to the on-duty officer")

        # (a) A stranger replies `<ref> 1`: a polite refusal, logged, and nothing acknowledged.
        reply = twiml_message(send_sms(stack, twilio_server, STRANGER, f"{incident_id} 1"))
        assert "Sorry" in reply and incident_id in reply and "not carried out" in reply
        reply_zh = twiml_message(send_sms(stack, twilio_server, STRANGER_2, f"确认 {incident_id}"))
        assert "抱歉" in reply_zh and incident_id in reply_zh and "未执行" in reply_zh
        body = stack.incident(incident_id)
        assert body is not None
        refused = [a for a in body["timeline"] if a["kind"] == "refused"]
        assert [a["actor"] for a in refused] == [f"sms:{STRANGER}", f"sms:{STRANGER_2}"]
        assert STRANGER in refused[0]["details"]["reason"] and incident_id in refused[0]["details"]["reason"]
        assert "acknowledged" not in kinds(body)
        assert body["incident"]["state"] != "acknowledged"
        # The refusal sent no SMS of its own (the reply is the TwiML) and reached no one else.
        assert not any(m["to"] in (STRANGER, STRANGER_2) for m in twilio_server.messages)

        # (b) The officer, who got the t+0 SMS, replies `<ref> 1`: acknowledged, by them, via SMS.
        reply = twiml_message(send_sms(stack, twilio_server, officer.contacts.sms, f"{incident_id} 1"))  # type: ignore[arg-type]
        assert "Acknowledged" in reply and incident_id in reply
        body = wait_for(lambda: (b := stack.incident(incident_id)) and "acknowledged" in kinds(b) and b, 10, 0.2,
                        "acknowledged")
        acks = [a for a in body["timeline"] if a["kind"] == "acknowledged"]
        assert len(acks) == 1
        ack = acks[0]
        assert ack["actor"] == officer.id and ack["details"]["via"] == "sms"
        assert body["incident"]["state"] == "acknowledged"
        assert len([a for a in body["timeline"] if a["kind"] == "refused"]) == 2  # the officer was not refused
        # What the log says the officer was told before the ack (so the check below looks at the right entries).
        assert any(a["kind"] == "notified" and a["details"].get("step") == "duty-officer-sms"
                   and a["details"].get("recipient") == officer.id and a["seq"] < ack["seq"]
                   for a in body["timeline"]), kinds(body)

        # The escalation stops: eight plan minutes on (past the t+5 repeat and the t+5 escalation window),
        # no `escalated` entry and no repeat of the officer's SMS.
        time.sleep(8)
        after = stack.incident(incident_id)
        assert after is not None
        later = [a for a in after["timeline"] if a["seq"] > ack["seq"]]
        assert [a for a in later if a["kind"] == "escalated"] == []
        assert [a for a in later if a["kind"] == "notified"
                and a["details"].get("step") == "duty-officer-sms"] == []
        assert after["incident"]["state"] == "acknowledged"
    finally:
        stack.stop()



def _typhoon_stack(tmp_path, twilio_server) -> tuple[Stack, str]:  # type: ignore[no-untyped-def]
    """A stack at real time (no escalation of the plan's own runs during a test), and a grade II typhoon incident
    whose t+0 SMS have gone out to the on-duty officer and to ke-weiming."""
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        response = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "title": "台风“海葵”登陆", "location": {"area_name": "东湖街道"}})
        assert response.status_code == 202, response.text
        incident_id = response.json()["id"]
        for person in (OFFICER, GEOLOGIST):
            wait_for(lambda p=person: any(m["to"] == p.contacts.sms and incident_id in m["body"]
                                          for m in twilio_server.messages), 60, 0.2, f"the t+0 SMS to {person.id}")
    except BaseException:
        stack.stop()
        raise
    return stack, incident_id


OFFICER = PEOPLE.people[on_duty(PEOPLE.rosters["duty-officer"], utcnow())]
# The natural-resources department's contact: told by the grade II typhoon plan's t+0 SMS, and on no roster.
GEOLOGIST = PEOPLE.people["ke-weiming"]


def test_a_number_whose_sms_failed_may_not_command_and_is_logged(tmp_path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, finding 3: Twilio reports the SMS to ke-weiming undelivered; a command from that number is refused."""
    stack, incident_id = _typhoon_stack(tmp_path, twilio_server)
    try:
        sent = next(m for m in twilio_server.messages if m["to"] == GEOLOGIST.contacts.sms and incident_id in m["body"])
        status_url = stack.env["PINGAN_PUBLIC_URL"] + "/v1/intake/twilio/status"
        report = {"MessageSid": sent["sid"], "MessageStatus": "undelivered", "ErrorCode": "30003",
                  "AccountSid": twilio_server.account_sid, "From": twilio_server.from_number,
                  "To": GEOLOGIST.contacts.sms}
        signature = RequestValidator(twilio_server.auth_token).compute_signature(status_url, report)
        callback = httpx.post(stack.url + "/v1/intake/twilio/status", data=report,
                              headers={"X-Twilio-Signature": signature}, timeout=30)
        assert callback.status_code == 204, callback.text
        wait_for(lambda: (b := stack.incident(incident_id)) and any(
            a["kind"] == "failed" and a["details"].get("recipient") == GEOLOGIST.id for a in b["timeline"]),
            30, 0.2, "the geologist's SMS recorded as failed")

        reply = twiml_message(send_sms(stack, twilio_server, GEOLOGIST.contacts.sms, f"{incident_id} 2"))  # type: ignore[arg-type]
        assert "Sorry" in reply and "not carried out" in reply, reply
        body = stack.incident(incident_id)
        assert body is not None
        refused = [a for a in body["timeline"] if a["kind"] == "refused"]
        assert [a["actor"] for a in refused] == [f"sms:{GEOLOGIST.contacts.sms}"]
        assert "was not reached" in refused[0]["details"]["reason"] and "failed" in refused[0]["details"]["reason"]
        assert "escalated" not in kinds(body)
        # The officer, whose SMS went out, still may.
        reply = twiml_message(send_sms(stack, twilio_server, OFFICER.contacts.sms, f"{incident_id} 1"))  # type: ignore[arg-type]
        assert "Acknowledged" in reply, reply
    finally:
        stack.stop()


def test_one_sms_command_posted_three_times_escalates_once(tmp_path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, finding 3: the officer's `<ref> 2`, one message (one MessageSid) posted three times: one escalation,
    three identical answers, nothing logged by the repeats."""
    stack, incident_id = _typhoon_stack(tmp_path, twilio_server)
    try:
        sid = "SM" + secrets.token_hex(16)
        replies = [twiml_message(send_sms(stack, twilio_server, OFFICER.contacts.sms, f"{incident_id} 2", sid))  # type: ignore[arg-type]
                   for _ in range(3)]
        assert "Escalated" in replies[0] and incident_id in replies[0]
        assert replies[1] == replies[0] and replies[2] == replies[0]
        time.sleep(2)  # anything a repeat had started would be in the log by now
        body = stack.incident(incident_id)
        assert body is not None
        escalated = [a for a in body["timeline"] if a["kind"] == "escalated"]
        assert len(escalated) == 1, kinds(body)
        assert escalated[0]["actor"] == OFFICER.id and escalated[0]["details"]["via"] == "sms"
        assert escalated[0]["details"]["message_sid"] == sid
        assert [a for a in body["timeline"] if a["kind"] == "refused"] == []
    finally:
        stack.stop()

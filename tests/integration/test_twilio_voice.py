"""Twilio voice channel: the real twilio client against the local Twilio-compatible server (tests.fixtures)."""

import socket
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from pingan.handlers.channels.twilio_voice import TwilioVoiceChannel, twilio_voice_from_settings
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.settings import Settings
from tests.fixtures.twilio_server import FakeTwilio

GOOD_TO = "+8613800138000"
PUBLIC_URL = "https://pingan.example.org"
TEXT = "化工厂泄漏：请立即到指挥所报到"


def make_notification(to: str = GOOD_TO, text: str = TEXT, key: str = "0123456789abcdef", lang: str = "zh",
                      created_at: datetime | None = None) -> Notification:
    return Notification(
        idempotency_key=key, incident_id="inc-1", plan_id="chem-leak", plan_version=1, step="alert",
        recipient=Recipient(id="chief", name="Chief Li", channel=Channel.twilio_voice, address=to, lang=lang),
        channel=Channel.twilio_voice, text=text, created_at=created_at or datetime.now(UTC),
    )


def channel_for(server: FakeTwilio, **overrides) -> TwilioVoiceChannel:
    args = {"account_sid": server.account_sid, "auth_token": server.auth_token, "from_number": server.from_number,
            "public_url": PUBLIC_URL, "api_base_url": server.base_url, "timeout_s": 5}
    return TwilioVoiceChannel(**{**args, **overrides})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connection refused


def test_call_is_accepted_with_inline_twiml_that_gathers_the_ack(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server, status_callback="http://127.0.0.1:9/twilio/call-status")
    result = channel.send(make_notification())

    assert result.outcome is SendOutcome.accepted
    assert result.provider_id is not None
    assert result.provider_id.startswith("CA") and len(result.provider_id) == 34
    assert result.extra["status"] == "queued"
    [call] = twilio_server.calls
    assert call["sid"] == result.provider_id
    assert (call["to"], call["from"]) == (GOOD_TO, twilio_server.from_number)
    assert call["url"] is None and call["status_callback"] == "http://127.0.0.1:9/twilio/call-status"
    assert twilio_server.messages == []
    assert ("POST", f"/2010-04-01/Accounts/{twilio_server.account_sid}/Calls.json") in twilio_server.requests

    root = ET.fromstring(call["twiml"])
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib["action"] == f"{PUBLIC_URL}/v1/intake/twilio/voice/ack?key=0123456789abcdef"
    assert gather.attrib["method"] == "POST" and gather.attrib["numDigits"] == "1"
    says = gather.findall("Say")
    assert says[0].text == TEXT and says[0].attrib == {"language": "zh-CN", "loop": "2"}
    assert "按4确认" in (says[1].text or "")


def test_english_recipient_hears_en_us(twilio_server: FakeTwilio) -> None:
    channel_for(twilio_server).send(make_notification(text="Chemical leak at plant 3", lang="en"))
    say = ET.fromstring(twilio_server.calls[0]["twiml"]).find("Gather/Say")
    assert say is not None and say.attrib["language"] == "en-US" and say.text == "Chemical leak at plant 3"


@pytest.mark.parametrize(("to", "code"), [("+15005550001", 21217), ("+15005550003", 21215),
                                          ("+15005550004", 21216)])
def test_numbers_twilio_refuses_to_call_fail_permanently(twilio_server: FakeTwilio, to: str, code: int) -> None:
    result = channel_for(twilio_server).send(make_notification(to=to))
    assert result.outcome is SendOutcome.permanent_failure
    assert result.extra == {"http_status": 400, "code": code}
    assert str(code) in result.detail
    assert twilio_server.calls == []


def test_non_e164_address_fails_permanently_without_calling_twilio(twilio_server: FakeTwilio) -> None:
    result = channel_for(twilio_server).send(make_notification(to="13800138000"))
    assert result.outcome is SendOutcome.permanent_failure and "E.164" in result.detail
    assert twilio_server.requests == []


def test_a_from_number_not_on_the_account_fails_permanently(twilio_server: FakeTwilio) -> None:
    result = channel_for(twilio_server, from_number="+15005550007").send(make_notification())
    assert result.outcome is SendOutcome.permanent_failure and result.extra["code"] == 21210


def test_twiml_over_twilios_limit_fails_permanently_without_calling(twilio_server: FakeTwilio) -> None:
    result = channel_for(twilio_server).send(make_notification(text="&" * 1600))  # escaped to 8000 characters
    assert result.outcome is SendOutcome.permanent_failure and "4000" in result.detail
    assert twilio_server.requests == []


@pytest.mark.parametrize("status", [503, 500, 429])
def test_server_errors_and_throttling_are_transient(twilio_server: FakeTwilio, status: int) -> None:
    twilio_server.fail_next(1, status=status)
    channel = channel_for(twilio_server)
    failed = channel.send(make_notification())
    assert failed.outcome is SendOutcome.transient_failure
    assert failed.extra["http_status"] == status
    assert twilio_server.calls == []
    assert channel.send(make_notification()).outcome is SendOutcome.accepted  # the retry goes through
    assert len(twilio_server.calls) == 1


def test_server_down_is_transient_and_reconcile_unknown() -> None:
    channel = TwilioVoiceChannel("AC" + "0" * 32, "token", "+15005550006", PUBLIC_URL,
                                 api_base_url=closed_port_url())
    result = channel.send(make_notification())
    assert result.outcome is SendOutcome.transient_failure and "unreachable" in result.detail
    assert channel.reconcile(make_notification()).outcome is ReconcileOutcome.unknown


def test_timeout_is_transient_and_reconcile_then_finds_the_call(twilio_server: FakeTwilio) -> None:
    twilio_server.delay_next(1, seconds=0.6)
    channel = channel_for(twilio_server, timeout_s=0.2)
    n = make_notification()
    assert channel.send(n).outcome is SendOutcome.transient_failure
    deadline = time.monotonic() + 5
    while not twilio_server.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    verdict = channel.reconcile(n)
    assert verdict.outcome is ReconcileOutcome.sent
    assert verdict.provider_id == twilio_server.calls[0]["sid"]


def test_reconcile_finds_a_call_to_the_recipient_and_not_elsewhere_or_earlier(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    n = make_notification()
    accepted = channel.send(n)
    fresh = channel_for(twilio_server)  # as after a restart
    found = fresh.reconcile(n)
    assert found.outcome is ReconcileOutcome.sent and found.provider_id == accepted.provider_id
    elsewhere = make_notification(key="key-elsewhere", to="+8613900139000")
    assert fresh.reconcile(elsewhere).outcome is ReconcileOutcome.not_sent
    later = make_notification(key="key-later", created_at=datetime.now(UTC) + timedelta(minutes=10))
    assert fresh.reconcile(later).outcome is ReconcileOutcome.not_sent
    # The call text cannot be listed: a different notification to the same person in the window reads as sent.
    other_text = make_notification(key="key-other", text="A different message")
    assert fresh.reconcile(other_text).outcome is ReconcileOutcome.sent
    assert ("GET", f"/2010-04-01/Accounts/{twilio_server.account_sid}/Calls.json") in twilio_server.requests


def test_reconcile_finds_a_call_still_queued(twilio_server: FakeTwilio) -> None:
    twilio_server.keep_queued = True  # no start_time yet, so the StartTime> filter alone would miss it
    channel = channel_for(twilio_server)
    n = make_notification()
    accepted = channel.send(n)
    verdict = channel.reconcile(n)
    assert verdict.outcome is ReconcileOutcome.sent and verdict.provider_id == accepted.provider_id


def test_call_list_paging_and_messages_stay_apart(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    for i in range(5):
        assert channel.send(make_notification(key=f"key-page-{i}")).outcome is SendOutcome.accepted
    listed = channel.client.calls.list(to=GOOD_TO, page_size=2)
    assert sorted(c.sid for c in listed) == sorted(c["sid"] for c in twilio_server.calls)
    assert len([r for r in twilio_server.requests if r[0] == "GET"]) == 3
    assert channel.client.messages.list() == []
    twilio_server.reset()
    assert twilio_server.calls == [] and twilio_server.requests == []


def test_factory_needs_sid_token_from_and_public_url(twilio_server: FakeTwilio) -> None:
    creds = {"twilio_account_sid": twilio_server.account_sid, "twilio_auth_token": twilio_server.auth_token,
             "twilio_from_number": twilio_server.from_number, "twilio_api_base_url": twilio_server.base_url}
    assert twilio_voice_from_settings(Settings(**creds, public_url=None)) is None
    channel = twilio_voice_from_settings(Settings(**creds, public_url=PUBLIC_URL + "/"))
    assert channel is not None
    assert channel.send(make_notification()).outcome is SendOutcome.accepted
    gather = ET.fromstring(twilio_server.calls[0]["twiml"]).find("Gather")
    assert gather is not None and gather.attrib["action"].startswith(PUBLIC_URL + "/v1/intake/")

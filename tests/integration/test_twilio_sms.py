"""Twilio SMS channel: the real twilio client against the local Twilio-compatible server (tests.fixtures)."""

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from pingan.handlers.channels.twilio_sms import TwilioSmsChannel, twilio_channel_from_settings
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.settings import Settings
from tests.fixtures.twilio_server import FakeTwilio

GOOD_TO = "+8613800138000"


def make_notification(to: str = GOOD_TO, text: str = "Chemical leak at plant 3: report to the command post",
                      key: str = "key-0001", created_at: datetime | None = None) -> Notification:
    return Notification(
        idempotency_key=key, incident_id="inc-1", plan_id="chem-leak", plan_version=1, step="alert",
        recipient=Recipient(id="chief", name="Chief Li", channel=Channel.twilio_sms, address=to),
        channel=Channel.twilio_sms, text=text, created_at=created_at or datetime.now(UTC),
    )


def channel_for(server: FakeTwilio, **overrides) -> TwilioSmsChannel:
    args = {"account_sid": server.account_sid, "auth_token": server.auth_token,
            "from_number": server.from_number, "api_base_url": server.base_url, "timeout_s": 5}
    return TwilioSmsChannel(**{**args, **overrides})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connection refused


def test_send_is_accepted_and_the_server_got_to_from_body(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server, status_callback="http://127.0.0.1:9/twilio/status")
    result = channel.send(make_notification())

    assert result.outcome is SendOutcome.accepted
    assert result.provider_id is not None
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    assert result.extra["status"] == "queued"
    [message] = twilio_server.messages
    assert message["sid"] == result.provider_id
    assert (message["to"], message["from"]) == (GOOD_TO, twilio_server.from_number)
    assert message["body"] == "Chemical leak at plant 3: report to the command post"
    assert message["status_callback"] == "http://127.0.0.1:9/twilio/status"


def test_non_e164_address_fails_permanently_without_calling_twilio(twilio_server: FakeTwilio) -> None:
    result = channel_for(twilio_server).send(make_notification(to="13800138000"))
    assert result.outcome is SendOutcome.permanent_failure
    assert "E.164" in result.detail
    assert twilio_server.requests == [] and twilio_server.messages == []


def test_number_twilio_rejects_with_21211_fails_permanently(twilio_server: FakeTwilio) -> None:
    # +15005550001 is Twilio's magic "invalid number": it passes our E.164 check, the server rejects it.
    result = channel_for(twilio_server).send(make_notification(to="+15005550001"))
    assert result.outcome is SendOutcome.permanent_failure
    assert result.extra["code"] == 21211 and result.extra["http_status"] == 400
    assert "21211" in result.detail and "not a valid phone number" in result.detail
    assert len(twilio_server.requests) == 1 and twilio_server.messages == []


@pytest.mark.parametrize("status", [503, 500, 429])
def test_server_errors_and_throttling_are_transient(twilio_server: FakeTwilio, status: int) -> None:
    twilio_server.fail_next(1, status=status)
    channel = channel_for(twilio_server)
    failed = channel.send(make_notification())
    assert failed.outcome is SendOutcome.transient_failure
    assert failed.extra["http_status"] == status
    assert twilio_server.messages == []
    # The fault was one-off: the retry the caller makes goes through.
    assert channel.send(make_notification()).outcome is SendOutcome.accepted
    assert len(twilio_server.messages) == 1


def test_over_the_concurrency_cap_is_throttled_with_retry_after() -> None:
    """The server's 429 carries error 20429 and Retry-After; the channel marks it throttled with those seconds."""
    server = FakeTwilio(max_concurrent=0, retry_after_s=2.5).start()
    try:
        result = channel_for(server).send(make_notification())
        assert result.outcome is SendOutcome.transient_failure
        assert (result.extra["http_status"], result.extra["code"]) == (429, 20429)
        assert result.extra["throttled"] is True and result.extra["retry_after_s"] == 2.5
        assert server.throttled == 1 and server.messages == []
    finally:
        server.stop()


def test_a_5xx_is_not_throttling(twilio_server: FakeTwilio) -> None:
    twilio_server.fail_next(1, status=503)
    assert "throttled" not in channel_for(twilio_server).send(make_notification()).extra


def test_sends_share_one_pooled_connection(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    for i in range(3):
        assert channel.send(make_notification(key=f"key-{i:04d}")).outcome is SendOutcome.accepted
    pool = next(iter(channel._http.session.adapters["http://"].poolmanager.pools._container.values()))
    assert pool.num_connections == 1  # keep-alive: one connection opened for three sends


def test_wrong_auth_token_fails_permanently(twilio_server: FakeTwilio) -> None:
    result = channel_for(twilio_server, auth_token="0" * 32).send(make_notification())
    assert result.outcome is SendOutcome.permanent_failure
    assert result.extra["http_status"] == 401 and result.extra["code"] == 20003
    assert twilio_server.messages == []


def test_server_down_is_transient() -> None:
    channel = TwilioSmsChannel("AC" + "0" * 32, "token", "+15005550006", api_base_url=closed_port_url())
    result = channel.send(make_notification())
    assert result.outcome is SendOutcome.transient_failure
    assert "unreachable" in result.detail


def test_timeout_is_transient_and_reconcile_then_finds_the_message(twilio_server: FakeTwilio) -> None:
    # The server takes the message but answers too late: the ambiguous case reconcile exists for.
    twilio_server.delay_next(1, seconds=0.6)
    channel = channel_for(twilio_server, timeout_s=0.2)
    n = make_notification()
    assert channel.send(n).outcome is SendOutcome.transient_failure
    deadline = time.monotonic() + 5
    while not twilio_server.messages and time.monotonic() < deadline:
        time.sleep(0.02)
    verdict = channel.reconcile(n)
    assert verdict.outcome is ReconcileOutcome.sent
    assert verdict.provider_id == twilio_server.messages[0]["sid"]


def test_reconcile_finds_a_sent_message_and_not_a_never_sent_one(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    sent = make_notification(key="key-sent")
    accepted = channel.send(sent)
    assert accepted.outcome is SendOutcome.accepted

    fresh = channel_for(twilio_server)  # as after a restart
    found = fresh.reconcile(sent)
    assert found.outcome is ReconcileOutcome.sent and found.provider_id == accepted.provider_id
    never = make_notification(key="key-never", text="A different message that was never sent")
    assert fresh.reconcile(never).outcome is ReconcileOutcome.not_sent
    elsewhere = make_notification(key="key-elsewhere", to="+8613900139000")  # same text, other recipient
    assert fresh.reconcile(elsewhere).outcome is ReconcileOutcome.not_sent


def test_reconcile_ignores_matches_older_than_the_notification(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    assert channel.send(make_notification()).outcome is SendOutcome.accepted
    later = make_notification(key="key-later", created_at=datetime.now(UTC) + timedelta(minutes=10))
    assert channel.reconcile(later).outcome is ReconcileOutcome.not_sent


def test_reconcile_finds_a_message_still_queued(twilio_server: FakeTwilio) -> None:
    twilio_server.keep_queued = True  # no date_sent yet, so the DateSent> filter alone would miss it
    channel = channel_for(twilio_server)
    n = make_notification()
    accepted = channel.send(n)
    verdict = channel.reconcile(n)
    assert verdict.outcome is ReconcileOutcome.sent and verdict.provider_id == accepted.provider_id


def test_reconcile_is_unknown_when_twilio_cannot_be_asked() -> None:
    channel = TwilioSmsChannel("AC" + "0" * 32, "token", "+15005550006", api_base_url=closed_port_url())
    assert channel.reconcile(make_notification()).outcome is ReconcileOutcome.unknown


def test_list_paging_follows_next_page_uri_on_the_local_server(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server)
    for i in range(5):
        channel.send(make_notification(text=f"message {i}"))
    listed = channel.client.messages.list(to=GOOD_TO, page_size=2)
    assert sorted(m.body for m in listed) == [f"message {i}" for i in range(5)]
    assert len([r for r in twilio_server.requests if r[0] == "GET"]) == 3


def test_factory_needs_sid_token_and_from(twilio_server: FakeTwilio) -> None:
    assert twilio_channel_from_settings(Settings(twilio_account_sid=twilio_server.account_sid,
                                                 twilio_auth_token=twilio_server.auth_token)) is None
    channel = twilio_channel_from_settings(Settings(
        twilio_account_sid=twilio_server.account_sid, twilio_auth_token=twilio_server.auth_token,
        twilio_from_number=twilio_server.from_number, twilio_api_base_url=twilio_server.base_url))
    assert channel is not None
    assert channel.send(make_notification()).outcome is SendOutcome.accepted
    assert len(twilio_server.messages) == 1

"""Email channel against a real local SMTP server (aiosmtpd) on 127.0.0.1."""

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from pingan.handlers.channels.email import EmailChannel, email_channel_from_env, message_id, subject_for
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome
from pingan.schemas.notification import Channel, DeliveryState, Notification, Recipient
from pingan.store.repository import Store
from pingan.streams.stages import notify_stage

SENDER = "pingan@district.example.org"
TO = "duty@district.example.org"
TEXT = "化工厂泄漏：请立即到指挥所报到\n地点：三号厂区东门。\nChemical leak at plant 3."


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, or answers RCPT/DATA with a scripted reply."""

    def __init__(self) -> None:
        self.received: list[tuple[Any, EmailMessage]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope, parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def make_notification(to: str = TO, text: str = TEXT, key: str = "0123456789abcdef") -> Notification:
    return Notification(
        idempotency_key=key, incident_id="inc-1", plan_id="chem-leak", plan_version=1, step="alert",
        recipient=Recipient(id="duty", name="值班室", channel=Channel.email, address=to),
        channel=Channel.email, text=text, created_at=datetime.now(UTC),
    )


def test_message_arrives_with_utf8_chinese_body_and_message_id(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    result = EmailChannel("127.0.0.1", port, SENDER, timeout_s=5).send(make_notification())

    assert result.outcome is SendOutcome.accepted
    assert result.provider_id == "<0123456789abcdef@pingan>"
    [(envelope, msg)] = mailbox.received
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == [TO]
    assert msg["Message-ID"] == "<0123456789abcdef@pingan>"
    assert msg["To"] == TO and msg["From"] == SENDER
    assert msg["Subject"] == "化工厂泄漏：请立即到指挥所报到"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Pingan-Idempotency-Key"] == "0123456789abcdef"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    # Text travels in canonical form (CRLF line breaks, RFC 2045 6.8); readers turn them back into newlines.
    assert msg.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT


def test_a_retry_carries_the_same_message_id(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = EmailChannel("127.0.0.1", port, SENDER, timeout_s=5)
    channel.send(make_notification())
    channel.send(make_notification())
    assert [m["Message-ID"] for _, m in mailbox.received] == ["<0123456789abcdef@pingan>"] * 2


@pytest.mark.parametrize(("field", "reply"), [("data_reply", "451 4.3.0 Try again later"),
                                              ("rcpt_reply", "450 4.2.1 Mailbox busy")])
def test_4xx_is_transient(smtp: tuple[Mailbox, int], field: str, reply: str) -> None:
    mailbox, port = smtp
    setattr(mailbox, field, reply)
    result = EmailChannel("127.0.0.1", port, SENDER, timeout_s=5).send(make_notification())
    assert result.outcome is SendOutcome.transient_failure
    assert result.extra["smtp_code"] == int(reply[:3]) and reply[4:] in result.detail
    assert mailbox.received == []


@pytest.mark.parametrize(("field", "reply"), [("rcpt_reply", "550 5.1.1 No such user here"),
                                              ("data_reply", "554 5.7.1 Message rejected")])
def test_5xx_is_permanent(smtp: tuple[Mailbox, int], field: str, reply: str) -> None:
    mailbox, port = smtp
    setattr(mailbox, field, reply)
    result = EmailChannel("127.0.0.1", port, SENDER, timeout_s=5).send(make_notification())
    assert result.outcome is SendOutcome.permanent_failure
    assert result.extra["smtp_code"] == int(reply[:3]) and reply[4:] in result.detail


def test_closed_port_is_transient() -> None:
    result = EmailChannel("127.0.0.1", free_port(), SENDER, timeout_s=2).send(make_notification())
    assert result.outcome is SendOutcome.transient_failure and "unreachable" in result.detail


def test_starttls_required_but_not_offered_is_permanent(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp  # this server has no TLS context, so it does not advertise STARTTLS
    result = EmailChannel("127.0.0.1", port, SENDER, starttls=True, timeout_s=5).send(make_notification())
    assert result.outcome is SendOutcome.permanent_failure and "STARTTLS" in result.detail
    assert mailbox.received == []


@pytest.mark.parametrize("address", ["not-an-address", "a@b\r\nBcc: x@y", "Duty <duty@example.org>", "a b@c"])
def test_bad_addresses_fail_permanently_without_connecting(address: str) -> None:
    result = EmailChannel("127.0.0.1", free_port(), SENDER).send(make_notification(to=address))
    assert result.outcome is SendOutcome.permanent_failure and "not an email address" in result.detail


def test_reconcile_says_send_again_at_least_once() -> None:
    channel = EmailChannel("127.0.0.1", 25, SENDER)
    assert channel.reconcile(make_notification()).outcome is ReconcileOutcome.not_sent


def test_a_4xx_is_sent_again_by_the_notifier_with_the_same_message_id(smtp: tuple[Mailbox, int],
                                                                     store: Store) -> None:
    """Issue 15: the retry asked reconcile, got "cannot tell" and never sent again until failed at 30."""
    mailbox, port = smtp
    n = make_notification()
    store.apply_response(n.incident_id, None, None, [n], [])
    channels = {"email": EmailChannel("127.0.0.1", port, SENDER, timeout_s=5)}
    mailbox.data_reply = "451 Try again later"
    notify_stage(store, channels, n)
    assert store.ledger_entry(n.idempotency_key).state is DeliveryState.intended  # type: ignore[union-attr]
    mailbox.data_reply = None
    notify_stage(store, channels, n)  # what the scheduler's retry runs
    entry = store.ledger_entry(n.idempotency_key)
    assert entry is not None and entry.state is DeliveryState.sent, entry
    [(_, got)] = mailbox.received
    assert got["Message-ID"] == message_id(n.idempotency_key)


def test_subject_is_the_first_line_cut_at_78_characters() -> None:
    assert subject_for("\n\n  Leak   at plant 3  \nmore") == "Leak at plant 3"
    long = subject_for("x" * 200)
    assert len(long) == 78 and long.endswith("…")
    assert subject_for("x" * 78) == "x" * 78
    assert subject_for(" \n ") == "Pingan notification"


def test_message_id_stays_valid_for_odd_keys() -> None:
    assert message_id("0123456789abcdef") == "<0123456789abcdef@pingan>"
    odd = message_id("key with <spaces>@x")
    assert odd.startswith("<") and odd.endswith("@pingan>") and " " not in odd and odd.count("@") == 1


def test_factory_reads_optional_smtp_attributes(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    assert email_channel_from_env(object()) is None
    assert email_channel_from_env(SimpleNamespace(smtp_host="127.0.0.1")) is None  # no sender
    defaults = email_channel_from_env(SimpleNamespace(smtp_host="mail.example.org", smtp_sender=SENDER))
    assert defaults is not None and (defaults.port, defaults.starttls) == (25, False)
    tls = email_channel_from_env(SimpleNamespace(smtp_host="mail.example.org", smtp_sender=SENDER, smtp_starttls=True))
    assert tls is not None and tls.port == 587
    channel = email_channel_from_env(SimpleNamespace(smtp_host="127.0.0.1", smtp_port=port, smtp_sender=SENDER))
    assert channel is not None
    assert channel.send(make_notification()).outcome is SendOutcome.accepted
    assert len(mailbox.received) == 1

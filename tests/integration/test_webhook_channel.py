"""Webhook channel against a real HTTP receiver on 127.0.0.1 that checks the signature with verify()."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pingan.handlers.channels.webhook import WebhookChannel, sign, verify
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome
from pingan.schemas.notification import Channel, DeliveryState, Notification, Recipient
from pingan.store.repository import Store
from pingan.streams.stages import notify_stage

SECRET = "whsec-test-0123456789"
TEXT = "化工厂泄漏：请立即到指挥所报到\nChemical leak at plant 3"


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once they run out
    delay_s: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers: the channel's pool is then visible

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            # What a real receiver does first: check the raw bytes before trusting or parsing them.
            valid = verify(SECRET, self.headers.get("X-Pingan-Timestamp", ""), body,
                           self.headers.get("X-Pingan-Signature", ""))
            with receiver.lock:
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "valid": valid, "client_port": self.client_address[1]})
                status = receiver.statuses.pop(0) if receiver.statuses else (200 if valid else 401)
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            reply = b'{"ok": true}' if status < 300 else b"nope"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(url=f"http://127.0.0.1:{httpd.server_address[1]}/hooks/pingan")
    httpd.RequestHandlerClass = _handler_for(state)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_notification(url: str, key: str = "0123456789abcdef") -> Notification:
    return Notification(
        idempotency_key=key, incident_id="inc-1", plan_id="chem-leak", plan_version=3, step="alert",
        recipient=Recipient(id="ops-bot", name="运维机器人", channel=Channel.webhook, address=url),
        channel=Channel.webhook, text=TEXT, created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_post_is_signed_and_delivered(receiver: Receiver) -> None:
    result = WebhookChannel(SECRET).send(make_notification(receiver.url))

    assert result.outcome is SendOutcome.delivered and result.extra["http_status"] == 200
    [got] = receiver.received
    assert got["valid"] is True
    assert got["path"] == "/hooks/pingan"
    headers = got["headers"]
    assert headers["Idempotency-Key"] == "0123456789abcdef"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Pingan-Signature"] == sign(SECRET, headers["X-Pingan-Timestamp"], got["body"])
    assert abs(int(headers["X-Pingan-Timestamp"]) - time.time()) < 60
    assert json.loads(got["body"].decode("utf-8")) == {
        "idempotency_key": "0123456789abcdef", "incident_id": "inc-1", "incident_status": "actual",
        "plan_id": "chem-leak", "plan_version": 3, "step": "alert",
        "recipient": {"id": "ops-bot", "name": "运维机器人"}, "text": TEXT,
        "created_at": "2026-01-02T03:04:05+00:00",
    }


def test_a_wrong_secret_is_refused_by_the_receiver_permanently(receiver: Receiver) -> None:
    result = WebhookChannel("another-secret").send(make_notification(receiver.url))
    assert receiver.received[0]["valid"] is False
    assert result.outcome is SendOutcome.permanent_failure and result.extra["http_status"] == 401


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_and_throttling_are_transient(receiver: Receiver, status: int) -> None:
    receiver.statuses = [status]
    channel = WebhookChannel(SECRET)
    n = make_notification(receiver.url)
    failed = channel.send(n)
    assert failed.outcome is SendOutcome.transient_failure and failed.extra["http_status"] == status
    assert channel.send(n).outcome is SendOutcome.delivered  # the retry goes through...
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.received]
    assert keys == [n.idempotency_key] * 2  # ...with the same key, so the receiver can dedupe


@pytest.mark.parametrize("status", [410, 400, 404, 301])
def test_other_client_errors_and_redirects_are_permanent(receiver: Receiver, status: int) -> None:
    receiver.statuses = [status]
    result = WebhookChannel(SECRET).send(make_notification(receiver.url))
    assert result.outcome is SendOutcome.permanent_failure and result.extra["http_status"] == status
    assert len(receiver.received) == 1  # a 301 is not followed


def test_closed_port_is_transient() -> None:
    result = WebhookChannel(SECRET, timeout_s=2).send(make_notification(closed_port_url()))
    assert result.outcome is SendOutcome.transient_failure and "unreachable" in result.detail


def test_slow_receiver_times_out_transiently(receiver: Receiver) -> None:
    receiver.delay_s = 0.5
    result = WebhookChannel(SECRET, timeout_s=0.1).send(make_notification(receiver.url))
    assert result.outcome is SendOutcome.transient_failure and "timed out" in result.detail


@pytest.mark.parametrize("address", ["ftp://example.org/x", "file:///etc/passwd", "ops-bot", "http:///nohost"])
def test_non_http_addresses_fail_permanently_without_a_request(address: str) -> None:
    result = WebhookChannel(SECRET).send(make_notification(address))
    assert result.outcome is SendOutcome.permanent_failure and "http(s)" in result.detail


def test_tampered_body_fails_verify(receiver: Receiver) -> None:
    WebhookChannel(SECRET).send(make_notification(receiver.url))
    got = receiver.received[0]
    ts, sig, body = got["headers"]["X-Pingan-Timestamp"], got["headers"]["X-Pingan-Signature"], got["body"]
    assert verify(SECRET, ts, body, sig)
    tampered = body.replace(b'"plan_version":3', b'"plan_version":4')
    assert tampered != body and not verify(SECRET, ts, tampered, sig)
    assert not verify(SECRET, str(int(ts) + 1), body, sig)  # the timestamp is signed too
    assert not verify("wrong", ts, body, sig)


def test_old_or_future_timestamps_fail_verify() -> None:
    body = b'{"text":"x"}'
    sig = sign(SECRET, 1_000_000, body)
    assert verify(SECRET, 1_000_000, body, sig, now=1_000_299)
    assert not verify(SECRET, 1_000_000, body, sig, now=1_000_301)  # a replay past the 5 minute tolerance
    assert not verify(SECRET, 1_000_000, body, sig, now=999_000)  # from the future
    assert verify(SECRET, 1_000_000, body, sig, tolerance_s=3600, now=1_003_000)
    assert not verify(SECRET, "not-a-number", body, sig)


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, '{"a":1}') == "sha256=" + expected
    assert sign(SECRET, "1700000000", b'{"a":1}') == "sha256=" + expected


def test_reconcile_says_send_again_at_least_once() -> None:
    n = make_notification("https://example.org/hook")
    assert WebhookChannel(SECRET).reconcile(n).outcome is ReconcileOutcome.not_sent


@pytest.mark.parametrize("first", [503, "timeout"])
def test_a_5xx_or_timeout_is_sent_again_by_the_notifier_with_the_same_key(receiver: Receiver, store: Store,
                                                                          first: object) -> None:
    """Issue 15: the second attempt asked reconcile, got "cannot tell" and never sent again, 29 times over."""
    n = make_notification(receiver.url, key="feedc0de" * 4)
    store.apply_response(n.incident_id, None, None, [n], [])
    channel = WebhookChannel(SECRET, timeout_s=0.5)
    if first == "timeout":
        receiver.delay_s = 1.0
    else:
        receiver.statuses = [503]
    notify_stage(store, {"webhook": channel}, n)
    assert store.ledger_entry(n.idempotency_key).state is DeliveryState.intended  # type: ignore[union-attr]
    receiver.delay_s = 0.0
    notify_stage(store, {"webhook": channel}, n)  # what the scheduler's retry runs
    entry = store.ledger_entry(n.idempotency_key)
    assert entry is not None and entry.state is DeliveryState.delivered, entry
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.received]
    assert keys == [n.idempotency_key] * 2 and all(r["valid"] for r in receiver.received)
    notify_stage(store, {"webhook": channel}, n)
    assert len(receiver.received) == 2  # settled: never again


def test_one_pooled_connection_carries_successive_sends(receiver: Receiver) -> None:
    channel = WebhookChannel(SECRET)
    for i in range(3):
        assert channel.send(make_notification(receiver.url, key=f"{i:032x}")).outcome is SendOutcome.delivered
    ports = {r["client_port"] for r in receiver.received}
    assert len(ports) == 1, ports  # keep-alive: one connection, not one per send
    channel.close()


def test_an_empty_secret_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        WebhookChannel("")

"""The concurrent notifier (streams/notifier.py) against the local Twilio-compatible server made slow and throttling,
with the real twilio client and the real store (SQLite and PostgreSQL).

Issue 15: sends ran one after the other, so with a real provider (200-500 ms each) a grade I activation took
minutes. Here 1,000 intents to 200 recipients (5 each) go through a server that answers after 100 ms and
throttles (HTTP 429, error 20429, Retry-After) beyond 25 requests in flight: every text goes out once, each
recipient's in order, and the throttled answers show in pingan_notification_throttled.
"""

import asyncio
import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY

from pingan.handlers.channels.console import ConsoleChannel
from pingan.handlers.channels.twilio_sms import TwilioSmsChannel
from pingan.handlers.channels.twilio_voice import TwilioVoiceChannel
from pingan.handlers.channels.webhook import WebhookChannel
from pingan.schemas.notification import Channel, DeliveryState, Notification, Recipient
from pingan.settings import Settings
from pingan.store.ledger import HELD_BACK_UNTRIED
from pingan.store.repository import Store
from pingan.streams.notifier import Dispatcher, TokenBucket, order_key
from tests.fixtures.twilio_server import FakeTwilio

RECIPIENTS, EACH = 200, 5
T0 = datetime.now(UTC) - timedelta(seconds=5)


def number(r: int) -> str:
    return f"+1202556{r:04d}"


def orders(incident: str, recipients: int = RECIPIENTS, each: int = EACH) -> list[Notification]:
    """Interleaved as a plan's fan-out arrives: every recipient's first message, then every second one..."""
    return [Notification(
        idempotency_key=f"{incident}-{r:04d}-{k}".ljust(16, "0"), incident_id=incident, plan_id="p", plan_version=1,
        step=f"s{k}", recipient=Recipient(id=f"p{r}", name=f"人{r}", channel=Channel.twilio_sms, address=number(r)),
        channel=Channel.twilio_sms, text=f"{incident} 第{k}条 to {r}", created_at=T0 + timedelta(milliseconds=k))
        for k in range(each) for r in range(recipients)]


def throttled_total() -> float:
    return REGISTRY.get_sample_value("pingan_notification_throttled_total", {"channel": "twilio_sms"}) or 0.0


def twilio(server: FakeTwilio, pool: int) -> TwilioSmsChannel:
    return TwilioSmsChannel(server.account_sid, server.auth_token, server.from_number, api_base_url=server.base_url,
                            pool_size=pool)


def test_1000_intents_through_a_slow_throttling_twilio_all_once_in_order(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = FakeTwilio(delay_s=0.1, max_concurrent=25, retry_after_s=0.2).start()
    try:
        notes = orders("INC-BULK")
        store.apply_response("INC-BULK", "p", 1, notes, [])
        settings = Settings(data_dir=tmp_path, notify_concurrency={"twilio_sms": 40})
        channels = {"twilio_sms": twilio(server, 40), "console": ConsoleChannel(tmp_path / "console.log")}
        before = throttled_total()
        dispatcher = Dispatcher(store, channels, settings)
        # The agent hands over what it took from its topic: here two batches, and the second repeats 100 orders
        # of the first (a re-published intent), which must not be sent again.
        out = asyncio.run(_run(dispatcher, [notes[:600], notes[500:]]))
        dispatcher.close()

        messages = server.messages
        bodies = [m["body"] for m in messages]
        assert len(bodies) == len(notes) and set(bodies) == {n.text for n in notes}  # every one, none twice
        by_to: dict[str, list[str]] = defaultdict(list)
        for m in messages:
            by_to[m["to"]].append(m["body"])
        for r in range(RECIPIENTS):
            assert by_to[number(r)] == [f"INC-BULK 第{k}条 to {r}" for k in range(EACH)], r  # in order
        states = {store.ledger_entry(n.idempotency_key).state for n in notes}  # type: ignore[union-attr]
        assert states == {DeliveryState.sent}
        assert len([a for a in out if a.kind.value == "notified"]) == len(notes)
        assert server.throttled > 0, "the server never throttled: the test did not exercise back-pressure"
        assert throttled_total() - before == server.throttled
        assert dispatcher.throttled == server.throttled
        print(f"\n{len(notes)} texts, {server.throttled} throttled answers")
    finally:
        server.stop()


async def _run(dispatcher: Dispatcher, batches: list[list[Notification]]) -> list:  # type: ignore[type-arg]
    actions = []
    for batch in batches:
        actions += (await dispatcher.run(batch)).actions
    return actions


def test_a_transient_failure_keeps_the_recipients_later_messages_back(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = FakeTwilio().start()
    try:
        notes = orders("INC-ORDER", recipients=1, each=3)
        store.apply_response("INC-ORDER", "p", 1, notes, [])
        server.fail_next(1, status=503)
        dispatcher = Dispatcher(store, {"twilio_sms": twilio(server, 4)}, Settings(data_dir=tmp_path))
        asyncio.run(dispatcher.run(notes))
        assert server.messages == []
        entries = [store.ledger_entry(n.idempotency_key) for n in notes]
        assert [e.state for e in entries] == [DeliveryState.intended] * 3  # type: ignore[union-attr]
        assert {e.detail for e in entries[1:]} == {HELD_BACK_UNTRIED}  # type: ignore[union-attr]
        asyncio.run(dispatcher.run(notes[::-1]))  # the scheduler's retries, in whatever order they come back
        assert [m["body"] for m in server.messages] == [n.text for n in notes]
        dispatcher.close()
    finally:
        server.stop()


def test_a_held_back_call_is_placed_not_taken_for_the_earlier_one(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Voice's reconcile counts any call to the person since the intent: a held-back call must not be "found"."""
    server = FakeTwilio().start()
    try:
        notes = [n.model_copy(update={"channel": Channel.twilio_voice, "recipient": n.recipient.model_copy(
            update={"channel": Channel.twilio_voice})}) for n in orders("INC-CALL", recipients=1, each=2)]
        store.apply_response("INC-CALL", "p", 1, notes, [])
        voice = TwilioVoiceChannel(server.account_sid, server.auth_token, server.from_number,
                                   public_url="https://pingan.example", api_base_url=server.base_url)
        dispatcher = Dispatcher(store, {"twilio_voice": voice}, Settings(data_dir=tmp_path))
        server.fail_next(1, status=503)
        asyncio.run(dispatcher.run(notes))
        asyncio.run(dispatcher.run(notes))
        assert len(server.calls) == 2  # the held-back call was placed, after the first
        assert {store.ledger_entry(n.idempotency_key).state for n in notes} == {DeliveryState.sent}  # type: ignore[union-attr]
        dispatcher.close()
    finally:
        server.stop()


def test_token_bucket_paces_a_sender() -> None:
    async def go() -> float:
        bucket = TokenBucket(rate=50.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(11):
            await bucket.take()
        return loop.time() - start

    assert asyncio.run(go()) >= 0.19  # one at once, then ten more at 50/s


class SlowReceiver:
    """A webhook receiver that holds each request `hold_s` and records the order and the most requests in flight."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s, self.in_flight, self.most_in_flight = hold_s, 0, 0
        self.texts: list[str] = []
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with rx.lock:
                    rx.in_flight += 1
                    rx.most_in_flight = max(rx.most_in_flight, rx.in_flight)
                time.sleep(rx.hold_s)
                with rx.lock:
                    rx.in_flight -= 1
                    rx.texts.append(body["text"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhook_orders(incidents: int, each: int, url: str) -> list[Notification]:
    return [Notification(
        idempotency_key=f"WH-{i:03d}-{k}".ljust(16, "0"), incident_id=f"INC-WH-{i:03d}", plan_id="p", plan_version=1,
        step=f"s{k}", recipient=Recipient(id="newsroom", name="系统", channel=Channel.webhook, address=url),
        channel=Channel.webhook, text=f"INC-WH-{i:03d} #{k}", created_at=T0 + timedelta(milliseconds=k))
        for k in range(each) for i in range(incidents)]


def test_webhooks_to_one_receiver_keep_order_per_incident_and_go_concurrently(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A system's receiver: one incident's webhooks stay in order, different incidents' go at once (up to the
    channel's limit), where one queue per receiver capped it at one round trip at a time (issue 15)."""
    rx = SlowReceiver(hold_s=0.05)
    try:
        notes = webhook_orders(incidents=12, each=3, url=rx.url)
        for i in range(12):
            store.apply_response(f"INC-WH-{i:03d}", "p", 1, [n for n in notes if n.incident_id.endswith(f"{i:03d}")],
                                 [])
        settings = Settings(data_dir=tmp_path, notify_concurrency={"webhook": 6})
        dispatcher = Dispatcher(store, {"webhook": WebhookChannel("whsec-order-0123456789", pool_size=6)}, settings)
        asyncio.run(dispatcher.run(notes))
        dispatcher.close()
        assert sorted(rx.texts) == sorted(n.text for n in notes)  # each once
        for i in range(12):
            mine = [t for t in rx.texts if t.startswith(f"INC-WH-{i:03d} ")]
            assert mine == [f"INC-WH-{i:03d} #{k}" for k in range(3)]  # in order within the incident
        assert 1 < rx.most_in_flight <= 6  # concurrent across incidents, within the channel's limit
        assert {store.ledger_entry(n.idempotency_key).state for n in notes} == {DeliveryState.delivered}  # type: ignore[union-attr]
    finally:
        rx.stop()


def test_order_keys() -> None:
    """People's channels keep one order per address; a webhook one per address and incident (its order_scope)."""
    sms = orders("INC-A", recipients=1, each=1)[0]
    other = sms.model_copy(update={"incident_id": "INC-B"})
    twilio_sms = TwilioSmsChannel("AC" + "0" * 32, "token", "+12025550100", api_base_url="http://127.0.0.1:9")
    email = "email: no channel configured"  # no channel chosen: kept per recipient too
    webhook = WebhookChannel("whsec-order-0123456789")
    assert order_key(twilio_sms, sms) == order_key(twilio_sms, other)
    assert order_key(email, sms) == order_key(email, other)
    assert order_key(webhook, sms) != order_key(webhook, other)
    webhook.close()

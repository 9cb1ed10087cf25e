"""The dead-man's switch: heartbeats through the real pipeline (tansu, a worker process, the API process), the
alert when the worker stops, the recovery when it is back; and the watchdog on SQLite and PostgreSQL."""

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from pingan import metrics
from pingan.handlers.channels.console import ConsoleChannel, read_sink
from pingan.handlers.channels.webhook import verify
from pingan.handlers.incidents.heartbeat import WATCHDOG_ID, MonitorState
from pingan.schemas.common import utcnow
from pingan.schemas.events import RawEvent
from pingan.schemas.notification import Channel, Recipient
from pingan.settings import Settings
from pingan.store.heartbeat import HeartbeatStore
from pingan.store.repository import Store
from pingan.store.tables import actions, heartbeats, incidents, notifications, outbox
from pingan.streams.heartbeat import arrive_beat, respond_beat, triage_beat
from pingan.watchdog import Watchdog
from tests.fixtures.stack import READER, Proc, free_port, person_token, pingan_argv, pingan_env, wait_for
from tests.fixtures.twilio_server import FakeTwilio

INTERVAL_S = 2.0
THRESHOLD_S = 2 * INTERVAL_S
SECRET = "heartbeat-test-secret"
DUTY_PHONE = "+12025550142"


class WebhookReceiver:
    """A local HTTP endpoint that records every POST with the time it came."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((time.monotonic(), dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/pingan-heartbeat"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def posts(self, step: str) -> list[tuple[float, dict[str, Any]]]:
        out = []
        for at, headers, body in list(self.received):
            # The same signature every Pingan webhook carries: a receiver can trust it.
            assert verify(SECRET, headers["X-Pingan-Timestamp"], body, headers["X-Pingan-Signature"])
            doc = json.loads(body)
            if doc["step"] == step:
                out.append((at, doc))
        return out

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.stop()


METRICS_TOKEN = "heartbeat-test-scraper"


def scrape(url: str) -> dict[str, float]:
    try:
        body = httpx.get(url + "/metrics", timeout=5, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    except httpx.HTTPError:
        return {}
    return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples
            if s.name.startswith("pingan_heartbeat")}


def arrived_partitions(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.scalars(select(heartbeats.c.partition_no).where(heartbeats.c.arrived_at.is_not(None))))


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def test_stopping_the_worker_fires_the_alert_within_two_intervals(
        tmp_path: Path, broker_bootstrap: str, worker_factory, receiver: WebhookReceiver,  # type: ignore[no-untyped-def]
        twilio_server: FakeTwilio) -> None:
    port = free_port()
    env = pingan_env(
        tmp_path / "data", KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_HTTP_PORT=str(port),
        PINGAN_HEARTBEAT_INTERVAL_S=str(INTERVAL_S), PINGAN_HEARTBEAT_GRACE_S="180",
        PINGAN_HEARTBEAT_ALERT_WEBHOOK_URL=receiver.url, PINGAN_HEARTBEAT_ALERT_WEBHOOK_SECRET=SECRET,
        PINGAN_HEARTBEAT_ALERT_SMS=DUTY_PHONE, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
        PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token, PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
        PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_METRICS_TOKEN=METRICS_TOKEN,
    )
    url = f"http://127.0.0.1:{port}"
    store = Store(Settings(data_dir=tmp_path / "data").resolved_database_url)
    # The API (and its watchdog) in one process, the worker in another: nothing restarts the worker but us.
    api = Proc(pingan_argv("api"), env, tmp_path / "api.log")
    try:
        worker = worker_factory(env)
        try:
            wait_for(lambda: arrived_partitions(store) == {0, 1, 2}, 120, 0.2, "a heartbeat through every partition")
        except AssertionError:
            raise AssertionError(worker.log_tail() + "\n--- api ---\n" + api.log_tail()) from None
        healthy = wait_for(lambda: (m := scrape(url)).get("pingan_heartbeat_ok") == 1.0 and m, 30, 0.2, "ok=1")
        assert healthy["pingan_heartbeat_age_seconds"] <= THRESHOLD_S
        time.sleep(3 * INTERVAL_S)  # several more rounds go through, and none of them alerts
        assert receiver.posts("alert") == [] and scrape(url)["pingan_heartbeat_ok"] == 1.0

        worker.kill_tree()
        killed_at = time.monotonic()
        alerts = wait_for(lambda: receiver.posts("alert"), 60, 0.05, "the heartbeat alert")
        elapsed = alerts[0][0] - killed_at
        print(f"alert {elapsed:.2f} s after SIGKILL (interval {INTERVAL_S} s, threshold {THRESHOLD_S} s)")
        assert elapsed <= THRESHOLD_S + 3.0, f"alert came {elapsed:.1f} s after the worker died"
        doc = alerts[0][1]
        assert doc["incident_id"] == WATCHDOG_ID and doc["incident_status"] == "actual"
        assert "流水线心跳中断" in doc["text"] and "Pipeline heartbeat missing" in doc["text"]
        assert "outbox relay" in doc["text"]  # nothing consumes: the beats wait in the outbox
        down = scrape(url)
        assert down["pingan_heartbeat_ok"] == 0.0 and down["pingan_heartbeat_age_seconds"] > THRESHOLD_S
        # Also on the console and by SMS, neither through the broker.
        wait_for(lambda: [r for r in read_sink(tmp_path / "data" / "console.log") if r["incident_id"] == WATCHDOG_ID],
                 10, 0.1, "the alert on the console")
        sms = wait_for(lambda: [m for m in twilio_server.messages if m["to"] == DUTY_PHONE], 10, 0.1, "the SMS")
        assert "流水线心跳中断" in sms[0]["body"]
        time.sleep(3 * INTERVAL_S)
        assert len(receiver.posts("alert")) == 1  # one alert per outage, not one per tick

        worker = worker_factory(env)
        restored = wait_for(lambda: receiver.posts("recover"), 120, 0.1, "the recovery notice")
        assert "流水线心跳恢复" in restored[0][1]["text"] and "restored" in restored[0][1]["text"]
        assert scrape(url)["pingan_heartbeat_ok"] == 1.0
        assert len(receiver.posts("alert")) == 1 and len(receiver.posts("recover")) == 1
        assert len(twilio_server.messages) == 2  # the alert and the recovery, nothing else

        # Beats are no incidents: nothing in incidents, the log or the ledger; nothing left in the outbox.
        assert count(store, incidents) == count(store, actions) == count(store, notifications) == 0
        wait_for(lambda: count(store, outbox) == 0, 30, 0.2, "every beat triaged and its outbox row gone")
        viewer = {"Authorization": f"Bearer {person_token(env, READER, 'viewer')}"}
        assert httpx.get(url + "/v1/incidents", timeout=10, headers=viewer).json()["total"] == 0
    finally:
        api.stop()
        store.close()


# ---- the watchdog on its own, on a real store --------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def carry_beats(store: Store) -> int:
    """What the worker's agents do with each beat, run here in order: the stage functions the agents call."""
    rows = [r for r in store.unpublished() if r.event_id.startswith("hb-")]
    for row in rows:
        out = triage_beat(store, RawEvent.model_validate_json(row.payload))
        arrive_beat(store, respond_beat(store, out.incident_events[0]).notifications[0])
    return len(rows)


def test_two_watchdogs_share_the_beats_and_alert_once(tmp_path: Path, db_url: str) -> None:
    settings = Settings(data_dir=tmp_path, heartbeat_interval_s=30, heartbeat_grace_s=0)
    clock = Clock()
    sink = tmp_path / "duty.log"
    duty = Recipient(id="duty-room", name="duty room", channel=Channel.console, address="duty-room")
    stores = [Store(db_url), Store(db_url)]
    dogs = [Watchdog(settings, s, [(ConsoleChannel(sink), duty)], clock=clock, background=False) for s in stores]
    try:
        for dog in dogs:
            dog.tick()
        assert carry_beats(stores[0]) == 3  # one round, one beat per partition, though two watchdogs ticked
        for _ in range(3):
            clock.advance(30)
            for dog in dogs:
                assert dog.tick().fresh
            assert carry_beats(stores[0]) == 3
        assert HeartbeatStore(stores[0]).state(clock.now)[0] is MonitorState.ok

        for _ in range(4):  # the worker is gone: beats pile up in the outbox, nothing carries them
            clock.advance(30)
            for dog in dogs:
                dog.tick()
        assert [r["text"].split("：")[0] for r in read_sink(sink)] == ["【平安自检】流水线心跳中断"]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics.HeartbeatCollector(stores[1], settings.heartbeat_threshold_s, 3, clock))
        assert registry.get_sample_value("pingan_heartbeat_ok") == 0
        lag = CollectorRegistry(auto_describe=False)
        lag.register(metrics.StoreCollector(stores[1], ttl_s=0))
        assert lag.get_sample_value("pingan_consumer_lag", {"topic": "incidents.raw"}) == 0  # beats are not work

        assert carry_beats(stores[1]) == 12  # the worker is back and works off the queue
        clock.advance(1)
        for dog in dogs:
            dog.tick()
        texts = [r["text"] for r in read_sink(sink)]
        assert len(texts) == 2 and "流水线心跳恢复" in texts[1]
        assert count(stores[0], incidents) == count(stores[0], actions) == 0
    finally:
        for s in stores:
            s.close()


def test_old_beats_are_pruned_but_each_partition_keeps_its_newest_arrival(tmp_path: Path, db_url: str) -> None:
    store = Store(db_url)
    settings = Settings(data_dir=tmp_path, heartbeat_interval_s=60, heartbeat_grace_s=0)
    clock = Clock()
    dog = Watchdog(settings, store, [], clock=clock, background=False)
    try:
        dog.tick()
        carry_beats(store)
        for _ in range(30):  # half an hour with nothing carried
            clock.advance(60)
            dog.tick()
        assert count(store, outbox) == 3 * 30
        hb = HeartbeatStore(store)
        hb.prune(clock.now + timedelta(days=2), timedelta(days=1), timedelta(minutes=10))
        assert count(store, outbox) == 0  # unpublished beats older than ten intervals: dropped
        assert count(store, heartbeats) == 3  # the newest arrival of each partition stays, so the age stays true
        assert all(t.last_completed_sent_at is not None for t in hb.tracks(3))
    finally:
        store.close()

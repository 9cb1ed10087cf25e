"""A starting worker on tansu sends its backlog once (issue 14, finding 8): its start-up recovery publishes nothing,
and the outbox relay waits for the first assignment's re-publish (streams/worker.py, streams/takeover.py). Before,
both sent it ahead of that re-publish, so the rows accepted during a broker outage reached the new broker 3 times."""

import threading
import time
from pathlib import Path

from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.producer import make_producer
from pingan.streams.recovery import resume
from pingan.streams.relay import OutboxRelay
from pingan.streams.tail import tail
from pingan.streams.topics import RAW, ensure_topics
from tests.fixtures.stack import wait_for


def report(n: int) -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title=f"仓库起火 {n}",
                          dedup_key=f"gate-{n}")


def on_topic(bootstrap: str, topic: str) -> list[str]:
    return [r.key.decode() for r in tail(bootstrap, topic, follow=False, timeout_s=5) if r.key]


def test_the_relay_waits_for_the_first_re_publish_and_a_silent_resume_sends_nothing(
        tmp_path: Path, broker_bootstrap: str, sqlite_url: str, topic_prefix: str) -> None:
    settings = Settings(data_dir=tmp_path, topic_prefix=topic_prefix, kafka_bootstrap_servers=broker_bootstrap)
    ensure_topics(broker_bootstrap, settings)
    raw_topic = settings.topic(RAW)
    store = Store(sqlite_url)
    producer = make_producer(broker_bootstrap)
    relay: OutboxRelay | None = None
    try:
        store.accept_many([report(n) for n in range(3)], raw_topic)
        silent = resume(store, {}, producer, settings, publish=False)
        assert (silent.raw_events, silent.incidents, silent.notifications) == (0, 0, 0)
        assert len(store.unpublished()) == 3  # nothing sent, nothing marked

        resumed_once = threading.Event()
        relay = OutboxRelay(store, broker_bootstrap, poll_interval_s=0.05, after=resumed_once)
        relay.start()
        time.sleep(1.5)  # 30 polls' worth: a relay that does not wait would have sent them
        assert len(store.unpublished()) == 3 and relay.published == 0

        resumed_once.set()
        wait_for(lambda: not store.unpublished(), 15, 0.05, "the relay to publish once let go")
        assert sorted(on_topic(broker_bootstrap, raw_topic)) == ["gate-0", "gate-1", "gate-2"]  # once each
    finally:
        if relay is not None:
            relay.stop()
        producer.close(timeout=2)
        store.close()

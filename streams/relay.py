"""The outbox relay: re-publishes accepted intake events until the broker has acknowledged them."""

import logging
import threading

from kafka import KafkaProducer

from pingan.store.repository import Store
from pingan.streams.producer import make_producer, publish_all

log = logging.getLogger(__name__)


class OutboxRelay(threading.Thread):
    def __init__(self, store: Store, bootstrap: str, poll_interval_s: float = 0.05, batch: int = 500) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.store = store
        self.bootstrap = bootstrap
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self._wake.set()
        self.join(timeout_s)

    def run(self) -> None:
        producer: KafkaProducer | None = None
        backoff = self.poll_interval_s
        while not self._stop_event.is_set():
            try:
                producer = producer or make_producer(self.bootstrap)
                if self.relay_once(producer) >= self.batch:
                    continue  # more is waiting: do not sleep
                backoff = self.poll_interval_s
            except Exception as exc:  # the broker is down or restarting: keep the rows, try again
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                if producer is not None:
                    producer.close(timeout=1)
                    producer = None
                backoff = min(backoff * 2 + 0.1, 5.0)
            self._wake.wait(backoff)
            self._wake.clear()
        if producer is not None:
            producer.close(timeout=2)

    def relay_once(self, producer: KafkaProducer) -> int:
        rows = self.store.unpublished(self.batch)
        if not rows:
            return 0
        publish_all(producer, ((r.topic, r.key, r.payload) for r in rows))
        self.store.mark_published([r.event_id for r in rows])
        self.published += len(rows)
        return len(rows)

"""The outbox relay: re-publishes accepted intake events until the broker has acknowledged them.

Every worker runs one, and one at a time relays (a lease in the store, store/lease.py): two relays would publish
every event twice, and each copy costs a triage replay and its downstream re-emits (measured with two workers:
2.5-3.3 records per incident on each topic). A relay whose worker dies loses the lease after LEASE_S.

Given `after`, the relay publishes nothing until it is set: a starting worker's first assignment re-publishes the
unfinished work, unpublished rows included (streams/takeover.py), and a relay running before it sent the rows
accepted during a broker outage a second time (issue 14, finding 8).
"""

import logging
import threading
import time
import uuid

from kafka import KafkaProducer

from pingan.store.lease import Lease
from pingan.store.repository import Store
from pingan.streams.producer import make_producer, publish_all

log = logging.getLogger(__name__)

LEASE_S = 5.0  # a dead relay's lease runs out this long after its last renewal; the next relay takes over
AFTER_MAX_S = 60.0  # waiting for `after` no longer than this: a worker given no partitions still relays


class OutboxRelay(threading.Thread):
    def __init__(self, store: Store, bootstrap: str, poll_interval_s: float = 0.05, batch: int = 500,
                 after: threading.Event | None = None) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.after = after
        self.store = store
        self.bootstrap = bootstrap
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self.published = 0
        self.lease = Lease(store, "outbox-relay", f"relay-{uuid.uuid4().hex[:12]}", LEASE_S)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self._wake.set()
        self.join(timeout_s)

    def run(self) -> None:
        producer: KafkaProducer | None = None
        backoff = self.poll_interval_s
        if self.after is not None:
            deadline = time.monotonic() + AFTER_MAX_S
            while not self.after.wait(0.1) and not self._stop_event.is_set():
                if time.monotonic() > deadline:
                    log.warning("outbox relay: no re-publish after an assignment within %.0f s; relaying anyway",
                                AFTER_MAX_S)
                    break
        while not self._stop_event.is_set():
            try:
                if not self.lease.hold():
                    self._wake.wait(LEASE_S / 4)  # another worker relays; ask again well before its lease ends
                    self._wake.clear()
                    continue
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
        try:
            self.lease.release()  # a clean stop: the next relay need not wait for the lease to run out
        except Exception as exc:  # noqa: BLE001 - the store is gone; the lease runs out by itself
            log.warning("outbox relay: could not release its lease: %s", exc)

    def relay_once(self, producer: KafkaProducer) -> int:
        rows = self.store.unpublished(self.batch)
        if not rows:
            return 0
        publish_all(producer, ((r.topic, r.key, r.payload) for r in rows))
        self.store.mark_published([r.event_id for r in rows])
        self.published += len(rows)
        return len(rows)

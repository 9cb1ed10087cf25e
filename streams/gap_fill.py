"""Re-reads the records a consumer skipped because tansu showed a later record before an earlier one.

Measured (docs/architecture.md, "Several workers"): while two producers append to one partition of tansu 0.6.0
(memory://), a consumer fetching at the same time is sometimes handed offset n+1 before n is readable; it moves
on, and n is never delivered to it, although a later read from the start finds it. faust notices the jump in
offsets and records it as a "gap" (compacted topics and transaction markers make those on a real Kafka), so the
record is silently lost to the agent. One worker already has two producers on `notifications` (the faust agents
and the scheduler's kafka-python producer); two workers put two on every partition.

`GapFiller.fetch` reads the skipped offsets again with a plain kafka-python consumer (no group, nothing committed)
so the faust consumer can hand them to the agents before the record that revealed the gap: order and offset
commits stay as if nothing had happened. A range the broker really does not hold (a compacted topic on a real
cluster) comes back short, and faust's own gap handling takes over for what is left.
"""

import contextlib
import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0  # how long a skipped record may take to become readable before we call it a real gap


class GapFiller:
    def __init__(self, bootstrap: str, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()  # one consumer, one seek at a time
        self.filled = 0

    def fetch(self, topic: str, partition: int, first: int, end: int) -> list[Any]:
        """The records with offsets first..end-1, in order; fewer if the broker does not hold them all."""
        with self._lock:
            try:
                records = self._fetch(TopicPartition(topic, partition), first, end)
            except Exception:
                log.exception("re-reading offsets %d..%d of %s[%d] failed", first, end - 1, topic, partition)
                self.close()
                return []
        self.filled += len(records)
        return records

    def _fetch(self, tp: TopicPartition, first: int, end: int) -> list[Any]:
        consumer = self._consumer = self._consumer or KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","), group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=20, client_id="pingan-gap-fill",
        )
        consumer.assign([tp])
        found: dict[int, Any] = {}
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            missing = [o for o in range(first, end) if o not in found]
            if not missing:
                break
            consumer.seek(tp, missing[0])
            for record in consumer.poll(timeout_ms=200).get(tp, []):
                if first <= record.offset < end:
                    found[record.offset] = record
                elif record.offset > missing[0]:
                    break  # the broker went past it: this race once more, or a real gap; the deadline decides
        return [found[o] for o in sorted(found)]

    def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):  # closing a broken client must not raise on the way out
                self._consumer.close(autocommit=False)
            self._consumer = None

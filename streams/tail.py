"""Read a topic from outside the stream processors (backs `pingan tail TOPIC`).

tansu answers ListOffsets "latest" wrongly (start of the last batch + 1), so end offsets, seek_to_end and
auto_offset_reset="latest" are never used here. Reading always starts at the earliest offset; "the end" is
the high-water mark carried by fetch responses, which tansu gets right.
"""

import time
from collections.abc import Iterator
from typing import NamedTuple

from kafka import KafkaConsumer, TopicPartition

# A fetch on tansu does not return early when data arrives, so this is also the latency of a follow.
FETCH_WAIT_MS = 50
POLL_MS = 200
CONNECT_TIMEOUT_MS = 10_000


class TailRecord(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class UnknownTopic(LookupError):
    pass


def tail(
    bootstrap: str,
    topic: str,
    from_beginning: bool = True,
    follow: bool = True,
    max_messages: int | None = None,
    timeout_s: float | None = None,
) -> Iterator[TailRecord]:
    """Yield (partition, offset, key, value) from every partition of `topic`, in arrival order per partition.

    from_beginning=False skips what the topic held when tailing started. follow=False stops once every
    partition is caught up to its high-water mark. timeout_s stops the iteration once that long passed
    without a new record (None: wait forever). Raises UnknownTopic if the topic does not exist; tail never
    creates a topic (tansu would auto-create it with 4 partitions).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id="pingan-tail", group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_WAIT_MS, allow_auto_create_topics=False,
        bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise UnknownTopic(f"topic {topic!r} does not exist on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        if not from_beginning and not _skip_to_highwater(consumer, tps, _deadline(timeout_s)):
            return
        yield from _read(consumer, tps, follow, max_messages, timeout_s)
    finally:
        consumer.close()


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def _remaining_ms(deadline: float | None) -> int:
    if deadline is None:
        return POLL_MS
    return max(0, min(POLL_MS, int((deadline - time.monotonic()) * 1000)))


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _skip_to_highwater(consumer: KafkaConsumer, tps: list[TopicPartition], deadline: float | None) -> bool:
    # The high-water mark is only known after a fetch, so fetch (and discard) until every partition has one.
    pending = set(tps)
    while pending:
        if _expired(deadline):
            return False
        consumer.poll(timeout_ms=_remaining_ms(deadline) or 1)
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            if highwater is not None:
                consumer.seek(tp, highwater)
                pending.discard(tp)
    return True


def _caught_up(consumer: KafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def _read(
    consumer: KafkaConsumer,
    tps: list[TopicPartition],
    follow: bool,
    max_messages: int | None,
    idle_timeout_s: float | None,
) -> Iterator[TailRecord]:
    count = 0
    deadline = _deadline(idle_timeout_s)
    while max_messages is None or count < max_messages:
        if _expired(deadline):
            return
        batch = consumer.poll(timeout_ms=_remaining_ms(deadline) or 1)
        for tp in sorted(batch, key=lambda t: t.partition):
            for record in batch[tp]:
                yield TailRecord(record.partition, record.offset, record.key, record.value)
                count += 1
                deadline = _deadline(idle_timeout_s)
                if max_messages is not None and count >= max_messages:
                    return
        if not follow and _caught_up(consumer, tps):
            return

"""kafka-python, for the synchronous work: the outbox relay and recovery re-publishing."""

import logging
from collections.abc import Iterable

from kafka import KafkaProducer

from pingan.streams.broker_profile import broker_kind

log = logging.getLogger(__name__)


def make_producer(bootstrap: str, idempotent: bool | None = None) -> KafkaProducer:
    """acks=all always; idempotence (no duplicate from a retried send) on Apache Kafka only, unless told.

    tansu cannot recover an idempotent producer after a broker restart (UnknownProducerId, then UnknownError
    forever). On Kafka it costs nothing measurable, and a send retried across a leader change (tests/kafka) lands
    once; the consumers are idempotent through the store either way, so it saves work, not correctness."""
    if idempotent is None:
        idempotent = broker_kind(bootstrap) == "kafka"
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=2,
        retries=5,
        max_block_ms=10_000,
        request_timeout_ms=10_000,
        key_serializer=lambda k: k.encode() if isinstance(k, str) else k,
    )


def publish_all(producer: KafkaProducer, messages: Iterable[tuple[str, str, bytes]], timeout_s: float = 15.0) -> int:
    """Send (topic, key, value) messages and wait for every acknowledgement; raises if any fails."""
    futures = [producer.send(topic, key=key, value=value) for topic, key, value in messages]
    producer.flush(timeout=timeout_s)
    for future in futures:
        future.get(timeout=timeout_s)
    return len(futures)

"""kafka-python, for the synchronous work: the outbox relay and recovery re-publishing."""

import logging
from collections.abc import Iterable

from kafka import KafkaProducer

log = logging.getLogger(__name__)


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        # tansu cannot recover an idempotent producer after a broker restart (UnknownProducerId, then
        # UnknownError forever); the consumers are idempotent through the store, so nothing needs it.
        enable_idempotence=False,
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

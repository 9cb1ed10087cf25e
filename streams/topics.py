"""The one place for topic names, partition counts, retention and keys, and their explicit creation.

Topics are always created explicitly: a broker that auto-creates one (tansu gives it 4 partitions) would
route keys differently, and tansu cannot add partitions later (create_partitions is unsupported).
"""

import logging
import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.errors import BrokerNotAvailableError, KafkaError

from pingan.settings import Settings

log = logging.getLogger(__name__)

RAW = "incidents.raw"
INCIDENTS = "incidents"
NOTIFICATIONS = "notifications"
# No `actions` topic since issue 15: the command-chain log is the store (store/log.py), which every reader follows.

DEFAULT_PARTITIONS = 3
RETENTION_MS = 7 * 24 * 60 * 60 * 1000
ENSURE_TIMEOUT_S = 10.0

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = DEFAULT_PARTITIONS
    retention_ms: int = RETENTION_MS
    key_doc: str = ""


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(RAW, key_doc="dedup_key: reports of one problem land on one partition, in order"),
    TopicSpec(INCIDENTS, key_doc="incident id"),
    TopicSpec(NOTIFICATIONS, key_doc="incident id"),
)


class TopicSetupError(RuntimeError):
    """The topics could not be created or did not appear in time."""


def spec(name: str) -> TopicSpec:
    """The spec for a logical (unprefixed) topic name."""
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {[t.name for t in TOPICS]}")


def topic_requests(settings: Settings, partitions: int | None = None) -> dict[str, dict[str, object]]:
    """kafka-python create_topics requests for every topic, with the prefix applied."""
    return {
        settings.topic(t.name): {
            "num_partitions": partitions or t.partitions,
            "replication_factor": settings.topic_replication_factor or 1,
            "configs": {"retention.ms": str(t.retention_ms)},
        }
        for t in TOPICS
    }


def ensure_topics(
    bootstrap: str, settings: Settings, partitions: int | None = None, timeout_s: float = ENSURE_TIMEOUT_S
) -> list[str]:
    """Create every topic unless it exists and wait until the broker lists them all. Returns their names.

    Connection errors are retried until timeout_s, so this can run right after the broker was spawned.
    """
    if settings.topic_replication_factor is None:  # unset: the broker's kind decides (1 on tansu, 3 on a cluster)
        from pingan.streams.broker_profile import resolved

        # The broker at `bootstrap`: `pingan up` passes the embedded broker's address, which settings do not hold.
        try:
            settings = resolved(settings.model_copy(update={"kafka_bootstrap_servers": bootstrap}), timeout_s)[0]
        except KafkaError as exc:
            raise TopicSetupError(f"broker {bootstrap} unreachable for {timeout_s:g} s: {exc!r}") from exc
    requests = topic_requests(settings, partitions)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            _create_and_wait(bootstrap, requests, remaining_ms, deadline)
            return list(requests)
        except KafkaError as exc:
            # Connection refused, bootstrap timeouts and "not ready yet" answers are retriable.
            retriable = exc.retriable or isinstance(exc, BrokerNotAvailableError)
            if not retriable:
                raise TopicSetupError(f"could not create topics on {bootstrap}: {exc!r}") from exc
            if time.monotonic() >= deadline:
                raise TopicSetupError(f"broker {bootstrap} unreachable for {timeout_s:g} s: {exc!r}") from exc
            time.sleep(0.1)


def _create_and_wait(
    bootstrap: str, requests: dict[str, dict[str, object]], timeout_ms: int, deadline: float
) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="pingan-admin", bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=min(timeout_ms, 5000),
    )
    try:
        # Per-topic error codes instead of raise_errors: one existing topic must not hide the others' fate.
        result = admin.create_topics(requests, raise_errors=False)
        for topic in result["topics"]:
            if topic["error_code"] not in (0, _TOPIC_ALREADY_EXISTS):
                raise TopicSetupError(
                    f"creating {topic['name']!r}: error {topic['error_code']} {topic.get('error_message')}"
                )
        while missing := set(requests) - set(admin.list_topics()):
            if time.monotonic() >= deadline:
                raise TopicSetupError(f"topics not listed by {bootstrap} in time: {sorted(missing)}")
            time.sleep(0.05)
        _warn_on_partition_mismatch(admin, requests)
    finally:
        admin.close()


def _warn_on_partition_mismatch(admin: KafkaAdminClient, requests: dict[str, dict[str, object]]) -> None:
    # An existing topic keeps its partition count (it cannot be changed here); say so rather than fail,
    # since a deliberate operator choice on a real cluster is as likely as a stray auto-creation.
    for desc in admin.describe_topics(list(requests)):
        have, want = len(desc["partitions"]), requests[desc["name"]]["num_partitions"]
        if have != want:
            log.warning("topic %s has %d partitions, expected %s", desc["name"], have, want)

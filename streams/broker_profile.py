"""The one place that says which broker Pingan is talking to, and which broker workarounds follow from it.

Pingan runs on two brokers: the embedded tansu (`pingan up` without KAFKA_BOOTSTRAP_SERVERS; memory://, measured in
/work/shared/broker-notes.md) and Apache Kafka (a production cluster; tests/kafka/ runs a 3-node 4.4 cluster from
deploy/kafka/local-cluster). Each workaround below was written for a tansu fault; whether Apache Kafka needs it was
measured by a test on the real cluster (docs/architecture.md, "Broker workarounds", has the table):

| workaround | tansu | Apache Kafka | where |
|---|---|---|---|
| short consumer fetch wait (20 ms) | yes | no: 500 ms | faust_app.py |
| idempotent producers (relay, recovery, scheduler, agents) | off: InitProducerId fails | on | producer.py |
| re-publish the unfinished work of assigned partitions after a rebalance | yes | no (off) | takeover.py |
| re-read skipped offsets (gap fill) | yes | kept: costs nothing until a gap | gap_fill.py |
| sweep of work passed but undone once caught up | yes | kept: cheap | sweep.py |
| in-process dedup cache instead of a faust Table | yes | kept: the store decides | pipeline.py |

Detection: tansu answers DescribeCluster with the cluster id `tansu_cluster`; Apache Kafka with a random base64 id.
`PINGAN_BROKER_KIND` overrides it.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pingan.settings import Settings

log = logging.getLogger(__name__)

BrokerKind = Literal["tansu", "kafka"]
TANSU_CLUSTER_ID = "tansu_cluster"
TANSU_FETCH_WAIT_MS = 20  # tansu answers a fetch only when the wait is over: latency is the wait (broker notes)
KAFKA_FETCH_WAIT_MS = 500  # aiokafka's default; Kafka answers as soon as data arrives, so it costs no latency
DETECT_TIMEOUT_S = 30.0

_known: dict[str, BrokerKind] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class BrokerProfile:
    kind: BrokerKind
    brokers: int
    replication_factor: int
    fetch_wait_ms: int
    idempotent_producer: bool
    takeover_republish: bool

    def describe(self) -> str:
        return (f"broker: {'Apache Kafka' if self.kind == 'kafka' else 'tansu (embedded)'}, {self.brokers} "
                f"broker(s); topics RF {self.replication_factor}, fetch wait {self.fetch_wait_ms} ms, idempotent "
                f"producers {'on' if self.idempotent_producer else 'off'}, takeover re-publish "
                f"{'on' if self.takeover_republish else 'off'}")


def _describe(bootstrap: str, timeout_s: float) -> tuple[str, int]:
    """(cluster id, number of brokers), retried until timeout_s: the broker may still be starting."""
    deadline = time.monotonic() + timeout_s
    while True:
        wait_ms = max(100, min(5000, int((deadline - time.monotonic()) * 1000)))
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pingan-probe",
                                     bootstrap_timeout_ms=wait_ms, request_timeout_ms=5000,
                                     reconnect_backoff_max_ms=1000)
            try:
                cluster = admin.describe_cluster()
            finally:
                admin.close()
            return str(cluster.get("cluster_id") or ""), len(cluster.get("brokers") or [])
        except KafkaError as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("broker %s not answering yet (%s); retrying", bootstrap, exc)
            time.sleep(0.5)


def kind_of(cluster_id: str) -> BrokerKind:
    return "tansu" if cluster_id.startswith("tansu") else "kafka"


def remember(bootstrap: str, kind: BrokerKind) -> None:
    with _lock:
        _known[bootstrap] = kind


def broker_kind(bootstrap: str, timeout_s: float = DETECT_TIMEOUT_S) -> BrokerKind:
    """tansu or Apache Kafka, asked once per bootstrap string and process (or told by remember())."""
    with _lock:
        if bootstrap in _known:
            return _known[bootstrap]
    kind = kind_of(_describe(bootstrap, timeout_s)[0])
    remember(bootstrap, kind)
    return kind


def profile(settings: Settings, timeout_s: float = DETECT_TIMEOUT_S) -> BrokerProfile:
    """The broker's kind and what follows from it; explicit settings win over the kind's defaults."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    cluster_id, brokers = _describe(bootstrap, timeout_s)
    kind: BrokerKind = kind_of(cluster_id) if settings.broker_kind == "auto" else settings.broker_kind
    remember(bootstrap, kind)
    tansu = kind == "tansu"
    return BrokerProfile(
        kind=kind,
        brokers=brokers,
        # min.insync.replicas=2 with RF 1 would refuse every acks=all write; 3 replicas is the tested cluster's.
        replication_factor=settings.topic_replication_factor or (1 if tansu else max(1, min(3, brokers))),
        fetch_wait_ms=settings.consumer_fetch_wait_ms or (TANSU_FETCH_WAIT_MS if tansu else KAFKA_FETCH_WAIT_MS),
        idempotent_producer=not tansu,
        takeover_republish=settings.takeover_republish if settings.takeover_republish is not None else tansu,
    )


def resolved(settings: Settings, timeout_s: float = DETECT_TIMEOUT_S) -> tuple[Settings, BrokerProfile]:
    """Settings with every broker-dependent value filled in from the profile, so the rest of the code reads plain
    numbers and flags; and the profile, for the log line that says what was chosen."""
    p = profile(settings, timeout_s)
    return settings.model_copy(update={
        "broker_kind": p.kind,
        "topic_replication_factor": p.replication_factor,
        "consumer_fetch_wait_ms": p.fetch_wait_ms,
        "takeover_republish": p.takeover_republish,
    }), p

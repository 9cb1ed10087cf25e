"""Scrape-time collectors: gauges read when Prometheus scrapes, from the store (open incidents, consumer lag, the
heartbeat), the broker (up) and the worker's consumer (per-partition lag); and the worker's metrics endpoint.
The counters and histograms, with one function per event, are in core/metrics.py."""

import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pingan.schemas.common import utcnow
from pingan.schemas.taxonomy import Grade, IncidentStatus

log = logging.getLogger(__name__)
GRADES = tuple(g.value for g in Grade)
STATUSES = tuple(s.value for s in IncidentStatus)


# ---- store-derived gauges (API process) -----------------------------------------------------------------------

LAG_TOPICS = ("incidents.raw", "incidents", "notifications")


class StoreCollector(Collector):
    """Open incidents by grade and status, and consumer lag by topic, read from the store when scraped.

    Three indexed or GROUP BY queries, cached for `ttl_s` so that many scrapers cost one query set.
    Lag, by topic: incidents.raw = accepted intake events triage has not handled; incidents = created incidents
    without a response decision; notifications = intents not yet handed to a channel (state `intended`).
    """

    def __init__(self, store: Any, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[tuple[str, str], int], dict[str, int], bool] | None = None

    def _query(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        from sqlalchemy import and_, func, select

        from pingan.store.tables import incidents, notifications, outbox, responses, triage_events

        with self.store.engine.connect() as conn:
            open_rows = conn.execute(select(incidents.c.grade, incidents.c.status, func.count())
                                     .where(incidents.c.state != "closed")
                                     .group_by(incidents.c.grade, incidents.c.status)).all()
            raw = conn.scalar(select(func.count()).select_from(
                outbox.outerjoin(triage_events, triage_events.c.event_id == outbox.c.event_id))
                # Heartbeats (event ids "hb-…") are the dead-man's switch's probes, not work: their own gauges.
                .where(and_(triage_events.c.event_id.is_(None), outbox.c.event_id.not_like("hb-%"))))
            undecided = conn.scalar(select(func.count()).select_from(
                triage_events.join(incidents, incidents.c.id == triage_events.c.incident_id)
                .outerjoin(responses, responses.c.incident_id == incidents.c.id))
                .where(and_(triage_events.c.outcome == "created", responses.c.incident_id.is_(None))))
            intended = conn.scalar(select(func.count()).where(notifications.c.state == "intended"))
        return ({(r[0], r[1]): int(r[2]) for r in open_rows},
                {"incidents.raw": int(raw or 0), "incidents": int(undecided or 0), "notifications": int(intended or 0)})

    def _read(self) -> tuple[dict[tuple[str, str], int], dict[str, int], bool]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl_s:
                try:
                    open_by, lag = self._query()
                    self._cached = (now, open_by, lag, True)
                except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the store does not
                    log.warning("metrics: the store did not answer: %s", exc.__class__.__name__)
                    self._cached = (now, {}, {}, False)
            return self._cached[1], self._cached[2], self._cached[3]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # collected lazily: registering must not query the store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_by, lag, ok = self._read()
        up = GaugeMetricFamily("pingan_store_up", "1 when the store answered the metrics queries")
        up.add_metric([], 1.0 if ok else 0.0)
        yield up
        if not ok:
            return
        gauge = GaugeMetricFamily("pingan_open_incidents", "Incidents not closed, by grade and status",
                                  labels=["grade", "status"])
        for grade in GRADES:
            for status in STATUSES:
                gauge.add_metric([grade, status], float(open_by.get((grade, status), 0)))
        yield gauge
        lag_gauge = GaugeMetricFamily(
            "pingan_consumer_lag", "Items waiting for a topic's consumer, counted in the store (not broker offsets)",
            labels=["topic"])
        for topic in LAG_TOPICS:
            lag_gauge.add_metric([topic], float(lag.get(topic, 0)))
        yield lag_gauge


class HeartbeatCollector(Collector):
    """The dead-man's switch (pingan.watchdog), read from the store on scrape rather than from the watchdog thread,
    so a stopped watchdog shows as a growing age too. No beat ever sent: no series, and absent() alerts."""

    def __init__(self, store: Any, threshold_s: float, partitions: int, clock: Any = utcnow) -> None:
        self.store = store
        self.threshold_s = threshold_s
        self.partitions = partitions
        self.clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from pingan.handlers.incidents.heartbeat import is_fresh, pipeline_age
        from pingan.store.heartbeat import HeartbeatStore

        try:
            age = pipeline_age(HeartbeatStore(self.store).tracks(self.partitions), self.clock())
        except Exception as exc:  # noqa: BLE001 - pingan_store_up already says the store is down
            log.warning("metrics: heartbeat query failed: %s", exc.__class__.__name__)
            return
        if age is None:
            return
        yield GaugeMetricFamily("pingan_heartbeat_age_seconds", "Seconds since the newest heartbeat that went "
                                "through the whole pipeline was sent (worst partition)", value=age)
        ok = 1.0 if is_fresh(age, self.threshold_s) else 0.0
        yield GaugeMetricFamily("pingan_heartbeat_ok", "1 while a heartbeat has completed the pipeline within "
                                "PINGAN_HEARTBEAT_MISSED_INTERVALS intervals", value=ok)


def api_metrics(store: Any, heartbeat_threshold_s: float | None = None, heartbeat_partitions: int = 3) -> Any:
    """A function that renders the API's /metrics body: the process registry plus the store's gauges, and the
    heartbeat's when it is on (a threshold given)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(StoreCollector(store))
    if heartbeat_threshold_s is not None:
        own.register(HeartbeatCollector(store, heartbeat_threshold_s, heartbeat_partitions))

    def render() -> bytes:
        return generate_latest(REGISTRY) + generate_latest(own)

    return render


# ---- broker up (worker process) -------------------------------------------------------------------------------

class BrokerCollector(Collector):
    """pingan_broker_up: 1 when a bootstrap server accepts a TCP connection at scrape time (timeout 0.5 s)."""

    def __init__(self, bootstrap: str, timeout_s: float = 0.5) -> None:
        self.addresses = [a.strip() for a in bootstrap.split(",") if a.strip()]
        self.timeout_s = timeout_s

    def reachable(self) -> bool:
        for address in self.addresses:
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), self.timeout_s):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("pingan_broker_up", "1 when the Kafka broker accepts a TCP connection")
        gauge.add_metric([], 1.0 if self.reachable() else 0.0)
        yield gauge


_broker_collector: BrokerCollector | None = None


def serve_worker(port: int, host: str, bootstrap: str) -> bool:
    """The worker's metrics endpoint on `port` (0 disables). A busy port is logged, never fatal to the worker."""
    if not port:
        return False
    global _broker_collector
    if _broker_collector is None:
        _broker_collector = BrokerCollector(bootstrap)
        REGISTRY.register(_broker_collector)
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d (%s); the worker runs without /metrics", host, port, exc)
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True


# ---- per-partition lag from the worker's own consumer ------------------------------------------------------------

class PartitionLagCollector(Collector):
    """Lag per topic and partition this worker consumes: the fetch high-water mark minus the next offset to read.

    The high-water mark comes from fetch responses, which the embedded broker gets right (its ListOffsets "latest" is
    wrong, so nothing here asks for end offsets). Only assigned partitions are reported, by this worker; the store's
    `pingan_consumer_lag` stays the count of work not done across all workers.
    """

    def __init__(self, app: Any, topic_prefix: str) -> None:
        self.app = app
        self.prefix = topic_prefix

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("pingan_partition_lag", "Records behind the fetch high-water mark, per topic and "
                                  "partition this worker is assigned", labels=["topic", "partition"])
        try:
            consumer = self.app.consumer
            assigned = sorted(consumer.assignment())
        except Exception:  # noqa: BLE001 - not started yet, or rebalancing: no series this scrape
            assigned = []
        for tp in assigned:
            topic = tp.topic.removeprefix(self.prefix)
            if topic not in LAG_TOPICS:
                continue  # faust's own internal topics: not the pipeline's
            try:
                highwater = consumer.highwater(tp)
                read = consumer._read_offset.get(tp)  # the last offset faust handed to an agent
                committed = consumer._committed_offset.get(tp)
            except Exception:  # noqa: BLE001 - a partition revoked between the two calls
                continue
            if highwater is None:
                continue
            next_offset = read + 1 if read is not None else committed
            if next_offset is None:
                continue
            gauge.add_metric([topic, str(tp.partition)], float(max(0, highwater - next_offset)))
        yield gauge


def register_partition_lag(app: Any, topic_prefix: str) -> None:
    REGISTRY.register(PartitionLagCollector(app, topic_prefix))

"""Prometheus metrics: every family is defined here, with one function per event, so each instrumentation point
in the product is a one-liner.

Two processes expose them. The HTTP API serves `/metrics` (intake, commands and Twilio delivery reports, and the
store-derived gauges of `StoreCollector`); the worker serves its own port, PINGAN_METRICS_PORT (pipeline stages,
notifications, escalations, plan reloads, broker up).

Label values are bounded: enums and code constants only, never an incident id, a person or an address. A value
outside a label's known set is recorded as "other", so a bug cannot explode the series count.

Consumer lag comes from the store, not from the broker: the embedded broker's end offsets ("latest") are wrong
(docs/architecture.md, "The embedded broker"), and the store also counts work a broker lost on a restart. It is the
number of items accepted upstream of a topic and not yet finished by that topic's consumer, labelled by topic only.
"""

import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pingan.schemas.common import utcnow
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST

OTHER = "other"
INTAKE_OUTCOMES = frozenset({"accepted", "duplicate", "rejected", "unauthorized", "rate_limited", "too_large",
                             "unavailable"})
# Intake routes name their source; these are the code's own names (Source plus the non-report routes).
INTAKE_SOURCES = frozenset({s.value for s in Source} | {"cap_feed", "twilio_status"})
STAGES = ("intake_to_triage", "triage_to_match", "match_to_notified", "notified_to_delivered",
          "notified_to_acknowledged")
CHANNELS = frozenset({"console", "sandbox", "twilio_sms", "twilio_voice", "webhook", "email"})
SEND_OUTCOMES = frozenset({"delivered", "accepted", "transient_failure", "permanent_failure"})
RETRY_REASONS = frozenset({"transient", "lost"})
ESCALATION_KINDS = frozenset({"step", "escalate", "repeat", "roll_call", "manual"})
GRADES = tuple(g.value for g in Grade)
STATUSES = tuple(s.value for s in IncidentStatus)
# 10 ms to 1 h: the pipeline's own hops are tens of ms; acknowledgement by a person takes minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                   1200.0, 1800.0, 3600.0)
HTTP_OUTCOMES = {401: "unauthorized", 403: "unauthorized", 413: "too_large", 422: "rejected", 429: "rate_limited",
                 503: "unavailable"}

INTAKE = Counter("pingan_intake_requests", "Intake requests by source and outcome (a batch is one request)",
                 ["source", "outcome"])
INCIDENTS = Counter("pingan_incidents", "Incidents created, by category, grade and status (actual, exercise, test)",
                    ["category", "grade", "status"])
STAGE_LATENCY = Histogram("pingan_stage_latency_seconds", "Latency between two pipeline stages", ["stage"],
                          buckets=LATENCY_BUCKETS)
NOTIFICATIONS = Counter("pingan_notifications", "Notification send attempts by channel and outcome",
                        ["channel", "outcome"])
RETRIES = Counter("pingan_notification_retries", "Intents re-published for another attempt (transient failure) "
                  "or because their message was lost", ["channel", "reason"])
THROTTLED = Counter("pingan_notification_throttled", "Sends the provider throttled (HTTP 429)", ["channel"])
ESCALATIONS = Counter("pingan_escalations", "Escalation deadlines fired, and manual escalations, by kind", ["kind"])
PLAN_RELOADS = Counter("pingan_plan_reloads", "Plan sets reloaded by the worker")
# Drill and test traffic (status exercise or test) stays out of the operational series above (latency, sends,
# retries, escalations), so that a drill never moves an SLO or an alert; it is counted here, apart.
EXERCISE_NOTIFICATIONS = Counter("pingan_exercise_notifications", "Notification attempts of exercise and test "
                                 "incidents (drills), by outcome; the sandbox records them", ["outcome"])
PLAN_RELOAD_FAILURES = Counter("pingan_plan_reload_failures", "Plan reloads refused (the last good set serves)")

for _stage in STAGES:  # every stage has a series from the start, so rate() and absent() behave
    STAGE_LATENCY.labels(_stage)


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def is_actual(status: Any) -> bool:
    """Only actual incidents feed the operational series (an enum or its value)."""
    return str(getattr(status, "value", status)) == "actual"


def seconds_since(t: datetime | None, now: datetime | None = None) -> float | None:
    if t is None:
        return None
    return max(0.0, ((now or utcnow()) - t).total_seconds())


# ---- intake (API process) -------------------------------------------------------------------------------------

def intake(source: str, outcome: str) -> None:
    INTAKE.labels(_bounded(source, INTAKE_SOURCES), _bounded(outcome, INTAKE_OUTCOMES)).inc()


def intake_refused(source: str, http_status: int) -> None:
    """A guard or parser said no: 401/403, 413, 422, 429 or 503."""
    intake(source, HTTP_OUTCOMES.get(http_status, OTHER))


def intake_committed(source: str, accepted: Sequence[Any]) -> None:
    """One committed request: `duplicate` when every item was a retry of an accepted message, else `accepted`."""
    intake(source, "duplicate" if accepted and all(a.duplicate for a in accepted) else "accepted")


# ---- pipeline (worker process) --------------------------------------------------------------------------------

def incident_created(incident: Any) -> None:
    INCIDENTS.labels(_bounded(incident.category.value, {c.value for c in Category}),
                     _bounded(incident.grade.value, GRADES), _bounded(incident.status.value, STATUSES)).inc()


def stage_latency(stage: str, seconds: float | None, status: Any = "actual") -> None:
    if seconds is not None and stage in STAGES and is_actual(status):
        STAGE_LATENCY.labels(stage).observe(seconds)


def triage_to_match(store: Any, event_id: str, status: Any = "actual") -> None:
    """From triage's decision (its row in triage_events) to the response decision, which is now."""
    from sqlalchemy import select

    from pingan.store.tables import triage_events

    with store.engine.connect() as conn:
        at = conn.scalar(select(triage_events.c.at).where(triage_events.c.event_id == event_id))
    stage_latency("triage_to_match", seconds_since(at), status)


def notification(channel: str, outcome: str) -> None:
    NOTIFICATIONS.labels(_bounded(channel, CHANNELS), _bounded(outcome, SEND_OUTCOMES)).inc()


def send_result(channel: str, n: Any, result: Any) -> None:
    """A channel's answer to one send: the outcome, throttling, and match -> notified when it went out.
    `channel` is the adapter that carried it (exercise traffic goes to `sandbox`), or the planned channel."""
    outcome = result.outcome.value
    if not is_actual(n.incident_status):
        EXERCISE_NOTIFICATIONS.labels(_bounded(outcome, SEND_OUTCOMES)).inc()
        return
    notification(channel, outcome)
    if outcome == "transient_failure" and (result.extra.get("http_status") == 429 or "HTTP 429" in result.detail):
        throttled(channel)
    if outcome in ("delivered", "accepted"):
        stage_latency("match_to_notified", seconds_since(n.created_at))
    if outcome == "delivered":  # the channel itself confirmed delivery (console, webhook 2xx)
        stage_latency("notified_to_delivered", 0.0)


def throttled(channel: str) -> None:
    THROTTLED.labels(_bounded(channel, CHANNELS)).inc()


def retry(channel: str, reason: str) -> None:
    RETRIES.labels(_bounded(channel, CHANNELS), _bounded(reason, RETRY_REASONS)).inc()


def retried(entry: Any) -> None:
    """A ledger entry the scheduler re-publishes: attempts 0 means its message was lost, more a transient retry."""
    if is_actual(entry.notification.incident_status):
        retry(entry.notification.channel.value, "lost" if entry.attempts == 0 else "transient")


def escalation(kind: str, status: Any = "actual") -> None:
    if not is_actual(status):
        return
    ESCALATIONS.labels(_bounded(kind, ESCALATION_KINDS)).inc()


def plan_reload(ok: bool) -> None:
    (PLAN_RELOADS if ok else PLAN_RELOAD_FAILURES).inc()


# ---- commands and delivery reports (API process) ---------------------------------------------------------------

def delivery_report(entry: Any, delivered: bool) -> None:
    """Twilio's final status for a message sent earlier; the ledger's updated_at is when it was sent.
    Only the first final report counts (Twilio may repeat a callback)."""
    if delivered and entry.state.value == "sent" and is_actual(entry.notification.incident_status):
        stage_latency("notified_to_delivered", seconds_since(entry.updated_at))


def acknowledged(timeline: Sequence[Any], status: Any = "actual") -> None:
    """From the incident's first `notified` entry to the acknowledgement just logged."""
    if not is_actual(status):
        return
    notified = next((a.at for a in timeline if a.kind.value == "notified"), None)
    ack = next((a.at for a in reversed(timeline) if a.kind.value == "acknowledged"), None)
    if notified is not None and ack is not None:
        stage_latency("notified_to_acknowledged", seconds_since(notified, ack))


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
        from pingan.handlers.heartbeat import is_fresh, pipeline_age
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
            if topic not in LAG_TOPICS and topic not in ("actions",):
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

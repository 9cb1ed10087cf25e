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
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Histogram,
)

from pingan.metrics_scrape import (  # re-exported: callers keep one import
    GRADES,
    LAG_TOPICS,
    STATUSES,
    BrokerCollector,
    HeartbeatCollector,
    PartitionLagCollector,
    StoreCollector,
    api_metrics,
    register_partition_lag,
    serve_worker,
)
from pingan.schemas.common import utcnow
from pingan.schemas.taxonomy import Category, Source

log = logging.getLogger(__name__)
__all__ = ["GRADES", "LAG_TOPICS", "STATUSES", "BrokerCollector", "HeartbeatCollector", "PartitionLagCollector",
           "StoreCollector", "api_metrics", "register_partition_lag", "serve_worker"]
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
THROTTLED = Counter("pingan_notification_throttled", "Sends the provider throttled (HTTP 429, Twilio 20429); the "
                    "notifier queues them again after Retry-After", ["channel"])
ESCALATIONS = Counter("pingan_escalations", "Escalation deadlines fired, and manual escalations, by kind", ["kind"])
PLAN_RELOADS = Counter("pingan_plan_reloads", "Plan sets reloaded by the worker")
# Drill and test traffic (status exercise or test) stays out of the operational series above (latency, sends,
# retries, escalations), so that a drill never moves an SLO or an alert; it is counted here, apart.
EXERCISE_NOTIFICATIONS = Counter("pingan_exercise_notifications", "Notification attempts of exercise and test "
                                 "incidents (drills), by outcome; the sandbox records them", ["outcome"])
# The public SMS broadcast of releases (issue 17): the store has the per-release figures (store/subscriptions.py);
# this is their sum, so labelled by outcome only (a release id would be an unbounded label).
RELEASE_SMS_OUTCOMES = frozenset({"sent", "failed", "throttled", "unsubscribed"})
RELEASE_SMS = Counter("pingan_release_sms", "Public SMS broadcast of releases, by outcome: sent, failed, throttled "
                      "(a provider 429, waited out and sent again), unsubscribed (stopped at send time)", ["outcome"])
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
    stage_latency("triage_to_match", seconds_since(store.triaged_at(event_id)), status)


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
    if outcome == "transient_failure" and (result.extra.get("throttled") or result.extra.get("http_status") == 429
                                           or "HTTP 429" in result.detail):
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


def release_sms(outcome: str, count: int = 1) -> None:
    """One public broadcast SMS's fate (actual releases only: exercise traffic is counted apart)."""
    RELEASE_SMS.labels(_bounded(outcome, RELEASE_SMS_OUTCOMES)).inc(count)

"""pingan.metrics: each event function moves the right series, and no label ever carries an id."""

import re
import socket
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from pingan import metrics
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import SendOutcome, SendResult
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.stages import triage_stage
from pingan.web.app import create_api

REPORT = {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "仓库起火"}
ALLOWED_LABELS = {"source", "outcome", "category", "grade", "status", "stage", "channel", "reason", "kind", "topic",
                  "le"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def incident(**changes: object) -> Incident:
    now = utcnow()
    return Incident.model_validate({**REPORT, "id": "INC-0123456789", "dedup_key": "k", "received_at": now,
                                    **changes})


def notification(channel: Channel = Channel.webhook, seconds_ago: float = 2.0) -> Notification:
    return Notification(
        idempotency_key="abcdef0123456789", incident_id="INC-0123456789", plan_id="building-fire", plan_version=1,
        step="s1", recipient=Recipient(id="duty-room", name="值班室", channel=channel, address="https://x.test/h"),
        channel=channel, text="起火", created_at=utcnow() - timedelta(seconds=seconds_ago))


def test_intake_outcomes() -> None:
    before = value("pingan_intake_requests_total", source="api", outcome="accepted")
    metrics.intake("api", "accepted")
    assert value("pingan_intake_requests_total", source="api", outcome="accepted") == before + 1
    for status, outcome in [(401, "unauthorized"), (403, "unauthorized"), (413, "too_large"), (422, "rejected"),
                            (429, "rate_limited"), (503, "unavailable")]:
        before = value("pingan_intake_requests_total", source="cap", outcome=outcome)
        metrics.intake_refused("cap", status)
        assert value("pingan_intake_requests_total", source="cap", outcome=outcome) == before + 1, status


def test_a_request_of_only_retries_is_a_duplicate() -> None:
    dup, new = SimpleNamespace(duplicate=True), SimpleNamespace(duplicate=False)
    before_dup = value("pingan_intake_requests_total", source="alertmanager", outcome="duplicate")
    before_acc = value("pingan_intake_requests_total", source="alertmanager", outcome="accepted")
    metrics.intake_committed("alertmanager", [dup, dup])
    metrics.intake_committed("alertmanager", [dup, new])
    assert value("pingan_intake_requests_total", source="alertmanager", outcome="duplicate") == before_dup + 1
    assert value("pingan_intake_requests_total", source="alertmanager", outcome="accepted") == before_acc + 1


def test_unknown_label_values_become_other() -> None:
    before = value("pingan_intake_requests_total", source="other", outcome="other")
    metrics.intake("INC-0123456789", "whatever")
    assert value("pingan_intake_requests_total", source="other", outcome="other") == before + 1
    metrics.stage_latency("INC-0123456789", 1.0)  # an unknown stage is dropped, not a new series
    assert REGISTRY.get_sample_value("pingan_stage_latency_seconds_count", {"stage": "INC-0123456789"}) is None


def test_incidents_keep_exercises_apart() -> None:
    labels = {"category": "accident_disaster", "grade": "III"}
    actual = value("pingan_incidents_total", status="actual", **labels)
    exercise = value("pingan_incidents_total", status="exercise", **labels)
    metrics.incident_created(incident())
    metrics.incident_created(incident(status="exercise"))
    metrics.incident_created(incident(status="exercise"))
    assert value("pingan_incidents_total", status="actual", **labels) == actual + 1
    assert value("pingan_incidents_total", status="exercise", **labels) == exercise + 2


def test_stage_latency_buckets_span_10ms_to_1h() -> None:
    count = value("pingan_stage_latency_seconds_count", stage="intake_to_triage")
    fast = value("pingan_stage_latency_seconds_bucket", stage="intake_to_triage", le="0.01")
    metrics.stage_latency("intake_to_triage", 0.005)
    metrics.stage_latency("intake_to_triage", 1800.0)
    assert value("pingan_stage_latency_seconds_count", stage="intake_to_triage") == count + 2
    assert value("pingan_stage_latency_seconds_bucket", stage="intake_to_triage", le="0.01") == fast + 1
    assert REGISTRY.get_sample_value("pingan_stage_latency_seconds_bucket",
                                     {"stage": "intake_to_triage", "le": "3600.0"}) is not None
    for stage in metrics.STAGES:  # every stage exists before its first observation
        assert REGISTRY.get_sample_value("pingan_stage_latency_seconds_count", {"stage": stage}) is not None


def test_send_results_throttling_and_match_to_notified() -> None:
    n = notification()
    throttled = value("pingan_notification_throttled_total", channel="webhook")
    transient = value("pingan_notifications_total", channel="webhook", outcome="transient_failure")
    delivered = value("pingan_notifications_total", channel="webhook", outcome="delivered")
    notified = value("pingan_stage_latency_seconds_count", stage="match_to_notified")
    over_1s = value("pingan_stage_latency_seconds_bucket", stage="match_to_notified", le="1.0")
    metrics.send_result("webhook", n, SendResult(SendOutcome.transient_failure, detail="webhook HTTP 429",
                                                 extra={"http_status": 429}))
    metrics.send_result("webhook", n, SendResult(SendOutcome.transient_failure, detail="webhook HTTP 503",
                                                 extra={"http_status": 503}))
    metrics.send_result("webhook", n, SendResult(SendOutcome.delivered))
    assert value("pingan_notification_throttled_total", channel="webhook") == throttled + 1
    assert value("pingan_notifications_total", channel="webhook", outcome="transient_failure") == transient + 2
    assert value("pingan_notifications_total", channel="webhook", outcome="delivered") == delivered + 1
    assert value("pingan_stage_latency_seconds_count", stage="match_to_notified") == notified + 1
    # created two seconds ago: not in the 1 s bucket
    assert value("pingan_stage_latency_seconds_bucket", stage="match_to_notified", le="1.0") == over_1s


def test_retries_escalations_plan_reloads() -> None:
    lost = value("pingan_notification_retries_total", channel="console", reason="lost")
    transient = value("pingan_notification_retries_total", channel="console", reason="transient")
    n = notification(Channel.console)
    metrics.retried(SimpleNamespace(notification=n, attempts=0))
    metrics.retried(SimpleNamespace(notification=n, attempts=3))
    assert value("pingan_notification_retries_total", channel="console", reason="lost") == lost + 1
    assert value("pingan_notification_retries_total", channel="console", reason="transient") == transient + 1

    for kind in ("escalate", "repeat", "manual"):
        before = value("pingan_escalations_total", kind=kind)
        metrics.escalation(kind)
        assert value("pingan_escalations_total", kind=kind) == before + 1

    ok, failed = value("pingan_plan_reloads_total"), value("pingan_plan_reload_failures_total")
    metrics.plan_reload(True)
    metrics.plan_reload(False)
    metrics.plan_reload(False)
    assert value("pingan_plan_reloads_total") == ok + 1
    assert value("pingan_plan_reload_failures_total") == failed + 2


def test_acknowledged_measures_from_the_first_notified() -> None:
    t0 = utcnow()
    timeline = [SimpleNamespace(kind=SimpleNamespace(value=k), at=t0 + timedelta(seconds=s))
                for k, s in [("created", 0), ("notified", 5), ("notified", 60), ("acknowledged", 125)]]
    count = value("pingan_stage_latency_seconds_count", stage="notified_to_acknowledged")
    total = value("pingan_stage_latency_seconds_sum", stage="notified_to_acknowledged")
    metrics.acknowledged(timeline)
    assert value("pingan_stage_latency_seconds_count", stage="notified_to_acknowledged") == count + 1
    assert value("pingan_stage_latency_seconds_sum", stage="notified_to_acknowledged") == total + 120


def test_no_label_carries_an_id() -> None:
    metrics.incident_created(incident())
    metrics.send_result("console", notification(Channel.console), SendResult(SendOutcome.delivered))
    series = 0
    for family in REGISTRY.collect():
        if not family.name.startswith("pingan_"):
            continue
        for sample in family.samples:
            series += 1
            assert set(sample.labels) <= ALLOWED_LABELS, (family.name, sample.labels)
            for label_value in sample.labels.values():
                assert not re.search(r"INC-|[0-9a-f]{16}|@|https?:", label_value), (family.name, sample.labels)
    assert 0 < series < 1000


def test_store_collector_open_incidents_and_lag(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    store.accept_many([IncidentReport.model_validate({**REPORT, "title": f"起火 {i}"}) for i in range(3)], "raw")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.StoreCollector(store, ttl_s=0))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("pingan_store_up") == 1
    assert sample("pingan_consumer_lag", topic="incidents.raw") == 3
    assert sample("pingan_consumer_lag", topic="incidents") == 0
    assert sample("pingan_open_incidents", grade="III", status="actual") == 0

    created = value("pingan_incidents_total", category="accident_disaster", grade="III", status="actual")
    triaged = value("pingan_stage_latency_seconds_count", stage="intake_to_triage")
    event = RawEvent.model_validate_json(store.unpublished(1)[0].payload)
    out = triage_stage(store, event, timedelta(hours=1))
    assert out.incident_events and out.incident_events[0].outcome.value == "created"
    triage_stage(store, event, timedelta(hours=1))  # a replay counts nothing
    assert value("pingan_incidents_total", category="accident_disaster", grade="III", status="actual") == created + 1
    assert value("pingan_stage_latency_seconds_count", stage="intake_to_triage") == triaged + 1

    assert sample("pingan_consumer_lag", topic="incidents.raw") == 2
    assert sample("pingan_consumer_lag", topic="incidents") == 1  # created, no response decided yet
    assert sample("pingan_consumer_lag", topic="notifications") == 0
    assert sample("pingan_open_incidents", grade="III", status="actual") == 1
    assert sample("pingan_open_incidents", grade="I", status="exercise") == 0
    store.close()


def test_store_collector_survives_a_dead_store(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    store.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.StoreCollector(store, ttl_s=0))
    assert registry.get_sample_value("pingan_store_up") == 0
    assert registry.get_sample_value("pingan_open_incidents", {"grade": "I", "status": "actual"}) is None


def test_api_serves_metrics_and_counts_refusals(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    client = TestClient(create_api(Settings(data_dir=tmp_path), store, tokens={"api": "t", "alertmanager": "a",
                                                                                "cap": "c", "metrics": "m"}))
    unauthorized = value("pingan_intake_requests_total", source="api", outcome="unauthorized")
    rejected = value("pingan_intake_requests_total", source="api", outcome="rejected")
    accepted = value("pingan_intake_requests_total", source="api", outcome="accepted")
    assert client.post("/v1/incidents", json=REPORT).status_code == 401
    assert client.post("/v1/incidents", json={**REPORT, "grade": "V"}, headers={"Authorization": "Bearer t"}) \
        .status_code == 422
    assert client.post("/v1/incidents", json=REPORT, headers={"Authorization": "Bearer t"}).status_code == 202
    assert client.get("/metrics").status_code == 401  # the scraper's token only
    assert client.get("/metrics", headers={"Authorization": "Bearer t"}).status_code == 401
    body = client.get("/metrics", headers={"Authorization": "Bearer m"})
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.text)}
    expected = {"pingan_intake_requests", "pingan_open_incidents", "pingan_consumer_lag", "pingan_store_up"}
    assert expected <= set(families)
    assert value("pingan_intake_requests_total", source="api", outcome="unauthorized") == unauthorized + 1
    assert value("pingan_intake_requests_total", source="api", outcome="rejected") == rejected + 1
    assert value("pingan_intake_requests_total", source="api", outcome="accepted") == accepted + 1
    lag = {s.labels["topic"]: s.value for s in families["pingan_consumer_lag"].samples}
    assert lag["incidents.raw"] == 1
    store.close()


def test_broker_up_is_a_tcp_check() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        up = CollectorRegistry(auto_describe=False)
        up.register(metrics.BrokerCollector(f"127.0.0.1:{port}"))
        assert up.get_sample_value("pingan_broker_up") == 1
    down = CollectorRegistry(auto_describe=False)
    down.register(metrics.BrokerCollector(f"127.0.0.1:{port},127.0.0.1:1"))
    assert down.get_sample_value("pingan_broker_up") == 0

"""`pingan up` exposes Prometheus metrics: the API's /metrics and the worker's own port, read by curl and by a real
Prometheus (Debian's `prometheus`, installed by .ci/run) scraping both every second."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Proc, Stack, free_port, wait_for

N = 4  # actual reports; one exercise report comes on top
FIRE = {"category": "accident_disaster", "subtype": "fire", "grade": "III"}
API_FAMILIES = {"pingan_intake_requests", "pingan_open_incidents", "pingan_consumer_lag", "pingan_store_up",
                "pingan_stage_latency_seconds"}
WORKER_FAMILIES = {"pingan_incidents", "pingan_stage_latency_seconds", "pingan_notifications",
                   "pingan_notification_retries", "pingan_notification_throttled", "pingan_escalations",
                   "pingan_plan_reloads", "pingan_plan_reload_failures", "pingan_broker_up",
                   "pingan_exercise_notifications", "pingan_partition_lag"}


def scrape(url: str, token: str | None = None) -> dict[str, Any]:
    """{family name: {(sample name, frozenset(labels)): value}}; the API's /metrics wants the scraper's token."""
    response = httpx.get(url, timeout=10, headers={"Authorization": f"Bearer {token}"} if token else {})
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    text = response.text
    return {f.name: {(s.name, frozenset(s.labels.items())): s.value for s in f.samples}
            for f in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], family: str, name: str | None = None, **labels: str) -> float:
    """The sum of the family's samples called `name` (default the family name) whose labels include `labels`."""
    name = name or family
    return sum(v for (n, ls), v in families.get(family, {}).items()
               if n == name and set(labels.items()) <= set(ls))


class Metered:
    def __init__(self, stack: Stack, plans: Path) -> None:
        self.stack = stack
        self.plans = plans
        self.api_url = f"{stack.url}/metrics"
        self.worker_url = f"http://127.0.0.1:{stack.metrics_port}/metrics"

    def api(self) -> dict[str, Any]:
        return scrape(self.api_url, self.stack.tokens["metrics"])

    def worker(self) -> dict[str, Any]:
        return scrape(self.worker_url)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    tmp = tmp_path_factory.mktemp("metrics")
    plans = tmp / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    # Fast-forward the plans (one plan minute is 0.2 s) so that repeats and escalations fire during the test.
    stack = Stack(tmp, PINGAN_PLANS_DIR=str(plans), PINGAN_ESCALATION_TIME_SCALE="300")
    stack.up()
    m = Metered(stack, plans)
    try:
        wait_for(lambda: _reachable(m.worker_url), 30, 0.2, "the worker's metrics port")
        ids = [stack.post("/v1/incidents", json={**FIRE, "title": f"仓库起火 {i}"}).json()["id"] for i in range(N)]
        ids.append(stack.post("/v1/incidents", json={**FIRE, "title": "消防演练", "status": "exercise"}).json()["id"])
        assert httpx.post(stack.url + "/v1/incidents", json=FIRE, timeout=10).status_code == 401
        assert stack.post("/v1/incidents", json={**FIRE, "title": "x", "grade": "V"}).status_code == 422
        for incident_id in ids:
            wait_for(lambda i=incident_id: stack.delivered(i), 60, 0.2, f"{incident_id} delivered")
        ack = stack.post(f"/v1/incidents/{ids[0]}/ack", json={}, person="chen-jianhua")
        assert ack.status_code == 200, ack.text
        # One good reload (a plan file changes), then one refused (a broken file), then good again.
        target = plans / "building-fire.yaml"
        target.write_text(target.read_text() + "\n# touched by the metrics test\n")
        wait_for(lambda: sample(m.worker(), "pingan_plan_reloads", "pingan_plan_reloads_total") >= 1, 20, 0.3,
                 "a plan reload")
        (plans / "broken.yaml").write_text("id: [this is not a plan\n")
        wait_for(lambda: sample(m.worker(), "pingan_plan_reload_failures", "pingan_plan_reload_failures_total") >= 1,
                 20, 0.3, "a refused plan reload")
        (plans / "broken.yaml").unlink()
        wait_for(lambda: sample(m.worker(), "pingan_escalations", "pingan_escalations_total") >= 1, 30, 0.3,
                 "an escalation deadline to fire")
        yield m
    finally:
        stack.stop()


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_metrics(metered: Metered) -> None:
    api = metered.api()
    assert set(api) >= API_FAMILIES, set(api)
    intake = "pingan_intake_requests_total"
    assert sample(api, "pingan_intake_requests", intake, source="api", outcome="accepted") == N + 1
    assert sample(api, "pingan_intake_requests", intake, source="api", outcome="unauthorized") == 1
    assert sample(api, "pingan_intake_requests", intake, source="api", outcome="rejected") == 1
    assert sample(api, "pingan_store_up") == 1
    assert sample(api, "pingan_open_incidents", grade="III", status="actual") == N  # acknowledged is still open
    assert sample(api, "pingan_open_incidents", grade="III", status="exercise") == 1
    assert sample(api, "pingan_open_incidents", grade="I") == 0
    assert sample(api, "pingan_stage_latency_seconds", "pingan_stage_latency_seconds_count",
                  stage="notified_to_acknowledged") == 1
    # Everything was triaged and decided: nothing waits on incidents.raw or incidents.
    api = wait_for(lambda: (a := metered.api()) and sample(a, "pingan_consumer_lag", topic="incidents.raw") == 0
                   and sample(a, "pingan_consumer_lag", topic="incidents") == 0 and a, 20, 0.3, "no lag")
    assert {dict(ls)["topic"] for (_, ls) in api["pingan_consumer_lag"]} == {"incidents.raw", "incidents",
                                                                            "notifications"}


def test_worker_metrics(metered: Metered) -> None:
    worker = metered.worker()
    assert set(worker) >= WORKER_FAMILIES, WORKER_FAMILIES - set(worker)
    incidents = "pingan_incidents_total"
    labels = {"category": "accident_disaster", "grade": "III"}
    assert sample(worker, "pingan_incidents", incidents, status="actual", **labels) == N
    assert sample(worker, "pingan_incidents", incidents, status="exercise", **labels) == 1
    assert sample(worker, "pingan_incidents", incidents) == N + 1

    def count(stage: str) -> float:
        return sample(worker, "pingan_stage_latency_seconds", "pingan_stage_latency_seconds_count", stage=stage)

    # The exercise report is not in the operational series: a drill never moves an SLO (it is counted apart).
    assert count("intake_to_triage") == N
    assert count("triage_to_match") == N
    assert count("match_to_notified") >= N
    assert count("notified_to_delivered") >= N
    # Sensible values: every hop took under a minute (the first reports also wait for the consumer group's join).
    for stage in ("intake_to_triage", "triage_to_match", "match_to_notified"):
        within = sample(worker, "pingan_stage_latency_seconds", "pingan_stage_latency_seconds_bucket", stage=stage,
                        le="60.0")
        assert within == count(stage), stage

    sent = "pingan_notifications_total"
    assert sample(worker, "pingan_notifications", sent, channel="console", outcome="delivered") >= N
    assert sample(worker, "pingan_notifications", sent, channel="sandbox", outcome="delivered") == 0
    assert sample(worker, "pingan_exercise_notifications", "pingan_exercise_notifications_total",
                  outcome="delivered") >= 1  # the exercise, counted apart
    # Twilio is not configured here: the plan's SMS are counted as permanent failures, never dropped.
    assert sample(worker, "pingan_notifications", sent, channel="twilio_sms", outcome="permanent_failure") >= 1
    assert sample(worker, "pingan_escalations", "pingan_escalations_total") >= 1
    assert sample(worker, "pingan_plan_reloads", "pingan_plan_reloads_total") >= 1
    assert sample(worker, "pingan_plan_reload_failures", "pingan_plan_reload_failures_total") >= 1
    assert sample(worker, "pingan_broker_up") == 1
    # Per topic and partition, from the fetch high-water mark: every partition of the pipeline's topics is assigned
    # to this one worker, and all caught up once the reports are notified.
    lag: dict[str, set[str]] = {}
    for (_, ls), value in worker["pingan_partition_lag"].items():
        labels = dict(ls)
        lag.setdefault(labels["topic"], set()).add(labels["partition"])
        assert value == 0, labels
    assert {"incidents.raw", "incidents", "notifications"} <= set(lag), lag
    assert len(lag["incidents.raw"]) >= 2, lag
    for family in WORKER_FAMILIES:
        for (_, ls) in worker[family]:
            assert not any(v.startswith("INC-") for _, v in ls), (family, ls)


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the prometheus binary is missing in CI (.ci/run installs Debian's `prometheus`)")
        pytest.skip("no `prometheus` binary on PATH (apt-get install prometheus; .ci/run does this in CI)")
    return binary


def test_a_real_prometheus_scrapes_both(metered: Metered, tmp_path: Path) -> None:
    binary = _prometheus_binary()
    stack = metered.stack
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pingan-api
    authorization: {{type: Bearer, credentials: "{stack.tokens['metrics']}"}}
    static_configs: [{{targets: ["127.0.0.1:{stack.port}"]}}]
  - job_name: pingan-worker
    static_configs: [{{targets: ["127.0.0.1:{stack.metrics_port}"]}}]
""")
    port = free_port()
    prom = Proc([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"], dict(os.environ), tmp_path / "prometheus.log")
    base = f"http://127.0.0.1:{port}"

    def query(expr: str) -> float | None:
        try:
            body = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        result = body.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    try:
        wait_for(lambda: query('sum(up{job=~"pingan-.*"})') == 2, 60, 0.5, "Prometheus to scrape both targets")
        accepted = wait_for(lambda: query('sum(pingan_intake_requests_total{source="api",outcome="accepted"})'),
                            30, 0.5, "the intake counter in Prometheus")
        assert accepted == N + 1
        assert query('sum(pingan_incidents_total{job="pingan-worker"})') == N + 1
        assert query('sum(pingan_incidents_total{status="exercise"})') == 1
        assert query('sum(pingan_open_incidents{status="actual"})') == N
        assert query('pingan_broker_up{job="pingan-worker"}') == 1
        assert query('sum(pingan_stage_latency_seconds_count{stage="intake_to_triage"})') == N  # not the exercise
    except AssertionError:
        print(prom.log_tail())
        raise
    finally:
        prom.stop()
        assert prom.popen.poll() is not None

"""The night-time chemical leak drill, where the duty officer never answers, run for real against `pingan up`: the
officer's acknowledgement is scored missed, with the escalation that followed; and the drill's incidents stay out of
every actual-incident statistic (the API's lists and counts, the metrics)."""

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, pingan_argv


def step(incident: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for level in incident["levels"] for s in level["steps"] if s["step"] == step_id)


def samples(url: str, token: str | None = None) -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(url, timeout=10, headers={"Authorization": f"Bearer {token}"} if token else {}).text
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_unanswered_officer_is_scored_missed_and_drills_stay_out_of_actual_statistics(tmp_path: Path) -> None:
    stack = Stack(tmp_path, PINGAN_ESCALATION_TIME_SCALE="120")
    stack.up()
    data = tmp_path / "r.json"
    try:
        run = subprocess.run(pingan_argv("drill", "run", str(Path(PLANS_DIR) / "drills" / "chemical-leak-night.yaml"),
                                         "--speed", "120", "--json", str(data), "--url", stack.url),
                             env=stack.drill_env(), capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        results = json.loads(data.read_text())
        leak = next(i for i in results["incidents"] if i["inject"] == "leak")
        assert leak["plan_id"] == "hazchem-leak" and leak["status"] == "exercise"
        ack = step(leak, "duty-officer-sms")["ack"]
        assert ack["result"] == "missed" and ack["actual_min"] is None, ack
        assert ack["escalations_after"] and ack["escalations_after"][0]["deadline"] == "repeat", ack
        assert [a["by"] for a in ack["acknowledged_later_by"]] == ["huang-liping"], ack
        # No actual-incident statistic counts the drill.
        actual = stack.get("/v1/incidents", params={"status": "actual"}).json()
        assert actual["total"] == 0 and actual["items"] == []
        exercise = stack.get("/v1/incidents", params={"status": "exercise"}).json()
        assert exercise["total"] == 1  # the resident's call joined the leak
        api = samples(f"{stack.url}/metrics", stack.tokens["metrics"])
        worker = samples(f"http://127.0.0.1:{stack.metrics_port}/metrics")
        for name, labels, value in api + worker:
            if labels.get("status") == "actual" and name.startswith(("pingan_incidents", "pingan_open_incidents")):
                assert value == 0, (name, labels, value)
        assert any(name == "pingan_incidents_total" and labels["status"] == "exercise" and value == 1
                   for name, labels, value in worker)
        # The operational series (latency, notifications, escalations) are the actual pipeline's: a drill adds
        # nothing to them; its traffic is counted apart, in pingan_exercise_notifications.
        for name, labels, value in worker + api:
            if name.startswith(("pingan_stage_latency_seconds_count", "pingan_notifications_total",
                                "pingan_escalations_total", "pingan_notification_retries_total")):
                assert value == 0, (name, labels, value)
        assert sum(value for name, _, value in worker if name == "pingan_exercise_notifications_total") > 0
    finally:
        stack.stop()

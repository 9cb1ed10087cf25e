"""Static validation of deploy/prometheus and deploy/alertmanager: promtool and amtool on the config, the rules and
their unit tests; every pipeline alert exists, is tested firing and quiet, and routes to a receiver; the scrape
targets and the webhook match the compose services. Shared helpers: tests/fixtures/deploy.py.
"""

import shutil
from pathlib import Path
from typing import Any

from tests.fixtures.deploy import (
    ALERTMANAGER,
    PROM,
    PROMTOOL_HINT,
    WORKERS,
    alert_rules,
    load_yaml,
    required_tool,
    run,
    service_env,
)

PIPELINE_ALERTS = {
    "PinganConsumerLagHigh",
    "PinganHeartbeatMissing",
    "PinganDeliveryFailures",
    "PinganBrokerDown",
    "PinganIntakeUnavailable",
}
AMTOOL_HINT = "apt-get install prometheus-alertmanager"


def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    # rule_files and the API job's credentials_file are relative to the config file; check a copy of the directory
    # as the container has it, with the metrics token the compose entrypoint writes beside the config.
    layout = tmp_path / "prometheus"
    shutil.copytree(PROM, layout)
    token_file = load_yaml(PROM / "prometheus.yml")["scrape_configs"][0]["authorization"]["credentials_file"]
    (layout / token_file).write_text("a-metrics-token")
    out = run([promtool, "check", "config", "prometheus.yml"], cwd=layout)
    assert "SUCCESS: 1 rule files found" in out.stdout + out.stderr


def test_prometheus_scrapes_the_api_with_the_metrics_token(compose: dict[str, Any]) -> None:
    api_job = next(j for j in load_yaml(PROM / "prometheus.yml")["scrape_configs"] if j["job_name"] == "pingan-api")
    token_file = api_job["authorization"]["credentials_file"]
    assert f"/etc/prometheus/{token_file}" in compose["services"]["prometheus"]["command"][0], \
        "the entrypoint must write the token where the config reads it"
    assert service_env(compose, "prometheus")["PINGAN_METRICS_TOKEN"] == service_env(compose, "api")[
        "PINGAN_METRICS_TOKEN"]


def test_promtool_check_rules() -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    run([promtool, "check", "rules", "rules.yml"], cwd=PROM)


def test_promtool_test_rules() -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    out = run([promtool, "test", "rules", "rules.test.yml"], cwd=PROM)
    assert "SUCCESS" in out.stdout + out.stderr


def test_the_pipeline_alerts_exist_with_severity_and_summary() -> None:
    rules = alert_rules()
    assert set(rules) >= PIPELINE_ALERTS, f"missing: {PIPELINE_ALERTS - set(rules)}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"].get("summary"), name
        assert rule.get("for"), f"{name}: no `for`, a single bad scrape would page"
    # the dead-man's switch must fire when the heartbeat series is gone, not only when it is old
    assert "absent(pingan_heartbeat_age_seconds)" in rules["PinganHeartbeatMissing"]["expr"]


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(PROM / "rules.test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    rules = set(alert_rules())
    assert rules - firing == set(), f"alerts never tested firing: {rules - firing}"
    assert rules - quiet == set(), f"alerts never tested not firing: {rules - quiet}"


def test_scrape_targets_are_the_compose_services_and_their_ports(compose: dict[str, Any]) -> None:
    config = load_yaml(PROM / "prometheus.yml")
    jobs = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
            for job in config["scrape_configs"]}
    api_port = service_env(compose, "api")["PINGAN_HTTP_PORT"]
    assert jobs["pingan-api"] == [f"api:{api_port}"]
    assert sorted(jobs["pingan-worker"]) == sorted(
        f"{w}:{service_env(compose, w)['PINGAN_METRICS_PORT']}" for w in WORKERS)
    for targets in jobs.values():
        for target in targets:
            host = target.split(":")[0]
            assert host == "localhost" or host in compose["services"], f"scrape target {target}: no such service"
    assert config["rule_files"] == ["rules.yml"]
    am_targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_targets == ["alertmanager:9093"] and "alertmanager" in compose["services"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in mounts  # beside prometheus.yml, as referenced


# ---- Alertmanager -------------------------------------------------------------------------------------------------

def test_amtool_check_config() -> None:
    amtool = required_tool("amtool", AMTOOL_HINT)
    out = run([amtool, "check-config", ALERTMANAGER.name], cwd=ALERTMANAGER.parent)
    assert "SUCCESS" in out.stdout + out.stderr


def test_amtool_routes_every_alert_to_a_receiver() -> None:
    amtool = required_tool("amtool", AMTOOL_HINT)
    receivers = {r["name"] for r in load_yaml(ALERTMANAGER)["receivers"]}
    for name, rule in alert_rules().items():
        out = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER.name}", f"alertname={name}",
                   f"severity={rule['labels']['severity']}"], cwd=ALERTMANAGER.parent)
        assert out.stdout.strip() in receivers, f"{name} routed to {out.stdout!r}"


def test_alertmanager_webhook_reaches_the_api_with_the_alertmanager_token(compose: dict[str, Any]) -> None:
    hook = load_yaml(ALERTMANAGER)["receivers"][0]["webhook_configs"][0]
    api_port = service_env(compose, "api")["PINGAN_HTTP_PORT"]
    assert hook["url"] == f"http://api:{api_port}/v1/intake/alertmanager"
    assert hook["send_resolved"] is True  # a resolve closes the incident
    token_file = hook["http_config"]["authorization"]["credentials_file"]
    am = compose["services"]["alertmanager"]
    assert token_file in am["command"][0], "the entrypoint must write the token where the config reads it"
    tokens = dict(p.split("=", 1) for p in service_env(compose, "api")["PINGAN_INTAKE_TOKENS"].split(","))
    assert service_env(compose, "alertmanager")["PINGAN_ALERTMANAGER_TOKEN"] == tokens["alertmanager"]

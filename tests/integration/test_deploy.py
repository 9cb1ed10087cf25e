"""Static validation of deploy/: what can be checked without a Docker engine or a Kubernetes cluster.

Real tools where they exist: promtool (config, rules, rule unit tests, and the Grafana panels' PromQL), amtool,
`docker compose config` or Debian's `docker-compose` (v1) to parse the compose file, `kubernetes-validate` for the
Kubernetes JSON schemas, shellcheck for the topic script. promtool and amtool are required in CI (.ci/run installs
Debian's prometheus and prometheus-alertmanager); the others are optional and skip with the reason when missing.
Everything else is checked structurally with PyYAML/JSON, and cross-checked against the code: Settings field names,
topic names and partitions, faust's internal topics, metric families, ports.

Nothing here starts a container, a broker or a cluster: see docs/deploy.md for what was not run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingan.settings import Settings
from pingan.streams import topics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pingan.json"
K8S = DEPLOY / "k8s"
TOPIC_SCRIPT = DEPLOY / "kafka" / "create-topics.sh"

PIPELINE_ALERTS = {
    "PinganConsumerLagHigh",
    "PinganHeartbeatMissing",
    "PinganDeliveryFailures",
    "PinganBrokerDown",
    "PinganIntakeUnavailable",
}
# Metrics that rules may name before core/metrics.py defines them (work in progress); none at the moment.
PENDING_METRICS: set[str] = set()
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
WORKERS = ("worker-1", "worker-2")
PINGAN_SERVICES = ("api", *WORKERS)


# ---- helpers ----------------------------------------------------------------------------------------------------

def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def required_tool(name: str, install: str) -> str:
    """A tool CI must have: missing fails when CI=true, else skips with the reason."""
    path = shutil.which(name)
    if path:
        return path
    if in_ci():
        pytest.fail(f"`{name}` is missing in CI (.ci/run installs it: {install})")
    pytest.skip(f"no `{name}` on PATH ({install})")


def optional_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"no `{name}` on PATH: {why}")
    return path


def run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} with an empty environment: the default (or empty)."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def service_env(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = compose["services"][name].get("environment") or {}
    assert isinstance(env, dict), f"{name}: environment must be a mapping"
    return {k: str(interpolate(v)) for k, v in env.items()}


def settings_env_names() -> set[str]:
    names = {f"PINGAN_{field.upper()}" for field in Settings.model_fields}
    return names | {"KAFKA_BOOTSTRAP_SERVERS"}


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path, doc))
    return docs


def k8s_find(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_docs() if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/k8s, found {len(found)}"
    return found[0]


# ---- PromQL: metric names in an expression ------------------------------------------------------------------------

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                 "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, labels, strings and ranges removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("(") or m.group(0).lower() in _PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def test_metric_name_extraction_itself() -> None:
    assert metric_names('sum by (le, stage) (rate(pingan_x_bucket{a="b(c)"}[5m])) / on(job) up') == {
        "pingan_x_bucket", "up"}
    assert metric_names("absent(pingan_h) or min(pingan_h) > 1e3") == {"pingan_h"}


def family(sample_name: str) -> str:
    return re.sub(r"_(total|created|bucket|sum|count)$", "", sample_name)


def defined_metric_families() -> set[str]:
    src = "".join((ROOT / "core" / name).read_text(encoding="utf-8") for name in ("metrics.py", "metrics_scrape.py"))
    pattern = r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum|GaugeMetricFamily|CounterMetricFamily|" \
              r"HistogramMetricFamily|SummaryMetricFamily)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\""
    return set(re.findall(pattern, src))


# ---- Prometheus -------------------------------------------------------------------------------------------------

PROMTOOL_HINT = "apt-get install prometheus"
AMTOOL_HINT = "apt-get install prometheus-alertmanager"


def test_promtool_check_config() -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    # rule_files are relative to the config file; run from its directory as the container layout has it.
    out = run([promtool, "check", "config", "prometheus.yml"], cwd=PROM)
    assert "SUCCESS: 1 rule files found" in out.stdout + out.stderr


def test_promtool_check_rules() -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    run([promtool, "check", "rules", "rules.yml"], cwd=PROM)


def test_promtool_test_rules() -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    out = run([promtool, "test", "rules", "rules.test.yml"], cwd=PROM)
    assert "SUCCESS" in out.stdout + out.stderr


def alert_rules() -> dict[str, dict[str, Any]]:
    rules = {}
    for group in load_yaml(PROM / "rules.yml")["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rules[rule["alert"]] = rule
    return rules


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


# ---- docker compose ----------------------------------------------------------------------------------------------

def _compose_cli(which: str) -> list[str]:
    if which == "docker compose":
        docker = optional_tool("docker", "the docker CLI is not installed")
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode != 0:
            said = ((probe.stderr or probe.stdout).strip().splitlines() or [""])[0]
            pytest.skip(f"`docker compose` is unavailable: the docker CLI has no compose plugin here ({said}); the "
                        "compose file is checked by docker-compose v1 (if installed) and structurally below")
        return [docker, "compose"]
    return [required_tool("docker-compose", "apt-get install docker-compose (v1; parses the file offline)")]


@pytest.mark.parametrize("which", ["docker compose", "docker-compose"])
def test_compose_file_parses_offline(which: str) -> None:
    # `config` only parses and interpolates; it needs no Docker engine (none runs here).
    cli = _compose_cli(which)
    out = run([*cli, "-f", str(COMPOSE_FILE), "config"], cwd=DEPLOY)
    rendered = yaml.safe_load(out.stdout)
    assert set(rendered["services"]) >= {"postgres", "api", *WORKERS, *KAFKA_BROKERS}


def test_compose_services(compose: dict[str, Any]) -> None:
    expected = {*KAFKA_BROKERS, "kafka-init", "postgres", "api", *WORKERS, "prometheus", "alertmanager", "grafana"}
    assert expected <= set(compose["services"]), f"missing services: {expected - set(compose['services'])}"
    assert compose["services"]["postgres"]["image"].startswith("postgres:15")
    for name in PINGAN_SERVICES:
        svc = compose["services"][name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    assert compose["services"]["api"]["command"] == ["api"]
    for w in WORKERS:
        assert compose["services"][w]["command"] == ["worker"]
    # every named volume used is declared; every bind mount exists in the repository
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def listener_map(value: str) -> dict[str, str]:
    """`PLAINTEXT://kafka-1:9092,CONTROLLER://:9093` -> {"PLAINTEXT": "kafka-1:9092", "CONTROLLER": ":9093"}."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_compose_kafka_is_a_3_node_kraft_cluster(compose: dict[str, Any]) -> None:
    envs = {b: service_env(compose, b) for b in KAFKA_BROKERS}
    for b, env in envs.items():
        assert compose["services"][b]["image"].startswith("apache/kafka:")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        listeners = listener_map(env["KAFKA_LISTENERS"])
        assert set(listeners) >= {"PLAINTEXT", "CONTROLLER"}
        protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(listeners) <= set(protocol_map)
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
        advertised = listener_map(env["KAFKA_ADVERTISED_LISTENERS"])
        assert set(advertised) <= set(listeners)
        assert advertised["PLAINTEXT"].startswith(f"{b}:"), f"{b} must advertise its own service name"
        assert "CONTROLLER" not in advertised
    ids = sorted(int(e["KAFKA_NODE_ID"]) for e in envs.values())
    assert ids == [1, 2, 3]
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs.values()}
    assert len(voters) == 1, "every node must list the same controller quorum"
    controller_port = listener_map(envs["kafka-1"]["KAFKA_LISTENERS"])["CONTROLLER"].rsplit(":", 1)[1]
    expected_voters = {f"{e['KAFKA_NODE_ID']}@{b}:{controller_port}" for b, e in envs.items()}
    assert set(voters.pop().split(",")) == expected_voters
    assert len({e["CLUSTER_ID"] for e in envs.values()}) == 1
    host_ports = [p.split(":")[0] for b in KAFKA_BROKERS for p in compose["services"][b].get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), "two brokers publish the same host port"


def test_compose_pingan_services_settings(compose: dict[str, Any]) -> None:
    advertised = [listener_map(service_env(compose, b)["KAFKA_ADVERTISED_LISTENERS"])["PLAINTEXT"]
                  for b in KAFKA_BROKERS]
    pg = service_env(compose, "postgres")
    known = settings_env_names()
    for name in PINGAN_SERVICES:
        env = service_env(compose, name)
        unknown = {k for k in env if k.startswith("PINGAN_") or k.startswith("KAFKA_")} - known
        assert not unknown, f"{name}: not Pingan settings (typo?): {sorted(unknown)}"
        assert env["KAFKA_BOOTSTRAP_SERVERS"].split(",") == advertised
        assert env["PINGAN_DATABASE_URL"] == (
            f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}")
        assert env["PINGAN_HTTP_HOST"] == "0.0.0.0"  # the worker's metrics bind there too
        Settings(**{k: v for k, v in ((f, env.get(f"PINGAN_{f.upper()}")) for f in Settings.model_fields)
                    if v is not None})  # every value parses
    for w in WORKERS:
        deps = compose["services"][w]["depends_on"]
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["api"]["condition"] == "service_healthy"  # the API creates the schema first
    assert compose["services"]["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(compose["services"]["api"]["healthcheck"]["test"])
    for b in KAFKA_BROKERS:
        assert compose["services"]["kafka-init"]["depends_on"][b]["condition"] == "service_healthy"
    init_env = service_env(compose, "kafka-init")
    assert init_env["PINGAN_TOPIC_REPLICATION_FACTOR"] == "3" and init_env["PINGAN_TOPIC_MIN_ISR"] == "2"
    assert init_env["PINGAN_APP_ID"] == service_env(compose, "worker-1")["PINGAN_APP_ID"]


# ---- the topic script (compose kafka-init, k8s Job, Strimzi KafkaTopics) ----------------------------------------

_FAUST_TOPICS_SCRIPT = r"""
import json, sys
from pingan.settings import Settings
from pingan.streams.faust_app import create_app

app_id, partitions, *tables = sys.argv[1:]
app = create_app(Settings(kafka_bootstrap_servers="kafka:9092", app_id=app_id))
out = {app.Table(t, default=None, partitions=int(partitions)).changelog_topic.get_topic_name(): "changelog"
       for t in tables}
out[app._leader_assignor._leader_topic_name] = "leader"
print(json.dumps(out))
"""


def expected_topics(app_id: str = "pingan", prefix: str = "") -> dict[str, dict[str, Any]]:
    """What the code uses: streams/topics.py, and faust's own names for the Tables' changelogs and its leader topic
    (asked of a faust app built by create_app, in a subprocess so that no faust state leaks into the test process)."""
    settings = Settings(kafka_bootstrap_servers="kafka:9092", app_id=app_id, topic_prefix=prefix)
    out: dict[str, dict[str, Any]] = {
        settings.topic(t.name): {"partitions": t.partitions, "retention.ms": str(t.retention_ms)}
        for t in topics.TOPICS
    }
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "streams").glob("*.py"))
    tables = re.findall(r'\.Table\(\s*"([^"]+)"', source)
    # No faust Table today (the dedup cache is a plain dict): only the leader topic comes from faust.
    proc = subprocess.run([sys.executable, "-c", _FAUST_TOPICS_SCRIPT, app_id, str(topics.DEFAULT_PARTITIONS), *tables],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for name, role in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        out[name] = ({"partitions": topics.DEFAULT_PARTITIONS, "cleanup.policy": "compact"} if role == "changelog"
                     else {"partitions": 1})
    return out


def run_topic_script(tmp_path: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    log = tmp_path / "calls.log"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    stub.chmod(0o755)
    base = {"PATH": os.environ["PATH"], "KAFKA_TOPICS_BIN": str(stub), "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092"}
    proc = subprocess.run(["/bin/sh", str(TOPIC_SCRIPT)], cwd=tmp_path, env={**base, **env},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    created: dict[str, dict[str, Any]] = {}
    for line in log.read_text().splitlines():
        args = line.split()
        assert args[:2] == ["--bootstrap-server", "k1:9092,k2:9092"], line
        if "--create" not in args:
            continue
        assert "--if-not-exists" in args, "re-running the script must not fail on existing topics"
        name = args[args.index("--topic") + 1]
        configs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--config")
        created[name] = {"partitions": int(args[args.index("--partitions") + 1]),
                         "rf": int(args[args.index("--replication-factor") + 1]), **configs}
    return created


@pytest.mark.parametrize(("app_id", "prefix"), [("pingan", ""), ("pingan-staging", "stg.")])
def test_topic_script_creates_every_topic_the_code_uses_replicated(tmp_path: Path, app_id: str, prefix: str) -> None:
    created = run_topic_script(tmp_path, {"PINGAN_APP_ID": app_id, "PINGAN_TOPIC_PREFIX": prefix})
    expected = expected_topics(app_id, prefix)
    assert set(created) == set(expected)
    for name, want in expected.items():
        got = created[name]
        assert got["rf"] == 3 and got["min.insync.replicas"] == "2", name
        for key, value in want.items():
            assert got[key] == value, f"{name}: {key} is {got[key]!r}, the code says {value!r}"


def test_topic_script_is_clean_shell() -> None:
    shellcheck = required_tool("shellcheck", "apt-get install shellcheck")
    run([shellcheck, "-s", "sh", str(TOPIC_SCRIPT)], cwd=DEPLOY)


def test_k8s_topic_job_runs_the_same_script() -> None:
    cm = k8s_find("ConfigMap", "pingan-kafka-topics")
    assert cm["data"]["create-topics.sh"] == TOPIC_SCRIPT.read_text(encoding="utf-8"), (
        "deploy/k8s/topics-job.yaml must embed deploy/kafka/create-topics.sh verbatim")


def test_strimzi_topics_match_the_code() -> None:
    kafka = k8s_find("Kafka", "pingan-kafka")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    pool = k8s_find("KafkaNodePool", "dual-role")
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    declared = {}
    for _, doc in k8s_docs():
        if doc.get("kind") == "KafkaTopic":
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "pingan-kafka"
            declared[doc["spec"].get("topicName", doc["metadata"]["name"])] = doc["spec"]
    expected = expected_topics()
    assert set(declared) == set(expected)
    for name, want in expected.items():
        spec = declared[name]
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2, name
        assert spec["partitions"] == want["partitions"], name
        for key in ("retention.ms", "cleanup.policy"):
            if key in want:
                assert str(spec["config"][key]) == want[key], name


# ---- Dockerfile -------------------------------------------------------------------------------------------------

def test_dockerfile_installs_every_package_folder() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = {d.split("/")[0] for d in pyproject["tool"]["setuptools"]["package-dir"].values()}
    copied = set(re.findall(r"^COPY\s+(?!--from)(\S+)\s", text, re.M))
    assert folders <= copied, f"the image would lack {folders - copied}"
    assert {"pyproject.toml", "README.md"} <= {w for line in re.findall(r"^COPY\s+(.*)$", text, re.M)
                                               for w in line.split()}
    ignored = {line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert not (folders | {"pyproject.toml", "README.md"}) & ignored
    exposed = set(re.findall(r"^EXPOSE\s+(.*)$", text, re.M)[0].split())
    defaults = Settings()
    assert {str(defaults.http_port), str(defaults.metrics_port)} <= exposed
    assert 'ENTRYPOINT ["pingan"]' in text
    assert re.search(r"^USER\s+(?!root|0\b)", text, re.M), "the image must not run as root"


# ---- Grafana ------------------------------------------------------------------------------------------------------

def dashboard_panels() -> list[dict[str, Any]]:
    out = []
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows nest their panels
    return out


def test_dashboard_panels_query_pingan_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    panels = [p for p in dashboard_panels() if p["type"] != "row"]
    assert len(panels) >= 8
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{panel['title']!r}: {target['expr']!r} selects no metric"
            stray = {n for n in names if not n.startswith("pingan_")}
            assert not stray, f"{panel['title']!r}: {sorted(stray)} are not pingan_ metrics"


def test_dashboard_covers_the_alerted_series() -> None:
    queried = {family(n) for p in dashboard_panels() for t in p.get("targets", []) for n in metric_names(t["expr"])}
    for family_name in ("pingan_consumer_lag", "pingan_heartbeat_age_seconds", "pingan_notifications",
                        "pingan_broker_up", "pingan_intake_requests"):
        assert family_name in queried, f"no panel shows {family_name}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = required_tool("promtool", PROMTOOL_HINT)
    rules = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            # Grafana's interval variables are not PromQL; substitute what they expand to.
            expr = re.sub(r"\$__(rate_)?interval|\$__range", "5m", target["expr"])
            rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId'].lower()}", "expr": expr})
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run([promtool, "check", "rules", "dashboard-rules.yml"], cwd=tmp_path)


def test_grafana_provisioning_matches_compose(compose: dict[str, Any]) -> None:
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["apiVersion"] == 1
    (ds,) = datasource["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    assert any(p.endswith("9090") for p in compose["services"]["prometheus"]["ports"])
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "pingan.yml")["providers"][0]
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# ---- metric names against the code -------------------------------------------------------------------------------

def test_every_referenced_metric_is_defined_in_core_metrics() -> None:
    if not (ROOT / "core" / "metrics.py").is_file():
        pytest.skip("core/metrics.py does not exist yet")
    defined = defined_metric_families() | {"up"}
    exprs = [r["expr"] for r in alert_rules().values()]
    exprs += [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    referenced = {family(n) for e in exprs for n in metric_names(e)}
    pending = (referenced - defined) & PENDING_METRICS
    unknown = referenced - defined - PENDING_METRICS
    assert not unknown, f"rules or dashboard use metrics core/metrics.py does not define: {sorted(unknown)}"
    if pending:
        warnings.warn(f"not yet defined in core/metrics.py (alerts on them fire as absent): {sorted(pending)}",
                      stacklevel=1)


# ---- Kubernetes ---------------------------------------------------------------------------------------------------

REQUIRED_SPEC = {
    "Deployment": ("spec.selector.matchLabels", "spec.template.metadata.labels", "spec.template.spec.containers"),
    "Service": ("spec.selector", "spec.ports"),
    "ConfigMap": ("data",),
    "Secret": ("stringData",),
    "Job": ("spec.template.spec.containers", "spec.template.spec.restartPolicy"),
    "PodDisruptionBudget": ("spec.selector.matchLabels",),
    "Namespace": (),
    "Kafka": ("spec.kafka.listeners",),
    "KafkaNodePool": ("spec.replicas", "spec.roles", "spec.storage"),
    "KafkaTopic": ("spec.partitions", "spec.replicas"),
}


def dig(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{doc['kind']}/{doc['metadata']['name']}: no {dotted}"
        node = node[part]
    return node


def test_k8s_manifests_structure() -> None:
    docs = k8s_docs()
    assert docs
    for path, doc in docs:
        if doc.get("kind") == "Kustomization":
            listed = set(doc["resources"])
            assert all((K8S / r).is_file() for r in listed), path
            # everything but the Strimzi resources (they need the operator) is applied by `kubectl apply -k`
            assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "kafka-strimzi.yaml"}
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion and kind are required"
        assert doc.get("metadata", {}).get("name"), f"{path.name}: {doc['kind']} without metadata.name"
        assert doc["kind"] in REQUIRED_SPEC, f"{path.name}: unexpected kind {doc['kind']}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "pingan", f"{path.name}: {doc['metadata']['name']}"
        for field in REQUIRED_SPEC[doc["kind"]]:
            dig(doc, field)
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]
            if doc["kind"] == "Deployment":
                sel = doc["spec"]["selector"]["matchLabels"]
                assert sel.items() <= pod["metadata"]["labels"].items(), f"{path.name}: selector matches no pod"
            for c in pod["spec"]["containers"]:
                assert c.get("name") and c.get("image"), path.name
        if doc["kind"] in ("ConfigMap", "Secret"):
            values = doc.get("data") or doc.get("stringData")
            assert all(isinstance(v, str) for v in values.values()), f"{path.name}: values must be strings"


def test_k8s_settings_names_are_pingan_settings() -> None:
    known = settings_env_names()
    for kind, name in (("ConfigMap", "pingan-config"), ("Secret", "pingan-secrets")):
        doc = k8s_find(kind, name)
        keys = set(doc.get("data") or doc.get("stringData"))
        assert keys - known == set(), f"{kind}/{name}: not Pingan settings (typo?): {sorted(keys - known)}"
    config = k8s_find("ConfigMap", "pingan-config")["data"]
    secret = k8s_find("Secret", "pingan-secrets")["stringData"]
    assert "KAFKA_BOOTSTRAP_SERVERS" in config and "PINGAN_DATABASE_URL" in secret
    assert secret["PINGAN_DATABASE_URL"].startswith("postgresql://")
    assert config["PINGAN_HTTP_HOST"] == "0.0.0.0"


def pod_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_k8s_api_deployment_and_service() -> None:
    api = k8s_find("Deployment", "pingan-api")
    c = pod_container(api)
    assert c["args"] == ["api"]
    refs = {(r.get("configMapRef") or r.get("secretRef"))["name"] for r in c["envFrom"]}
    assert refs == {"pingan-config", "pingan-secrets"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    http_port = int(k8s_find("ConfigMap", "pingan-config")["data"]["PINGAN_HTTP_PORT"])
    assert ports["http"] == http_port
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in (http_port, "http"), probe
    ann = api["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == http_port
    assert ann["prometheus.io/path"] == "/metrics"
    svc = k8s_find("Service", "pingan-api")
    assert svc["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports) | set(ports.values())


def test_k8s_workers_are_bounded_by_partitions() -> None:
    worker = k8s_find("Deployment", "pingan-worker")
    c = pod_container(worker)
    assert c["args"] == ["worker"]
    assert 1 <= worker["spec"]["replicas"] <= topics.DEFAULT_PARTITIONS
    text = (K8S / "worker.yaml").read_text(encoding="utf-8")
    assert f"partition count ({topics.DEFAULT_PARTITIONS})" in text and "idle" in text
    metrics_port = int(k8s_find("ConfigMap", "pingan-config")["data"]["PINGAN_METRICS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == metrics_port
    ann = worker["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == metrics_port
    assert c["livenessProbe"]["httpGet"]["port"] in ("metrics", metrics_port)
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_k8s_manifests_against_the_kubernetes_schemas() -> None:
    validator = required_tool(
        "kubernetes-validate", "pip install kubernetes-validate, in the test extras: it bundles the Kubernetes "
        "JSON schemas and works offline")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name not in ("kustomization.yaml", "kafka-strimzi.yaml")]
    out = run([validator, "--strict", "-k", "1.30.0", *files], cwd=K8S)
    assert "did not validate" not in out.stdout + out.stderr


def test_docs_state_what_was_not_run() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "not run" in text.lower() or "not validated" in text.lower()
    for must in ("partition", "dedup_key", "PINGAN_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        assert must in text, must


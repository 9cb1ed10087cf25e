"""Static validation of deploy/docker-compose.yml and deploy/Dockerfile: the compose file parses offline (`docker
compose config` or docker-compose v1), its services, the 3-node KRaft Kafka cluster, the Pingan services' settings,
and what the image installs. Shared helpers: tests/fixtures/deploy.py.
"""

import re
import subprocess
from typing import Any

import pytest
import yaml

from pingan.settings import Settings
from tests.fixtures.deploy import (
    COMPOSE_FILE,
    DEPLOY,
    KAFKA_BROKERS,
    PINGAN_SERVICES,
    ROOT,
    WORKERS,
    optional_tool,
    required_tool,
    run,
    service_env,
    settings_env_names,
)

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

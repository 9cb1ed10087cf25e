"""deploy/kafka/local-cluster and pom.xml: the script is shellcheck-clean, and the Kafka version and settings it runs
(what tests/kafka tests) are the ones the compose file and the Strimzi resource deploy. Static: no JVM is started."""

import re
import xml.etree.ElementTree as ET
from typing import Any

from tests.fixtures.deploy import DEPLOY, ROOT, k8s_find, required_tool, run, service_env

SCRIPT = DEPLOY / "kafka" / "local-cluster"
POM = DEPLOY / "kafka" / "pom.xml"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_kafka_version() -> str:
    root = ET.parse(POM).getroot()
    version = root.find("m:properties/m:kafka.version", NS)
    assert version is not None and version.text
    deps = {d.findtext("m:artifactId", namespaces=NS) for d in root.findall("m:dependencies/m:dependency", NS)}
    assert {"kafka_2.13", "log4j-slf4j-impl"} <= deps, deps
    return version.text


def script_settings() -> dict[str, str]:
    """The server.properties lines local-cluster writes (with the shell variables as written)."""
    text = SCRIPT.read_text(encoding="utf-8")
    block = text.split('cat >"$dir/server.properties" <<EOF', 1)[1].split("\nEOF", 1)[0]
    return dict(line.split("=", 1) for line in block.splitlines() if line and not line.startswith("#"))


def test_local_cluster_is_shellcheck_clean() -> None:
    shellcheck = required_tool("shellcheck", "apt-get install shellcheck")
    run([shellcheck, str(SCRIPT)], cwd=DEPLOY)
    run([shellcheck, str(ROOT / ".ci" / "run")], cwd=ROOT)


def test_one_kafka_version_everywhere(compose: dict[str, Any]) -> None:
    version = pom_kafka_version()
    assert re.search(rf"^KAFKA_VERSION={re.escape(version)}$", SCRIPT.read_text(encoding="utf-8"), re.M)
    images = {svc["image"] for name, svc in compose["services"].items() if name.startswith("kafka")}
    assert images == {f"apache/kafka:{version}"}, images
    assert k8s_find("Kafka", "pingan-kafka")["spec"]["kafka"]["version"] == version


def test_local_cluster_settings_match_compose(compose: dict[str, Any]) -> None:
    props = script_settings()
    env = service_env(compose, "kafka-1")
    # For 3 nodes the script's shell arithmetic gives 3 and 2 (rf=min(n,3), isr=2 for n>=2).
    assert props["process.roles"] == env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "$rf"
    assert str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "$isr"
    assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == str(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == "2"
    for key in ("auto.create.topics.enable", "unclean.leader.election.enable"):
        compose_key = "KAFKA_" + key.upper().replace(".", "_")
        assert props[key] == str(env[compose_key]).lower() == "false", key
    assert props["num.partitions"] == str(env["KAFKA_NUM_PARTITIONS"]) == "3"
    text = SCRIPT.read_text(encoding="utf-8")
    assert 'rf=$(( n < 3 ? n : 3 ))' in text and 'isr=$(( n < 2 ? 1 : 2 ))' in text

"""The topic script (deploy/kafka/create-topics.sh, run by compose's kafka-init and the k8s Job) and Strimzi's
KafkaTopics against the topics the code uses: streams/topics.py and faust's own internal topics. Shared helpers:
tests/fixtures/deploy.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pingan.settings import Settings
from pingan.streams import topics
from tests.fixtures.deploy import DEPLOY, ROOT, TOPIC_SCRIPT, k8s_docs, k8s_find, required_tool, run

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

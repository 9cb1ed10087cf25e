"""The 3-node Apache Kafka cluster that tests/kafka runs on, driven through deploy/kafka/local-cluster.

One cluster per test run (a session fixture in conftest.py), in a run directory of the test session's own, so two
engineers' runs on one machine never share brokers. The jars come from the script's cache outside the repository
(fetched by Maven the first time).
"""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "kafka" / "local-cluster"


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


@dataclass
class Cluster:
    run_dir: Path
    bootstrap: str = ""
    started_s: float = 0.0
    down_nodes: set[int] = field(default_factory=set)

    def _script(self, *args: str, timeout_s: float = 240) -> str:
        # PYTHON: the script asks the cluster for readiness with kafka-python, which this interpreter has.
        env = {**os.environ, "PINGAN_KAFKA_RUN_DIR": str(self.run_dir), "PYTHON": sys.executable}
        done = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"local-cluster {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout.strip()

    def up(self, nodes: int = 3) -> None:
        t0 = time.monotonic()
        self.bootstrap = self._script("up", str(nodes)).splitlines()[-1]
        self.started_s = time.monotonic() - t0

    def down(self) -> None:
        self._script("down", timeout_s=120)

    def kill(self, node: int, signal: str = "KILL") -> None:
        self._script("kill", str(node), signal)
        self.down_nodes.add(node)

    def stop(self, node: int) -> None:
        """A clean stop: the broker hands its leaderships over (controlled shutdown) before it exits."""
        self._script("stop", str(node))
        self.down_nodes.add(node)

    def start(self, node: int) -> None:
        self._script("start", str(node))
        self.down_nodes.discard(node)

    def admin(self) -> KafkaAdminClient:
        # Only the nodes that are up: a client bootstrapping from a dead one fails instead of trying the next.
        live = ",".join(f"127.0.0.1:{(self.run_dir / f'node-{i}' / 'port').read_text().strip()}"
                        for i in (1, 2, 3) if i not in self.down_nodes)
        return KafkaAdminClient(bootstrap_servers=live, client_id="pingan-test",
                                request_timeout_ms=10_000, reconnect_backoff_max_ms=1000)

    def partition(self, topic: str, partition: int) -> dict[str, object]:
        """The partition's metadata: leader_id, replica_nodes, isr_nodes."""
        admin = self.admin()
        try:
            for desc in admin.describe_topics([topic]):
                for p in desc["partitions"]:
                    if p["partition_index"] == partition:
                        return dict(p)
        finally:
            admin.close()
        raise AssertionError(f"{topic}[{partition}] not found")

    def leader(self, topic: str, partition: int) -> int:
        """The leader's node id; -1 while there is none, or while the metadata still sends the client to a node
        that is dead (the controller fences it only after broker.session.timeout.ms, 9 s)."""
        try:
            return int(self.partition(topic, partition)["leader_id"])  # type: ignore[call-overload]
        except KafkaError:
            return -1

    def fully_replicated(self, topics: list[str]) -> bool:
        """Every partition of these topics has all its replicas in sync (after a broker came back)."""
        try:
            admin = self.admin()
        except KafkaError:
            return False
        try:
            return all(set(p["isr_nodes"]) == set(p["replica_nodes"])
                       for desc in admin.describe_topics(topics) for p in desc["partitions"])
        except KafkaError:
            return False
        finally:
            admin.close()

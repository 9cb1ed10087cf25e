"""tests/kafka: Pingan on a real 3-node Apache Kafka 4.4 cluster (deploy/kafka/local-cluster), never on tansu.

Every test here is marked `kafka` (run them alone with `pytest -m kafka`). The cluster starts once per test run and
stops at its end. Without java or mvn the tests skip, except under CI=true, where that is a failure: CI must run them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pingan.streams.broker_profile import broker_kind
from tests.integration.two_workers_rig import Rig
from tests.kafka.cluster import Cluster, missing_tools
from tests.kafka.rig import make_rig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_tools()
    if missing:
        message = f"tests/kafka need {' and '.join(missing)} (apt-get install openjdk-17-jre-headless maven)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster(tmp_path_factory.mktemp("kafka-cluster"))
    cluster.up(3)
    print(f"\nApache Kafka 4.4.0, 3 nodes up in {cluster.started_s:.1f} s: {cluster.bootstrap}")
    try:
        # The whole point: these tests must never pass on the embedded broker by accident.
        assert broker_kind(cluster.bootstrap) == "kafka", f"{cluster.bootstrap} is not Apache Kafka"
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def kafka_bootstrap(kafka_cluster: Cluster) -> str:
    return kafka_cluster.bootstrap


@pytest.fixture
def rig(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Rig]:
    """Workers' shared settings, store and console sink on the cluster (tests/kafka/rig.py)."""
    yield from make_rig(tmp_path, kafka_bootstrap)

"""Intake through a broker outage: 200 events, every 2xx reaches the log once, nothing is sent twice.

The test plays `pingan up`'s supervisor: it owns a tansu broker, kills it, restarts it on the same port,
re-creates the topics and restarts the worker, whose first assignment re-publishes what was accepted.
"""

import os
import signal
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from pingan.handlers.channels.console import read_sink
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.broker import EmbeddedBroker
from pingan.streams.topics import ensure_topics
from pingan.web.app import create_api
from tests.fixtures.stack import pingan_env, wait_for

TOKENS = {"api": "t-api", "alertmanager": "t-am", "cap": "t-cap"}


def created_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM actions WHERE kind = 'created'")).scalar_one())


def test_200_events_across_a_broker_outage(tmp_path: Path, worker_factory) -> None:  # type: ignore[no-untyped-def]
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
        settings = Settings(data_dir=tmp_path, topic_prefix=env["PINGAN_TOPIC_PREFIX"])
        store = Store(settings.resolved_database_url)
        client = TestClient(create_api(settings, store, tokens=TOKENS))
        headers = {"Authorization": "Bearer t-api"}
        ensure_topics(broker.bootstrap, settings)
        worker = worker_factory(env)

        def post(n: int) -> str:
            report = {"category": "accident_disaster", "subtype": "fire", "grade": "IV",
                      "title": f"仓库起火 {n}", "dedup_key": f"outage-{n}"}
            response = client.post("/v1/incidents", json=report, headers=headers)
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        ids = [post(n) for n in range(50)]
        wait_for(lambda: created_count(store) == 50, 60, 0.2, "the first 50 before the outage")

        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)  # memory, topics and offsets gone
        wait_for(lambda: not broker.is_alive(), 5, 0.05, "the broker to die")
        ids += [post(n) for n in range(50, 150)]  # the broker is down: intake still answers 202

        broker.restart(stop_timeout_s=0.5)
        ensure_topics(broker.bootstrap, settings)
        worker.stop()
        worker_factory(env)
        ids += [post(n) for n in range(150, 200)]

        try:
            wait_for(lambda: created_count(store) == 200, 90, 0.5, "all 200 created")
            wait_for(lambda: len(read_sink(tmp_path / "console.log")) == 200, 60, 0.5, "200 notifications")
        except AssertionError:
            raise AssertionError(f"created={created_count(store)}") from None
        assert len(set(ids)) == 200
        with store.engine.connect() as conn:
            per_incident = conn.execute(text(
                "SELECT incident_id, COUNT(*) FROM actions WHERE kind IN ('created', 'delivered') "
                "GROUP BY incident_id, kind HAVING COUNT(*) > 1")).all()
        assert per_incident == []  # no incident created twice, no notification delivered twice
        sent = [r["incident_id"] for r in read_sink(tmp_path / "console.log")]
        assert sorted(sent) == sorted(ids)
        store.close()
    finally:
        broker.stop(timeout_s=0.5)

"""faust's own Table on Apache Kafka: its changelog recovers every update after a restart.

On tansu the same recovery lost updates (48 of 50 seen, /work/shared/broker-notes.md: its ListOffsets "latest" is
wrong), which is why the triage agent's dedup index is an in-process cache in front of the store and not a Table.
This is the evidence for docs/architecture.md's table that Kafka does not have that fault. The store still decides
every correlation, so the pipeline keeps its cache (a Table would duplicate the store's index).
"""

import json
import sys
import time
from pathlib import Path

from kafka import KafkaProducer

from pingan.settings import Settings
from pingan.streams.topics import RAW, ensure_topics
from tests.fixtures.stack import Proc, pingan_env, wait_for

WORKER = Path(__file__).with_name("faust_table_worker.py")
KEYS, PER_KEY = 5, 10


def read(report: Path) -> dict[str, int]:
    try:
        return dict(json.loads(report.read_text()))
    except (OSError, ValueError):
        return {}


def running(proc: Proc, report: Path) -> bool:
    assert proc.popen.poll() is None, proc.log_tail()
    return report.exists()


def test_table_changelog_recovers_every_update(tmp_path: Path, kafka_bootstrap: str) -> None:
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
    env = pingan_env(tmp_path / "one", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    settings = Settings(topic_prefix=env["PINGAN_TOPIC_PREFIX"], app_id=env["PINGAN_APP_ID"])
    ensure_topics(kafka_bootstrap, settings)
    report = tmp_path / "table.json"

    first = Proc([sys.executable, str(WORKER)], {**env, "TABLE_REPORT": str(report)}, tmp_path / "first.log")
    try:
        wait_for(lambda: running(first, report), 120, 0.2, "the first worker to run")
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")
        for i in range(KEYS * PER_KEY):
            producer.send(settings.topic(RAW), key=f"k{i % KEYS}".encode(), value=b"{}")
        producer.flush(30)
        producer.close()
        want = {f"k{k}": PER_KEY for k in range(KEYS)}
        wait_for(lambda: read(report) == want, 60, 0.2, f"the first worker to count {want}")
    finally:
        first.stop()

    # A new data dir and memory:// tables: the second worker knows only what the changelog holds.
    report.unlink()
    env2 = {**env, "PINGAN_DATA_DIR": str(tmp_path / "two"), "TABLE_REPORT": str(report)}
    started = time.monotonic()
    second = Proc([sys.executable, str(WORKER)], env2, tmp_path / "second.log")
    try:
        wait_for(lambda: running(second, report), 120, 0.2, "the second worker to recover and run")
        time.sleep(1.5)  # a few dumps: the recovered state, not a partial one
        got = read(report)
        print(f"\nfaust Table on Kafka after a restart: {sum(got.values())} of {KEYS * PER_KEY} updates recovered "
              f"from the changelog ({got}), running {time.monotonic() - started:.1f} s after the restart")
        assert got == want, second.log_tail()
    finally:
        second.stop()

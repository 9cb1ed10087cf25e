"""The broker wiring against a real tansu process: start/restart, topics, kafka-python, tail and faust."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.broker import BrokerError, EmbeddedBroker, free_port, port_accepts
from pingan.streams.process import die_with_parent
from pingan.streams.tail import UnknownTopic, tail
from pingan.streams.topics import TopicSetupError, ensure_topics

FORWARD_WORKER = Path(__file__).with_name("faust_forward_worker.py")


def settings_for(bootstrap: str, prefix: str) -> Settings:
    # KAFKA_BOOTSTRAP_SERVERS is the field's alias: by field name it would be ignored.
    return Settings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, topic_prefix=prefix)


@pytest.fixture
def admin(broker_bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker_bootstrap, client_id="pingan-test")
    yield client
    client.close()


def partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(10)
    producer.close(5)


def test_broker_accepts_connections(broker_bootstrap: str, admin: KafkaAdminClient) -> None:
    host, port = broker_bootstrap.rsplit(":", 1)
    assert port_accepts(int(port), host)
    assert isinstance(admin.list_topics(), list)


def test_ensure_topics_creates_every_topic_with_its_partitions(
    broker_bootstrap: str, topic_prefix: str, admin: KafkaAdminClient
) -> None:
    settings = settings_for(broker_bootstrap, topic_prefix)
    names = ensure_topics(broker_bootstrap, settings)
    assert names == [topic_prefix + t.name for t in topics.TOPICS]
    assert partition_counts(admin, names) == dict.fromkeys(names, 3)
    # Again: existing topics are fine, nothing changes.
    assert ensure_topics(broker_bootstrap, settings) == names
    assert set(names) <= set(admin.list_topics())


def test_ensure_topics_partition_override(
    broker_bootstrap: str, topic_prefix: str, admin: KafkaAdminClient
) -> None:
    names = ensure_topics(broker_bootstrap, settings_for(broker_bootstrap, topic_prefix), partitions=2)
    assert partition_counts(admin, names) == dict.fromkeys(names, 2)


def test_ensure_topics_waits_for_a_broker_that_is_starting(tmp_path: Path, topic_prefix: str) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    result: list[object] = []
    settings = settings_for(broker.bootstrap, topic_prefix)
    caller = threading.Thread(target=lambda: result.append(ensure_topics(broker.bootstrap, settings)))
    caller.start()
    time.sleep(0.5)  # ensure_topics is now retrying against a closed port
    with broker:
        caller.join(15)
        assert result == [[topic_prefix + t.name for t in topics.TOPICS]]


def test_ensure_topics_gives_up_on_an_absent_broker(topic_prefix: str) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TopicSetupError, match="unreachable"):
        ensure_topics(bootstrap, settings_for(bootstrap, topic_prefix), timeout_s=1.0)
    assert time.monotonic() - started < 5


def test_kafka_python_round_trip_keeps_keys_in_order(broker_bootstrap: str, topic_prefix: str) -> None:
    settings = settings_for(broker_bootstrap, topic_prefix)
    ensure_topics(broker_bootstrap, settings)
    topic = settings.topic(topics.RAW)
    sent = [(f"key-{i % 4}".encode(), f"value-{i}".encode()) for i in range(20)]
    produce(broker_bootstrap, topic, sent)

    consumer = KafkaConsumer(bootstrap_servers=broker_bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_wait_ms=20)
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    received = []
    deadline = time.monotonic() + 10
    while len(received) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            received += records
    consumer.close()

    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    partitions_by_key: dict[bytes, set[int]] = {}
    for r in received:
        partitions_by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())
    # Per key, the order of production is kept.
    for key in partitions_by_key:
        assert [r.value for r in received if r.key == key] == [v for k, v in sent if k == key]


def test_restart_keeps_the_port_and_comes_back_empty(tmp_path: Path, topic_prefix: str) -> None:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        bootstrap, pid = broker.bootstrap, broker.pid
        settings = settings_for(bootstrap, topic_prefix)
        names = ensure_topics(bootstrap, settings)
        # Not idempotent: the broker forgets producer ids on restart, and kafka-python's idempotent producer
        # (its default) then fails for good (InitProducerId answers UnknownError).
        producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
        producer.send(names[0], key=b"k", value=b"before").get(10)

        started = time.monotonic()
        broker.restart(stop_timeout_s=1.0)  # tansu drains connected clients for 5 s; nothing to flush here
        assert time.monotonic() - started < 4

        assert (broker.bootstrap, broker.is_alive()) == (bootstrap, True)
        assert broker.pid != pid
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        assert not set(names) & set(admin.list_topics())  # memory:// storage is gone
        admin.close()
        ensure_topics(bootstrap, settings)
        # A client from before the restart reconnects to the same address by itself.
        producer.send(names[0], key=b"k", value=b"after").get(10)
        producer.close(5)
        assert [r.value for r in tail(bootstrap, names[0], follow=False)] == [b"after"]
    assert not broker.is_alive()


def test_start_refuses_a_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        broker = EmbeddedBroker(port=sock.getsockname()[1])
        with pytest.raises(BrokerError, match="already in use"):
            broker.start()
        assert not broker.is_alive()


def test_broker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    script = ("from pingan.streams.broker import EmbeddedBroker; import time\n"
              "b = EmbeddedBroker(); b.start(); print(b.pid, b.port, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              preexec_fn=die_with_parent)
    try:
        assert parent.stdout is not None
        pid, port = (int(x) for x in parent.stdout.readline().split())
        assert port_accepts(port)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while port_accepts(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not port_accepts(port)
    assert not running(pid)


def running(pid: int) -> bool:
    # An orphan is reparented; if the new parent does not reap it, a dead one lingers as a zombie ("Z").
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_tail_reads_what_was_produced(broker_bootstrap: str, topic_prefix: str) -> None:
    settings = settings_for(broker_bootstrap, topic_prefix)
    ensure_topics(broker_bootstrap, settings)
    topic = settings.topic(topics.INCIDENTS)
    sent = [(f"inc-{i}".encode(), f'{{"n": {i}}}'.encode()) for i in range(10)]
    produce(broker_bootstrap, topic, sent)

    records = list(tail(broker_bootstrap, topic, follow=False, timeout_s=10))
    assert sorted((r.key, r.value) for r in records) == sorted(sent)
    assert all(r.offset >= 0 and 0 <= r.partition < 3 for r in records)
    assert len(list(tail(broker_bootstrap, topic, max_messages=3, timeout_s=10))) == 3

    # Not from the beginning: only what arrives after tailing started.
    later = threading.Timer(1.0, produce, (broker_bootstrap, topic, [(b"new", b"fresh")]))
    later.start()
    fresh = list(tail(broker_bootstrap, topic, from_beginning=False, max_messages=1, timeout_s=10))
    later.join()
    assert [(r.key, r.value) for r in fresh] == [(b"new", b"fresh")]


def test_tail_of_a_missing_topic_fails_and_does_not_create_it(
    broker_bootstrap: str, topic_prefix: str, admin: KafkaAdminClient
) -> None:
    with pytest.raises(UnknownTopic):
        list(tail(broker_bootstrap, topic_prefix + "missing", follow=False))
    assert topic_prefix + "missing" not in admin.list_topics()


def test_faust_worker_forwards_with_the_configured_fetch_wait(
    broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(broker_bootstrap, topic_prefix)
    ensure_topics(broker_bootstrap, settings)
    raw, incidents = settings.topic(topics.RAW), settings.topic(topics.INCIDENTS)
    produce(broker_bootstrap, raw, [(b"inc-1", b'{"first": true}')])  # before the worker: read from earliest

    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_TOPIC_PREFIX=topic_prefix,
               PINGAN_APP_ID=f"pingan-test-{uuid.uuid4().hex[:8]}", PINGAN_DATA_DIR=str(tmp_path),
               PINGAN_CONSUMER_FETCH_WAIT_MS="25", FORWARD_REPORT=str(report))
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, str(FORWARD_WORKER)], env=env, cwd=tmp_path, stdout=log,
                                  stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    try:
        first = list(tail(broker_bootstrap, incidents, max_messages=1, timeout_s=60))
        assert [(r.key, r.value) for r in first] == [(b"inc-1", b'{"first": true}')], log_path.read_text()

        # Informational only (run with -s): timing assertions would be flaky on a busy machine.
        producer = KafkaProducer(bootstrap_servers=broker_bootstrap, acks="all")
        sent_at: list[float] = []

        def send_second() -> None:
            sent_at.append(time.monotonic())
            producer.send(raw, key=b"inc-2", value=b"2")
            producer.flush(10)

        later = threading.Timer(0.5, send_second)
        later.start()
        second = list(tail(broker_bootstrap, incidents, from_beginning=False, max_messages=1, timeout_s=30))
        print(f"one faust hop after the group join: {(time.monotonic() - sent_at[0]) * 1000:.0f} ms")
        later.join()
        producer.close(5)
        assert [(r.key, r.value) for r in second] == [(b"inc-2", b"2")]
        assert json.loads(report.read_text()) == {"consumer": 25, "fetcher": 25}
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

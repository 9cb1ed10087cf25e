"""streams/broker_profile.py: which broker, and the settings and workarounds that follow (no broker needed: the
cluster's answer is stubbed)."""

import pytest

from pingan.settings import Settings
from pingan.streams import broker_profile
from pingan.streams.broker_profile import kind_of, profile, resolved


def stub(monkeypatch: pytest.MonkeyPatch, cluster_id: str, brokers: int) -> None:
    monkeypatch.setattr(broker_profile, "_describe", lambda bootstrap, timeout_s: (cluster_id, brokers))


def settings(**kw: object) -> Settings:
    return Settings(kafka_bootstrap_servers="127.0.0.1:1", **kw)  # type: ignore[arg-type]


def test_kind_from_the_cluster_id() -> None:
    assert kind_of("tansu_cluster") == "tansu"
    assert kind_of("Ti_x441pSousAb5ta-a-3g") == "kafka"


def test_tansu_keeps_every_workaround(monkeypatch: pytest.MonkeyPatch) -> None:
    stub(monkeypatch, "tansu_cluster", 1)
    p = profile(settings())
    assert (p.kind, p.replication_factor, p.fetch_wait_ms, p.idempotent_producer, p.takeover_republish) == (
        "tansu", 1, 20, False, True)


def test_kafka_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    stub(monkeypatch, "abc", 3)
    s, p = resolved(settings())
    assert (p.kind, p.replication_factor, p.fetch_wait_ms, p.idempotent_producer, p.takeover_republish) == (
        "kafka", 3, 500, True, False)
    assert (s.broker_kind, s.topic_replication_factor, s.consumer_fetch_wait_ms, s.takeover_republish) == (
        "kafka", 3, 500, False)
    assert "Apache Kafka, 3 broker(s); topics RF 3" in p.describe()
    stub(monkeypatch, "abc", 1)
    assert profile(settings()).replication_factor == 1  # a one-node cluster cannot hold 3 replicas


def test_explicit_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    stub(monkeypatch, "abc", 5)
    p = profile(settings(topic_replication_factor=2, consumer_fetch_wait_ms=50, takeover_republish=True))
    assert (p.replication_factor, p.fetch_wait_ms, p.takeover_republish) == (2, 50, True)
    stub(monkeypatch, "abc", 1)
    assert profile(settings(broker_kind="tansu")).kind == "tansu"


def test_faust_agents_produce_idempotently_on_kafka_only() -> None:
    from pingan.streams.faust_app import create_app

    kafka = create_app(settings(broker_kind="kafka", topic_replication_factor=3, consumer_fetch_wait_ms=500))
    assert kafka.producer._settings_extra() == {"acks": "all", "enable_idempotence": True}
    assert kafka.consumer_fetch_wait_ms == 500
    tansu = create_app(settings(broker_kind="tansu"))
    assert tansu.producer._settings_extra() == {}
    assert tansu.consumer_fetch_wait_ms == 20  # unresolved settings fall back to tansu's, never to faust's 1500

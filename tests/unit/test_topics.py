"""The pure parts of the broker wiring: topic specs, create requests, and the faust app's configuration."""

import dataclasses
from datetime import timedelta

import pytest

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.faust_app import PinganApp, app_topics, bootstrap_servers, create_app
from pingan.streams.topics import TOPICS, TopicSpec, spec, topic_requests

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


def make_settings(**kwargs: object) -> Settings:
    return Settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", app_id="pingan-unit", **kwargs)


def test_the_three_topics_and_their_defaults() -> None:
    assert [t.name for t in TOPICS] == [topics.RAW, topics.INCIDENTS, topics.NOTIFICATIONS]
    assert [topics.RAW, topics.INCIDENTS, topics.NOTIFICATIONS] == ["incidents.raw", "incidents", "notifications"]
    assert all(t.partitions == topics.DEFAULT_PARTITIONS == 3 for t in TOPICS)
    assert all(t.retention_ms == SEVEN_DAYS_MS for t in TOPICS)
    assert "dedup_key" in spec(topics.RAW).key_doc
    assert all("incident id" in t.key_doc for t in TOPICS[1:])


def test_topic_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TOPICS[0].partitions = 4  # type: ignore[misc]
    assert TopicSpec("x") == TopicSpec("x", 3, SEVEN_DAYS_MS, "")


def test_spec_of_an_unknown_topic() -> None:
    with pytest.raises(KeyError, match="unknown topic"):
        spec("nope")


def test_topic_requests_apply_prefix_partitions_and_retention() -> None:
    requests = topic_requests(make_settings(topic_prefix="dev."))
    assert list(requests) == ["dev.incidents.raw", "dev.incidents", "dev.notifications"]
    assert requests["dev.incidents"] == {
        "num_partitions": 3, "replication_factor": 1, "configs": {"retention.ms": str(SEVEN_DAYS_MS)}}
    overridden = topic_requests(make_settings(), partitions=6)
    assert {r["num_partitions"] for r in overridden.values()} == {6}


def test_no_actions_topic_is_declared_or_created() -> None:
    # The command-chain log's one copy is the store (store/log.py); since issue 15 nothing produces to an `actions`
    # topic and nothing reads one (`pingan tail actions` follows the store), so it is neither declared nor created.
    assert not hasattr(topics, "ACTIONS")
    assert "actions" not in [t.name for t in TOPICS]
    assert not [name for name in topic_requests(make_settings(topic_prefix="p.")) if name.endswith("actions")]
    with pytest.raises(KeyError, match="unknown topic"):
        spec("actions")


def test_create_app_is_tuned_for_tansu(tmp_path: object) -> None:
    app = create_app(make_settings(consumer_fetch_wait_ms=33, broker_session_timeout_s=8,
                                   broker_heartbeat_interval_s=1.5))
    conf = app.conf
    assert isinstance(app, PinganApp) and app.consumer_fetch_wait_ms == 33
    assert conf.id == "pingan-unit"
    assert [str(u) for u in conf.broker] == ["kafka://127.0.0.1:9"]
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (8.0, 1.5)
    assert conf.processing_guarantee.value == "at_least_once"
    assert not conf.web_enabled
    assert conf.topic_partitions == 3
    assert conf.consumer_auto_offset_reset == "earliest"
    assert str(conf.store) == "memory:"
    # The fetch-wait transport is this app's own, not a patch on faust's classes.
    assert type(app.transport).__name__ == "_FetchWaitTransport"
    assert type(create_app(make_settings()).transport) is type(app.transport)


def test_create_app_requires_a_bootstrap_server() -> None:
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=None)
    with pytest.raises(ValueError, match="KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap_servers(settings)


def test_app_topics_declare_every_topic_as_raw_bytes_with_str_keys() -> None:
    settings = make_settings(topic_prefix="p.")
    declared = app_topics(create_app(settings), settings)
    assert list(declared) == [t.name for t in TOPICS]
    for name, topic in declared.items():
        assert topic.get_topic_name() == "p." + name
        assert topic.partitions == 3
        assert topic.key_type is str
        assert topic.value_serializer == "raw"
        assert topic.retention == timedelta(days=7)

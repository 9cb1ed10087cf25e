"""The faust app factory, tuned per broker (streams/broker_profile.py says which; /work/shared/broker-notes.md
has tansu's faults):

- No exactly_once: tansu has no idempotent producer for aiokafka, and the worker would stop.
  Handlers are idempotent instead, with keys checked in the database.
- Session 10 s / heartbeat 2 s: tansu's group joins take about half the session timeout.
- A short consumer fetch wait on tansu: it does not answer a fetch early when data arrives, so latency is about
  the fetch wait, and faust hard-codes 1500 ms. Apache Kafka answers as soon as data arrives: 500 ms there.
  The app swaps in a consumer thread that applies settings.consumer_fetch_wait_ms; other faust apps in the same
  process are unaffected.
- Idempotent producers on Apache Kafka (the agents' sends), not on tansu.
- Skipped offsets are read again (streams/gap_fill.py): tansu sometimes shows a consumer a record before the one
  in front of it, and faust would take the jump for a compaction gap and never deliver the skipped record.
"""

import asyncio
import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TopicT, TransportT

from pingan.settings import Settings
from pingan.streams.broker_profile import TANSU_FETCH_WAIT_MS
from pingan.streams.gap_fill import GapFiller
from pingan.streams.topics import DEFAULT_PARTITIONS, TOPICS

log = logging.getLogger(__name__)

DEFAULT_FETCH_WAIT_MS = 1500  # faust's own value, kept when the app is built without create_app()


class _FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_consumer(self, loop: object) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_consumer(loop)  # type: ignore[arg-type]
        # aiokafka hands this value to its Fetcher in start(), which runs after this method returns.
        consumer._fetch_max_wait_ms = getattr(self.app, "consumer_fetch_wait_ms", DEFAULT_FETCH_WAIT_MS)
        return consumer


class _FetchWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """faust saw offset `offset_to` right after `offset_from - 1`: deliver what lies between before it."""
        filler: GapFiller | None = getattr(self.app, "gap_filler", None)
        records = [] if filler is None else await asyncio.to_thread(
            filler.fetch, tp.topic, tp.partition, offset_from, offset_to)
        for record in records:
            # As faust's own drain loop does: a rebalance that suspends the flow drops the message, and the new
            # owner reads it again from the committed offset.
            await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())
        log.warning("the broker skipped offsets %d..%d of %s[%d] for this consumer; %d re-read", offset_from,
                    offset_to - 1, tp.topic, tp.partition, len(records))
        if len(records) < offset_to - offset_from:
            await super()._add_gap(tp, offset_from, offset_to)  # a real gap: let faust commit past it


class _IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        # faust turns idempotence on only inside its transactions (exactly_once); the agents' sends want it on
        # Apache Kafka anyway: a send retried across a leader change then lands once. tansu's InitProducerId fails.
        extra = dict(super()._settings_extra())
        if getattr(self.app, "idempotent_producer", False):
            extra.update(acks="all", enable_idempotence=True)
        return extra


class _FetchWaitTransport(faust_aiokafka.Transport):
    Consumer = _FetchWaitConsumer
    Producer = _IdempotentProducer


class PinganApp(faust.App):
    """faust.App whose consumer transport applies `consumer_fetch_wait_ms`."""

    consumer_fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS
    gap_filler: GapFiller | None = None
    idempotent_producer: bool = False
    resumed_once: threading.Event | None = None  # the first assignment's re-publish is over (streams/takeover.py)

    def _new_transport(self) -> TransportT:
        # The agents' producer is made by this transport too (App._new_producer), so both sides are ours.
        return cast(TransportT, _FetchWaitTransport(self.conf.broker_consumer, self))


def bootstrap_servers(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise ValueError(
            "no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS (or PINGAN_KAFKA_BOOTSTRAP_SERVERS), "
            "or let `pingan up` start the embedded broker and pass its address on"
        )
    return settings.kafka_bootstrap_servers


def create_app(settings: Settings) -> PinganApp:
    app = PinganApp(
        settings.app_id,
        # faust splits "a:9092,b:9092" itself and gives every host the first URL's scheme.
        broker=f"kafka://{bootstrap_servers(settings)}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        topic_partitions=DEFAULT_PARTITIONS,
        # Unset only when the settings were not resolved against the broker (streams/broker_profile.py): tansu's.
        topic_replication_factor=settings.topic_replication_factor or 1,
        processing_guarantee="at_least_once",
        producer_acks=-1,  # costs nothing on one broker, and is right on a real cluster
        consumer_auto_offset_reset="earliest",
    )
    app.consumer_fetch_wait_ms = settings.consumer_fetch_wait_ms or TANSU_FETCH_WAIT_MS
    app.idempotent_producer = settings.broker_kind == "kafka"
    app.gap_filler = GapFiller(bootstrap_servers(settings))
    return app


def app_topics(app: faust.App, settings: Settings, partitions: int | None = None) -> dict[str, TopicT]:
    """faust topics for every spec in streams/topics.py, keyed by logical (unprefixed) name.

    Declared with the spec's partitions and retention, so a worker that declares them creates them right.
    Values are raw bytes: agents parse JSON with pydantic themselves.
    """
    return {
        spec.name: app.topic(
            settings.topic(spec.name),
            key_type=str,
            value_serializer="raw",
            partitions=partitions or spec.partitions,
            retention=timedelta(milliseconds=spec.retention_ms),
        )
        for spec in TOPICS
    }

"""Work lost in transit: re-published once this worker has read its partition to the end and it is still undone.

The store says what is unfinished (events not triaged, incidents without a response); the faust consumer says
whether this worker has read a partition up to its high-water mark. An item that is unfinished although its
partition has been read to the end, and stays so for GRACE_S (the agent may still hold it in its buffer), was
skipped by the consumer: re-publish it, then wait twice as long before the next copy. Nothing is re-published
while a partition still has records to read, so a backlog is never copied (intents have the scheduler's own
re-publishing). Seen on tansu, where a consumer was shown offset n+1 before n, and faust dropped records fetched
just before a rebalance's seek (docs/architecture.md, "Several workers").
"""

import asyncio
import logging
import time
from collections.abc import Callable

import faust
from kafka import KafkaProducer

from pingan.bootstrap import Services
from pingan.handlers.incidents.heartbeat import BEAT_PREFIX
from pingan.streams import topics
from pingan.streams.producer import make_producer, publish_all
from pingan.streams.recovery import partition_of

log = logging.getLogger(__name__)

INTERVAL_S = 5.0
GRACE_S = 10.0
MAX_GRACE_S = 300.0


def caught_up(app: faust.App, topic_name: Callable[[str], str]) -> dict[str, set[int]]:
    """Logical topic -> the partitions of incidents.raw and incidents this worker has read to the high-water mark."""
    names = {topic_name(name): name for name in (topics.RAW, topics.INCIDENTS)}
    out: dict[str, set[int]] = {}
    consumer = app.consumer
    for tp in consumer.assignment():
        name = names.get(tp.topic)
        if name is None:
            continue
        highwater = consumer.highwater(tp)
        read = consumer._read_offset.get(tp)  # the last offset faust handed to an agent
        if highwater is not None and highwater >= 0 and (read is not None and read + 1 >= highwater or highwater == 0):
            out.setdefault(name, set()).add(tp.partition)
    return out


class Sweeper:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.waiting: dict[str, tuple[float, float]] = {}  # item -> (re-publish after, grace for the next copy)
        self.producer: KafkaProducer | None = None
        self.republished = 0

    def sweep(self, caught: dict[str, set[int]], now: float) -> int:
        store, settings = self.services.store, self.services.settings
        producer = self.producer = self.producer or make_producer(settings.kafka_bootstrap_servers or "")
        raw_topic, incidents_topic = settings.topic(topics.RAW), settings.topic(topics.INCIDENTS)
        candidates: list[tuple[str, str, str, bytes]] = []  # (item, topic, key, value)
        if caught.get(topics.RAW):
            candidates += [(f"raw:{r.event_id}", raw_topic, r.key, r.payload) for r in store.untriaged_events()
                           if not r.event_id.startswith(BEAT_PREFIX)
                           and partition_of(producer, raw_topic, r.key) in caught[topics.RAW]]
        if caught.get(topics.INCIDENTS):
            candidates += [(f"incident:{e.incident.id}", incidents_topic, e.incident.id, e.model_dump_json().encode())
                           for e in store.incidents_without_response()
                           if partition_of(producer, incidents_topic, e.incident.id) in caught[topics.INCIDENTS]]
        due = []
        for item, topic, key, value in candidates:
            after, grace = self.waiting.get(item, (now + GRACE_S, GRACE_S))
            if now >= after:
                due.append((topic, key, value))
                grace = min(grace * 2, MAX_GRACE_S)
                after = now + grace
            self.waiting[item] = (after, grace)
        unfinished = {c[0] for c in candidates}
        for item in [i for i in self.waiting if i not in unfinished]:
            # Done, or on a partition not read to the end just now: forget it (a later sweep starts its grace anew).
            del self.waiting[item]
        if due:
            publish_all(producer, due)
            log.warning("re-published %d item(s) the consumer passed without doing: %s", len(due),
                        sorted({t.removeprefix(settings.topic_prefix) for t, _, _ in due}))
        self.republished += len(due)
        return len(due)

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close(timeout=2)
            self.producer = None


def sweep_lost_work(app: faust.App, services: Services) -> Sweeper:
    """Install the sweep as a faust timer of `app`."""
    sweeper = Sweeper(services)

    @app.timer(interval=INTERVAL_S, name="sweep_lost_work")
    async def sweep() -> None:
        try:
            caught = caught_up(app, services.settings.topic)
        except Exception:  # noqa: BLE001 - not assigned yet, or rebalancing: next time
            return
        if any(caught.values()):
            try:
                await asyncio.to_thread(sweeper.sweep, caught, time.monotonic())
            except Exception:  # the store or the broker is down: the rows stay unfinished, the next sweep tries
                log.exception("sweeping lost work failed")
                sweeper.close()

    return sweeper

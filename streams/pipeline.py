"""The faust agents: incidents.raw -> triage -> incidents -> response -> notifications -> notifier.

Agents are thin: take what is waiting, parse, run the stage for the whole batch in a thread (the store blocks;
streams/batches.py: one transaction per batch), send what it returns. The store is the truth; the dedup cache only
saves a query when it is warm. The log entries stay in the store, where live readers read them (the console's event
feed); no agent produces a copy of each to the `actions` topic any more (issue 15).
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import faust
from pydantic import ValidationError

from pingan.bootstrap import Services
from pingan.handlers.incidents.heartbeat import is_beat, is_beat_order
from pingan.schemas.events import IncidentEvent, RawEvent
from pingan.schemas.notification import Notification
from pingan.streams import topics
from pingan.streams.batches import BATCH_MAX, BATCH_WAIT_S, dedup_cache_key, merged, response_batch, triage_batch
from pingan.streams.faust_app import app_topics, create_app
from pingan.streams.heartbeat import arrive_beat, respond_beat, triage_beat
from pingan.streams.notifier import Dispatcher
from pingan.streams.readiness import prove_ready_on_assignment
from pingan.streams.stages import StageOutput
from pingan.streams.sweep import sweep_lost_work
from pingan.streams.takeover import resume_on_assignment
from pingan.streams.trends import trend_watch

log = logging.getLogger(__name__)
T = TypeVar("T")
DEDUP_CACHE_SIZE = 50_000
NOTIFY_BATCH_WAIT_S = 0.02  # the notifier takes what arrived within this, up to notify_batch_size, as one batch

async def _stage(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking stage; on a store error, wait and retry rather than drop an accepted event."""
    delay = 0.1
    while True:
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception:
            log.exception("%s stage failed; retrying in %.1fs", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

def _parse(model: type[T], value: bytes, topic: str) -> T | None:
    try:
        return model.model_validate_json(value)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        # Intake validated it; a bad message here is corruption. Skip it loudly rather than stall the partition.
        log.error("skipping malformed message on %s: %s", topic, exc)
        return None

def build_pipeline(services: Services) -> faust.App:
    settings = services.settings
    store, channels = services.store, services.channels
    window = timedelta(seconds=settings.correlation_window_s)
    trends = trend_watch(services)  # issue 18: counts each triaged report, may raise a trend warning
    app = create_app(settings)
    if settings.takeover_republish is not False:
        # After a rebalance: re-publish the unfinished work of our partitions. tansu needs it (a consumer skips
        # records fetched before faust's seek); Apache Kafka does not (tests/kafka/test_failover.py: off, 0 lost).
        resume_on_assignment(app, services)
    sweep_lost_work(app, services)  # and whatever our consumer passed without doing, once it has read to the end
    prove_ready_on_assignment(app, services)  # /readyz: a heartbeat round trip after every assignment
    t = app_topics(app, settings)
    # status:dedup_key -> the open incident id: a cache in front of the store's index, never the only copy.
    # A plain bounded dict, not a faust Table: the store decides every correlation, and a Table's changelog
    # recovery on tansu can wait forever for offsets its wrong ListOffsets promised (seen after a broker restart:
    # "No event received for active tp … dedup_index-changelog"), which stalls every agent.
    dedup_index: OrderedDict[str, str] = OrderedDict()

    async def emit(out: StageOutput) -> None:
        for event in out.incident_events:
            await t[topics.INCIDENTS].send(key=event.incident.id, value=event.model_dump_json().encode())
        for n in out.notifications:
            await t[topics.NOTIFICATIONS].send(key=n.incident_id, value=n.model_dump_json().encode())

    @app.agent(t[topics.RAW], name="triage")
    async def triage_agent(stream: faust.StreamT) -> None:
        # take() acknowledges a batch only when the next one is asked for: after its commit and its sends.
        async for values in stream.take(BATCH_MAX, within=BATCH_WAIT_S):
            events: list[RawEvent] = []
            for value in values:
                event = _parse(RawEvent, value, topics.RAW)
                if event is not None and is_beat(event):  # the dead-man's switch: stamped, passed on, no incident
                    await emit(await _stage("heartbeat", triage_beat, store, event))
                elif event is not None:
                    events.append(event)
            if not events:
                continue
            outs = await _stage("triage", triage_batch, store, events, window, dedup_index, services.areas,
                                services.placer, trends)
            for event, out in zip(events, outs, strict=True):
                for emitted in out.incident_events:
                    cache_key = dedup_cache_key(event)
                    dedup_index[cache_key] = emitted.incident.id
                    dedup_index.move_to_end(cache_key)
                    if len(dedup_index) > DEDUP_CACHE_SIZE:
                        dedup_index.popitem(last=False)
            await emit(merged(outs))

    @app.agent(t[topics.INCIDENTS], name="response")
    async def response_agent(stream: faust.StreamT) -> None:
        async for values in stream.take(BATCH_MAX, within=BATCH_WAIT_S):
            events: list[IncidentEvent] = []
            for value in values:
                event = _parse(IncidentEvent, value, topics.INCIDENTS)
                if event is not None and is_beat(event):
                    await emit(await _stage("heartbeat", respond_beat, store, event))
                elif event is not None:
                    events.append(event)
            if events:
                # services.plans is read once per batch: a hot reload swaps it between two batches, never inside one.
                outs = await _stage("response", response_batch, store, lambda: services.plans, events,
                                    settings.escalation_time_scale, services.areas)
                await emit(merged(outs))

    # Concurrent, in batches (streams/notifier.py): many recipients at once, one recipient's messages in order.
    dispatcher = Dispatcher(store, channels, settings)

    @app.agent(t[topics.NOTIFICATIONS], name="notifier")
    async def notifier_agent(stream: faust.StreamT) -> None:
        async for values in stream.take(settings.notify_batch_size, within=NOTIFY_BATCH_WAIT_S):
            orders: list[Notification] = []
            for value in values:
                n = _parse(Notification, value, topics.NOTIFICATIONS)
                if n is not None and is_beat_order(n):
                    await _stage("heartbeat", arrive_beat, store, n)  # its arrival: nothing is sent to anyone
                elif n is not None:
                    orders.append(n)
            if orders:
                await emit(await dispatcher.run(orders))

    return app

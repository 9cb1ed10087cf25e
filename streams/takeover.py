"""After every rebalance (a worker died, left or joined), a worker re-publishes the store's unfinished work for the
partitions it was given, those it kept included.

Why: right after a rebalance the faust consumer on tansu was seen to skip about one fetch (3 to 130 records) of its
partitions: records fetched before faust's seek to the committed offsets are dropped while the fetch position stays
past them, and faust does not always notice the jump (docs/architecture.md, "Several workers"). It happened on
partitions a worker kept as well as on those it took over. The store knows what is unfinished; every consumer is
idempotent, so a copy of work that was merely queued costs a lookup.

A starting worker publishes nothing before its first assignment (streams/worker.py): that assignment's re-publish
is the one copy of the backlog (a start-up copy in front of it was a second one, and could itself be skipped), and
the outbox relay waits for it (`resumed_once`), so a row accepted during a broker outage is not sent twice either.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TP

from pingan.bootstrap import Services
from pingan.streams import topics
from pingan.streams.faust_app import PinganApp
from pingan.streams.producer import make_producer
from pingan.streams.recovery import resume

log = logging.getLogger(__name__)

SETTLE_S = 1.0  # after the assignment: let faust seek and start fetching, so the copies land behind the skip
PIPELINE = (topics.RAW, topics.INCIDENTS, topics.NOTIFICATIONS)


def pipeline_partitions(assigned: set[TP], topic_name: Callable[[str], str]) -> dict[str, set[int]]:
    """Logical topic -> the partitions of the pipeline topics in `assigned`."""
    by_name = {topic_name(name): name for name in PIPELINE}
    out: dict[str, set[int]] = {}
    for tp in assigned:
        if tp.topic in by_name:
            out.setdefault(by_name[tp.topic], set()).add(tp.partition)
    return out


def resume_on_assignment(app: faust.App, services: Services) -> threading.Event:
    """Connect to the app's partition assignment signal. The event is set once the first assignment's re-publish
    is over (done, failed, or nothing of ours was assigned)."""
    tasks: set[asyncio.Task[None]] = set()
    resumed_once = threading.Event()

    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        mine = pipeline_partitions(set(assigned), services.settings.topic)
        if mine:
            task = asyncio.ensure_future(_resume_later(services, mine, resumed_once))
            tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(tasks.discard)
        else:
            resumed_once.set()

    app.on_partitions_assigned.connect(on_assigned, weak=False)
    if isinstance(app, PinganApp):
        app.resumed_once = resumed_once  # for the worker's relay (streams/worker.py)
    return resumed_once


async def _resume_later(services: Services, partitions: dict[str, set[int]], done: threading.Event) -> None:
    await asyncio.sleep(SETTLE_S)
    try:
        await asyncio.to_thread(_resume, services, partitions)
    except Exception:  # the broker or the store is down: the scheduler's sweeps and the next start still recover
        log.exception("re-publishing the unfinished work of %s failed", partitions)
    finally:
        done.set()


def _resume(services: Services, partitions: dict[str, set[int]]) -> None:
    bootstrap = services.settings.kafka_bootstrap_servers or ""
    producer = make_producer(bootstrap)
    try:
        resume(services.store, services.channels, producer, services.settings, partitions)
    finally:
        producer.close(timeout=5)

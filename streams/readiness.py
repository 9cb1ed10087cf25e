"""Readiness (/readyz, and `pingan up`'s "ready" line): after each partition assignment the worker marks the time in
the store and sends a heartbeat round on every raw partition at once, not at the dead-man's switch's next interval,
so that the pipeline is known to consume end to end — its consumer group joined, every agent fetching — before anyone
is told it is ready. A beat that does not arrive (tansu may skip records fetched around a seek: docs/architecture.md)
is sent again for its partition until every partition has answered or the next assignment starts over.
"""

import asyncio
import logging
from typing import Any

import faust
from faust.types import TP

from pingan.bootstrap import Services
from pingan.schemas.common import utcnow
from pingan.store.heartbeat import HeartbeatStore
from pingan.streams import topics
from pingan.streams.partitioning import beat_keys

log = logging.getLogger(__name__)

RESEND_S = 2.0  # a readiness beat not back by then is sent again
GIVE_UP_S = 600.0  # the dead-man's switch carries on after that


def prove_ready_on_assignment(app: faust.App, services: Services) -> None:
    """Connect to the app's partition assignment signal."""
    state: dict[str, asyncio.Task[None] | None] = {"task": None}

    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        previous = state["task"]
        if previous is not None and not previous.done():
            previous.cancel()  # a new assignment: the proof starts over
        state["task"] = asyncio.ensure_future(_prove(services))

    app.on_partitions_assigned.connect(on_assigned, weak=False)


async def _prove(services: Services) -> None:
    beats = HeartbeatStore(services.store)
    partitions = topics.spec(topics.RAW).partitions
    keys = beat_keys(partitions)
    raw_topic = services.settings.topic(topics.RAW)
    try:
        await asyncio.to_thread(beats.mark_assigned, utcnow())
        waited = 0.0
        while waited < GIVE_UP_S:
            sent = await asyncio.to_thread(beats.send_readiness_beats, utcnow(), keys, raw_topic)
            if sent == 0:
                log.info("ready: a heartbeat made the round trip on all %d partitions", partitions)
                return
            await asyncio.sleep(RESEND_S)
            waited += RESEND_S
        log.warning("readiness: no heartbeat round trip on every partition after %.0f s", GIVE_UP_S)
    except asyncio.CancelledError:
        raise
    except Exception:  # the store is down: /readyz stays 503 and says why; the dead-man's switch alerts
        log.exception("readiness: could not send the readiness heartbeats")

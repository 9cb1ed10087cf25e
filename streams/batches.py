"""Triage and response in batches (issue 15): one thread hop and one transaction for what is waiting.

Before, the triage and response agents ran their stage once per message: a thread hop, a transaction with its fsync
(two in the response: the decision, then the deadlines), a read of the chain head and a produce per log entry. Now
each agent takes what is waiting on its topic (`stream.take(BATCH_MAX, within=BATCH_WAIT_S)`) and hands the batch
to one of these functions, which runs in a thread:

- the stage's own code (streams/stages.py triage_stage / response_stage: reads, then the pure handlers, then the
  writes) runs for each message in arrival order, against the store bound to the batch's one transaction
  (store/batch.py), so each message sees the ones before it exactly as when they came one at a time;
- the batch commits once; the chain head is read once;
- only then does the agent produce the batch's outputs, and only after that does faust commit its offsets (take()
  acknowledges a batch when the agent asks for the next one). A failure rolls the whole batch back and the agent
  runs it again whole; a crash replays it from the last committed offset, and the idempotency keys (triage's
  event ids, one response per incident, the ledger's keys, the log's keys) make the replay exactly-once in effect.

The agents also no longer produce a copy of each log entry to the `actions` topic: the store has it, and the live
readers read the store (the console's event feed polls the log, web/console/live.py).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from pingan.handlers.incidents.areas import DistrictCheck
from pingan.handlers.incidents.placement import Placer
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.events import IncidentEvent, RawEvent
from pingan.store.batch import batch_tx
from pingan.store.repository import Store
from pingan.store.response import wakeups_held
from pingan.streams.stages import StageOutput, response_stage, triage_stage
from pingan.streams.trends import TrendWatch

BATCH_MAX = 200  # messages per batch: bounds a transaction's length (the chain lock is held until it commits)
BATCH_WAIT_S = 0.01  # how long an agent waits for more before it runs what it has: latency, not throughput


def triage_batch(store: Store, events: Sequence[RawEvent], window: timedelta, cached: Mapping[str, str],
                 areas: DistrictCheck | None = None, placer: Placer | None = None,
                 trends: TrendWatch | None = None) -> list[StageOutput]:
    """triage_stage for each event, in order, in one transaction: one output per event.
    `cached`: the agent's dedup cache (status:dedup_key -> incident id); the store decides.
    `trends`: the trend early-warning stage, which counts each triaged report in the same transaction (and may add a
    warning to the outbox); None: off."""
    with batch_tx(store) as tx:
        tx.prefetch_triage([e.event_id for e in events])
        tx.prefetch_open([e.report.effective_dedup_key() for e in events])
        outs = []
        for e in events:
            out = triage_stage(tx, e, window, cached.get(dedup_cache_key(e)), areas, placer)
            if trends is not None:
                trends.observe(tx, e, out)
            outs.append(out)
        return outs


def response_batch(store: Store, plans: Callable[[], PlanSet], events: Sequence[IncidentEvent],
                   time_scale: float, areas: DistrictCheck | None = None) -> list[StageOutput]:
    """response_stage for each event, in order, in one transaction. `plans` is read once per batch: a hot reload
    swaps the plan set between two batches, never inside one."""
    planset = plans()
    with wakeups_held(), batch_tx(store) as tx:  # the scheduler is woken once, after the commit
        tx.prefetch_responses([e.incident.id for e in events])
        tx.prefetch_triage_times([e.event_id for e in events])
        outs = [response_stage(tx, planset, e, time_scale, areas) for e in events]
    return outs


def dedup_cache_key(event: RawEvent) -> str:
    return f"{event.report.status.value}:{event.report.effective_dedup_key()}"


def merged(outs: Sequence[StageOutput]) -> StageOutput:
    """A batch's outputs in order: what the agent produces."""
    out = StageOutput()
    for o in outs:
        out.incident_events += o.incident_events
        out.notifications += o.notifications
        out.actions += o.actions
    return out

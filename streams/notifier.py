"""The concurrent notifier: a batch of intents from the notifier agent, sent many recipients at a time.

Before (issue 15) the agent sent one intent after the other, so with a real provider (200-500 ms a send) a
grade I activation took minutes. Now the agent hands each batch it takes from its topic to Dispatcher.run():

1. claim: the whole batch intended -> sending in one transaction (a key claimed elsewhere is left alone, so
   claim -> send -> record stays exactly once per intent);
2. send: intents grouped by recipient (channel and address); up to the channel's limit (settings.notify_limit)
   of recipients are sent to at once, each on the channel's own thread pool, while one recipient's messages go
   one after the other, in order. A Twilio sender number may also have a token bucket (twilio_sender_mps);
3. back-pressure: a throttled send (Twilio HTTP 429 / error 20429) waits its Retry-After and goes again, counted
   in pingan_notification_throttled{channel}; it is never failed and spends no attempt. Claims still waiting
   are renewed, so no scheduler mistakes them for a lost worker's;
4. record: results, releases for retries and log entries are settled in batches while the sends go on.

A transient failure (5xx, timeout) is released for the scheduler's retry with backoff, as before; the same
recipient's later messages of the batch are released unsent with it, to come back on the same backoff and go
after it (a batch sends a recipient's oldest first). The scheduler re-publishes each with its own jitter, so a
retried message and its followers can still come back in different batches, and then in either order.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pingan import metrics
from pingan.handlers.channels.base import ChannelAdapter
from pingan.schemas.delivery import SendOutcome, SendResult
from pingan.schemas.notification import DeliveryState, Notification
from pingan.settings import Settings
from pingan.store.ledger import HELD_BACK, HELD_BACK_UNTRIED, Claim, Settlement
from pingan.store.repository import Store
from pingan.streams.attempt import Tried, settlement, try_once
from pingan.streams.stages import StageOutput, _live_for, channel_for

log = logging.getLogger(__name__)
T = TypeVar("T")
FLUSH_S = 0.05  # results are settled at most this long after they come in
THROTTLE_GIVE_UP_S = 300.0  # a message throttled this long goes back to the scheduler rather than hold its batch


class TokenBucket:
    """`rate` sends per second, in bursts of at most `burst`. Used from one event loop only, so no lock."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.at = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)


async def _retrying(name: str, fn: Callable[..., T], *args: Any) -> T:
    """A store call in a thread; on an error, wait and try again: the sends it records already happened."""
    delay = 0.1
    while True:
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception:
            log.exception("notifier %s failed; retrying in %.1fs", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


Item = tuple[Notification, ChannelAdapter | str]


class Dispatcher:
    def __init__(self, store: Store, channels: dict[str, ChannelAdapter], settings: Settings) -> None:
        self.store = store
        self.channels = channels
        self.settings = settings
        self.throttled = 0  # sends the provider throttled, since start (the metric counts actual incidents only)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    # -- one batch --------------------------------------------------------------------------------------------

    async def run(self, orders: list[Notification]) -> StageOutput:
        """Send every intent of `orders` still `intended`, at most once each; returns the log entries written."""
        claimed = await _retrying("claim", self.store.claim_many, [n.idempotency_key for n in orders])
        todo: dict[str, Notification] = {}
        for n in orders:
            if n.idempotency_key in claimed:
                todo.setdefault(n.idempotency_key, n)  # the same order twice in a batch: once
        if not todo:
            return StageOutput()
        groups = await asyncio.to_thread(self._group, list(todo.values()))
        batch = _Batch(self.store, set(todo), self.settings.sending_lease_s)
        tasks = [asyncio.ensure_future(self._recipient(items, claimed, batch)) for items in groups]
        flusher = asyncio.ensure_future(batch.flush_loop())
        try:
            await asyncio.gather(*tasks)
        finally:
            batch.done = True
            await flusher
        return StageOutput(actions=batch.actions)

    def _group(self, notes: list[Notification]) -> list[list[Item]]:
        """By recipient (channel and address), in arrival order; the channel chosen for each (or why none)."""
        groups: OrderedDict[tuple[str, str], list[Item]] = OrderedDict()
        for n in notes:
            chosen = channel_for(n, self.channels, _live_for(self.store, n, self.settings.live_participants))
            name = chosen if isinstance(chosen, str) else chosen.name
            groups.setdefault((name, n.recipient.address), []).append((n, chosen))
        # Oldest first within a recipient: a retried message and the ones held back behind it may come back in
        # one batch in any order. The sort is stable, so one fan-out's messages (one created_at) keep theirs.
        return [sorted(items, key=lambda item: item[0].created_at) for items in groups.values()]

    async def _recipient(self, items: list[Item], claims: dict[str, Claim], batch: "_Batch") -> None:
        for i, (n, chosen) in enumerate(items):
            claim = claims[n.idempotency_key]
            attempt = claim.attempt
            if isinstance(chosen, str):
                tried, via = Tried(SendResult(SendOutcome.permanent_failure, detail=chosen), True), None
            else:
                tried, via = await self._send(chosen, n, claim), chosen.name
            if tried.sent and tried.result is not None and not tried.throttled:
                metrics.send_result(via or n.channel.value, n, tried.result)
            settled = Settlement(n.idempotency_key, DeliveryState.intended, tried.detail, unclaim=True) \
                if tried.throttled else settlement(n, tried, attempt, via)
            batch.add(settled)
            if settled.state is DeliveryState.intended:
                if tried.result is not None:
                    log.warning("transient failure on %s, attempt %d: %s", n.channel.value, attempt,
                                tried.result.detail)
                # Its later messages do not overtake it: released unsent. Their attempt counts, so the scheduler
                # brings them back on the same backoff as this one (and a batch sorts them after it), but one never
                # tried stays marked so: its next attempt sends rather than asks the channel about an earlier
                # send (Twilio voice's reconcile would take an earlier call to the person for it).
                for later, _ in items[i + 1:]:
                    fresh = not claims[later.idempotency_key].tried_before
                    batch.add(Settlement(later.idempotency_key, DeliveryState.intended,
                                         HELD_BACK_UNTRIED if fresh else HELD_BACK))
                return

    async def _send(self, channel: ChannelAdapter, n: Notification, claim: Claim) -> Tried:
        """One attempt, repeated after each Retry-After while the provider throttles (up to THROTTLE_GIVE_UP_S)."""
        loop = asyncio.get_running_loop()
        bucket = self._bucket(channel)
        pool, slots = self._pool(channel.name)
        started = time.monotonic()
        while True:
            if bucket is not None:
                await bucket.take()
            async with slots:
                tried = await loop.run_in_executor(pool, try_once, channel, n, claim.attempt, claim.tried_before)
            if not tried.throttled:
                return tried
            assert tried.result is not None
            self.throttled += 1
            metrics.send_result(channel.name, n, tried.result)  # counts pingan_notification_throttled
            wait = float(tried.result.extra.get("retry_after_s") or 1.0)
            if time.monotonic() - started + wait > THROTTLE_GIVE_UP_S:
                return Tried(tried.result, True, f"throttled for {THROTTLE_GIVE_UP_S:.0f}s; queued again")
            await asyncio.sleep(wait)

    def _pool(self, name: str) -> tuple[ThreadPoolExecutor, asyncio.Semaphore]:
        if name not in self._pools:
            limit = self.settings.notify_limit(name)
            self._pools[name] = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"notify-{name}")
            self._slots[name] = asyncio.Semaphore(limit)
        return self._pools[name], self._slots[name]

    def _bucket(self, channel: ChannelAdapter) -> TokenBucket | None:
        sender = getattr(channel, "sender", None)
        rate = self.settings.twilio_sender_mps
        if not sender or not rate or not channel.name.startswith("twilio_"):
            return None
        key = (channel.name, str(sender))  # SMS and calls from one number are paced apart
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(rate)
        return self._buckets[key]


class _Batch:
    """The settlements of one batch, written every FLUSH_S while it runs, and its claims kept alive."""

    def __init__(self, store: Store, keys: set[str], lease_s: float) -> None:
        self.store = store
        self.open = set(keys)  # claimed and not yet settled
        self.pending: list[Settlement] = []
        self.actions: list[Any] = []
        self.done = False
        self.renew_every = max(1.0, lease_s / 3)

    def add(self, settled: Settlement) -> None:
        self.pending.append(settled)
        self.open.discard(settled.key)

    async def flush_loop(self) -> None:
        renewed = time.monotonic()
        while True:
            finished = self.done  # read before flushing: whatever came in until now is in this flush
            if self.pending:
                chunk, self.pending = self.pending, []
                self.actions += await _retrying("record", self.store.settle, chunk)
            if finished and not self.pending:
                return
            if self.open and time.monotonic() - renewed >= self.renew_every:
                await _retrying("renew", self.store.renew, sorted(self.open))
                renewed = time.monotonic()
            await asyncio.sleep(FLUSH_S)

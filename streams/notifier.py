"""The concurrent notifier: a batch of intents from the notifier agent, sent many recipients at a time.

Before (issue 15) the agent sent one intent after the other, so with a real provider (200-500 ms a send) a
grade I activation took minutes. Now the agent hands each batch it takes from its topic to Dispatcher.run():

1. claim: intended -> sending, CLAIM_AHEAD of each recipient's messages at a time, every recipient's claims of the
   moment gathered into one transaction (a key claimed elsewhere is left alone, so claim -> send -> record stays
   exactly once per intent). Claiming a recipient's whole backlog at once would leave it all `sending` at a
   crash, and each such row costs a reconcile (a Twilio message list) before it can go;
2. send: intents grouped by recipient (channel and address; for a webhook, also the incident: order_key); up to
   the channel's limit (settings.notify_limit) of groups are sent to at once, each on the channel's own thread
   pool, while one group's messages go one after the other, in order. A Twilio sender number may also have a
   token bucket (twilio_sender_mps);
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
from dataclasses import replace
from typing import Any, TypeVar

from pingan import metrics
from pingan.handlers.channels.base import ChannelAdapter, order_scope_of
from pingan.handlers.incidents.broadcast import STEP_PREFIX, is_broadcast, is_public
from pingan.schemas.delivery import SendOutcome, SendResult
from pingan.schemas.notification import DeliveryState, Notification
from pingan.settings import Settings
from pingan.store.ledger import HELD_BACK, HELD_BACK_UNTRIED, Claim, Settlement
from pingan.store.repository import Store
from pingan.store.subscriptions import UNSUBSCRIBED, SubscriptionStore
from pingan.streams.attempt import Tried, settlement, try_once
from pingan.streams.stages import StageOutput, _live_for, channel_for

log = logging.getLogger(__name__)
T = TypeVar("T")
FLUSH_S = 0.05  # results are settled at most this long after they come in
CLAIM_AHEAD = 4  # a recipient's messages claimed at once: at most this many a killed worker leaves `sending` unsent
THROTTLE_GIVE_UP_S = 300.0  # a message throttled this long goes back to the scheduler rather than hold its batch
OPT_OUT_POLL_S = 0.2  # how stale the notifier's view of new unsubscriptions may be while a broadcast goes


def order_key(channel: ChannelAdapter | str, n: Notification) -> tuple[str, ...]:
    """The messages that must go one after the other, in order: a recipient's, or for a channel whose order_scope
    is "incident" (the webhook), a recipient's about one incident. `channel` is the chosen adapter, or why none."""
    name = channel if isinstance(channel, str) else channel.name
    if order_scope_of(channel) == "incident":
        return (name, n.recipient.address, n.incident_id)
    return (name, n.recipient.address)


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
        unique = list({n.idempotency_key: n for n in reversed(orders)}.values())[::-1]  # a repeated order: once
        groups = await asyncio.to_thread(self._group, unique)
        batch = _Batch(self.store, self.settings.sending_lease_s)
        public = [n.recipient.address for n in unique if is_public(n)]
        if public:
            batch.opt_outs = await asyncio.to_thread(_OptOuts, self.store, public)
        claimer = _Claimer(self.store)
        # The groups ask for their first claims before the claimer runs, so those go in one transaction.
        tasks = [asyncio.ensure_future(self._recipient(items, claimer, batch)) for items in groups]
        claiming = asyncio.ensure_future(claimer.run())
        flusher = asyncio.ensure_future(batch.flush_loop())
        try:
            await asyncio.gather(*tasks)
        finally:
            claiming.cancel()
            batch.done = True
            await flusher
            if batch.release_throttled:
                await _retrying("count throttled", SubscriptionStore(self.store).add_throttled,
                                batch.release_throttled)
        return StageOutput(actions=batch.actions)

    def _group(self, notes: list[Notification]) -> list[list[Item]]:
        """By order_key (a person's address; a system's address and incident), in arrival order; the channel chosen
        for each (or why none)."""
        groups: OrderedDict[tuple[str, str], list[Item]] = OrderedDict()
        for n in notes:
            chosen = channel_for(n, self.channels, _live_for(self.store, n, self.settings.live_participants))
            groups.setdefault(order_key(chosen, n), []).append((n, chosen))
        # Oldest first within a recipient: a retried message and the ones held back behind it may come back in
        # one batch in any order. The sort is stable, so one fan-out's messages (one created_at) keep theirs.
        return [sorted(items, key=lambda item: item[0].created_at) for items in groups.values()]

    async def _recipient(self, items: list[Item], claimer: "_Claimer", batch: "_Batch") -> None:
        """One recipient's messages in order, claimed CLAIM_AHEAD at a time."""
        for at in range(0, len(items), CLAIM_AHEAD):
            chunk = items[at:at + CLAIM_AHEAD]
            claims = await claimer.claim([n.idempotency_key for n, _ in chunk])
            batch.opened(claims)
            for i, (n, chosen) in enumerate(chunk):
                claim = claims.get(n.idempotency_key)
                if claim is None:
                    continue  # sent, sending or finished already (another worker, an earlier copy): at most once
                settled = await self._one(n, chosen, claim, batch)
                if settled.state is DeliveryState.intended:
                    await self._hold_back(chunk[i + 1:], claims, items[at + CLAIM_AHEAD:], claimer, batch)
                    return

    async def _one(self, n: Notification, chosen: ChannelAdapter | str, claim: Claim, batch: "_Batch") -> Settlement:
        tried: Tried | None = None
        if not isinstance(chosen, str):
            tried, via = await self._send(chosen, n, claim, batch), chosen.name
            if tried is None:
                chosen = UNSUBSCRIBED  # 退订 arrived after the broadcast was planned: honoured before the send
        if tried is None:
            tried, via = Tried(SendResult(SendOutcome.permanent_failure, detail=str(chosen)), True), None
        if tried.sent and tried.result is not None and not tried.throttled:
            metrics.send_result(via or n.channel.value, n, tried.result)
        settled = Settlement(n.idempotency_key, DeliveryState.intended, tried.detail, unclaim=True) \
            if tried.throttled else settlement(n, tried, claim.attempt, via)
        if is_public(n) and settled.drafts:
            # The public's numbers stay out of the hash-chained log (it keeps forever what it is given): the ledger
            # has each message, and the release_broadcast entry what was planned.
            settled = replace(settled, drafts=())
        batch.add(settled)
        if is_broadcast(n) and n.incident_status.value == "actual" and settled.state is not DeliveryState.intended:
            metrics.release_sms("unsubscribed" if chosen == UNSUBSCRIBED else
                                "failed" if settled.state is DeliveryState.failed else "sent")
        if settled.state is DeliveryState.intended and tried.result is not None:
            log.warning("transient failure on %s, attempt %d: %s", n.channel.value, claim.attempt,
                        tried.result.detail)
        return settled

    async def _hold_back(self, claimed_rest: list[Item], claims: dict[str, Claim], unclaimed_rest: list[Item],
                         claimer: "_Claimer", batch: "_Batch") -> None:
        """A recipient's later messages do not overtake one that failed transiently: released unsent. Their attempt
        counts, so the scheduler brings them back on the same backoff as that one (and a batch sorts them after
        it), but one never tried stays marked so: its next attempt sends rather than asks the channel about an
        earlier send (Twilio voice's reconcile would take an earlier call to the person for it)."""
        rest = {n.idempotency_key: claims[n.idempotency_key] for n, _ in claimed_rest if n.idempotency_key in claims}
        if unclaimed_rest:
            more = await claimer.claim([n.idempotency_key for n, _ in unclaimed_rest])
            batch.opened(more)
            rest.update(more)
        for key, claim in rest.items():
            batch.add(Settlement(key, DeliveryState.intended, HELD_BACK if claim.tried_before else HELD_BACK_UNTRIED))

    async def _send(self, channel: ChannelAdapter, n: Notification, claim: Claim, batch: "_Batch") -> Tried | None:
        """One attempt, repeated after each Retry-After while the provider throttles (up to THROTTLE_GIVE_UP_S).
        None: a public broadcast SMS whose number has unsubscribed, asked once it has its slot, just before the
        provider is called (a 10,000-number broadcast waits minutes for slots; a 退订 meanwhile still counts)."""
        opt_outs = batch.opt_outs if is_public(n) else None
        loop = asyncio.get_running_loop()
        bucket = self._bucket(channel)
        pool, slots = self._pool(channel.name)
        started = time.monotonic()
        while True:
            if bucket is not None:
                await bucket.take()
            async with slots:
                if opt_outs is not None and await opt_outs.blocked(n.recipient.address):
                    return None
                tried = await loop.run_in_executor(pool, try_once, channel, n, claim.attempt, claim.tried_before)
            if not tried.throttled:
                return tried
            assert tried.result is not None
            self.throttled += 1
            metrics.send_result(channel.name, n, tried.result)  # counts pingan_notification_throttled
            if is_broadcast(n):
                release_id = n.step.removeprefix(STEP_PREFIX)
                batch.release_throttled[release_id] = batch.release_throttled.get(release_id, 0) + 1
                if n.incident_status.value == "actual":
                    metrics.release_sms("throttled")
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


class _Claimer:
    """Claims for every recipient of a batch, gathered into one transaction while the previous one runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.wanted: list[tuple[list[str], asyncio.Future[dict[str, Claim]]]] = []
        self.wake = asyncio.Event()

    async def claim(self, keys: list[str]) -> dict[str, Claim]:
        future: asyncio.Future[dict[str, Claim]] = asyncio.get_running_loop().create_future()
        self.wanted.append((keys, future))
        self.wake.set()
        return await future

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            wanted, self.wanted = self.wanted, []
            if wanted:
                claimed = await _retrying("claim", self.store.claim_many, [k for keys, _ in wanted for k in keys])
                for keys, future in wanted:
                    future.set_result({k: claimed[k] for k in keys if k in claimed})


class _Batch:
    """The settlements of one batch, written every FLUSH_S while it runs, and its claims kept alive."""

    def __init__(self, store: Store, lease_s: float) -> None:
        self.store = store
        self.open: set[str] = set()  # claimed and not yet settled
        self.pending: list[Settlement] = []
        self.actions: list[Any] = []
        self.done = False
        self.renew_every = max(1.0, lease_s / 3)
        self.opt_outs: _OptOuts | None = None  # a batch with public broadcast SMS: who unsubscribed
        self.release_throttled: dict[str, int] = {}  # release id -> provider 429s met in this batch

    def opened(self, claims: dict[str, Claim]) -> None:
        self.open.update(claims)

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


class _OptOuts:
    """Who must not get a public broadcast SMS of this batch: no live subscription at the batch's start, or an
    unsubscription from everything since (polled every OPT_OUT_POLL_S while the batch sends, one cheap query on
    the changes' id), so a 退订 that comes in the middle of a 10,000-number broadcast stops the rest of it."""

    def __init__(self, store: Store, phones: list[str]) -> None:
        self.subs = SubscriptionStore(store)
        self.mark = self.subs.last_change()
        self.out = self.subs.opted_out(phones)
        self.polled = time.monotonic()

    async def blocked(self, phone: str) -> bool:
        if time.monotonic() - self.polled >= OPT_OUT_POLL_S:
            self.polled = time.monotonic()
            new, self.mark = await _retrying("opt-outs", self.subs.unsubscribed_since, self.mark)
            self.out |= new
        return phone in self.out

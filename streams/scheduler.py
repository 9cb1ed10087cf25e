"""The escalation scheduler: fires due deadlines from the store and re-publishes intents that need a retry.

It runs beside the agents in every worker. Deadlines are rows (store/response.py), claimed one by one in a
transaction, so two workers never fire the same row and a restart loses none.

Timers, not polling: the thread sleeps until the earliest pending deadline is due (so it fires within a few
milliseconds of it, where a 0.5 s poll fired up to half a second late), and a deadline written or moved in this
process (the response stage, a command) wakes it at once. It also wakes every `interval_s` for the work that is not
a deadline: intents to re-publish and sends left `sending` (on a sweep thread of its own, so that a slow sweep never
holds a deadline), and deadlines another process wrote (an `escalate` from the API process, another worker's
response stage), which it therefore sees within that interval.
"""

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from kafka import KafkaProducer

from pingan import metrics
from pingan.bootstrap import Services
from pingan.handlers.incidents.delivery import retry_delay_s
from pingan.handlers.incidents.escalation import DeadlineKind, level_with_holders
from pingan.handlers.incidents.notify import step_orders
from pingan.handlers.plans.directory import resolve
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification
from pingan.schemas.taxonomy import Grade, IncidentState
from pingan.store.response import DueRow, ResponseStore, on_deadline_written
from pingan.streams import topics
from pingan.streams.broadcast import Broadcaster
from pingan.streams.producer import make_producer, publish_all
from pingan.streams.release_reminders import ApprovalReminders
from pingan.streams.stages import reconcile_sending

log = logging.getLogger(__name__)
ACTOR = "system:escalation"
LOST_FIRST_S, LOST_MAX_S = 2.0, 60.0  # re-publishing a never-tried intent: first after 2 s, doubling, at most 60 s


class Scheduler(threading.Thread):
    def __init__(self, services: Services, bootstrap: str, interval_s: float = 0.5,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(name="escalation-scheduler", daemon=True)
        self.services = services
        self.responses = ResponseStore(services.store)
        self.bootstrap = bootstrap
        self.interval_s = interval_s
        self.clock = clock
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self.fired = 0
        self.retried = 0
        self.broadcaster = Broadcaster(services)  # published releases' SMS broadcasts (issue 17)
        self.reminders = ApprovalReminders(services)  # release drafts still unapproved (issue 17)

    def wake(self) -> None:
        """A deadline was written or moved: look again for the next due time now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()
        self.join(5)

    def run(self) -> None:
        """The deadline timer; the sweep (retries, abandoned sends) runs on a thread of its own, so a slow sweep
        never holds a deadline that falls due meanwhile."""
        sweeper = threading.Thread(target=self._loop, args=(self._sweep_wait, True), name="escalation-sweep",
                                   daemon=True)
        sweeper.start()
        unregister = on_deadline_written(self.wake)
        try:
            self._loop(self._until_due, False)
        finally:
            unregister()
            sweeper.join(5)

    def _loop(self, wait_for: Callable[[], float], sweep: bool) -> None:
        producer: KafkaProducer | None = None
        wait = 0.0 if not sweep else self.interval_s
        try:
            while not self._stop_event.is_set():
                if sweep:
                    self._stop_event.wait(wait)
                else:
                    self._wake.wait(wait)
                    self._wake.clear()
                if self._stop_event.is_set():
                    break
                try:
                    producer = producer or make_producer(self.bootstrap)
                    if sweep:
                        self.sweep(producer)
                    else:
                        self.tick(producer, sweep=False)
                    wait = wait_for()
                except Exception:
                    log.exception("escalation scheduler %s failed; the rows stay due", "sweep" if sweep else "tick")
                    wait = self.interval_s
                    if producer is not None:
                        producer.close(timeout=1)
                        producer = None
        finally:
            if producer is not None:
                producer.close(timeout=2)

    def _sweep_wait(self) -> float:
        return self.interval_s

    def _until_due(self) -> float:
        """Seconds to sleep: until the next deadline is due, and at most interval_s (to see deadlines that other
        processes wrote, which do not wake this one)."""
        due = self.responses.next_due()
        if due is None:
            return self.interval_s
        return min(self.interval_s, max(0.0, (due - self.clock()).total_seconds()))

    def sweep(self, producer: KafkaProducer) -> None:
        """Re-publish intents that need it and settle abandoned sends."""
        now = self.clock()
        self._publish(producer, self.retries(now) + self.abandoned(now) + self.broadcaster.due()
                      + self.reminders.due(now))

    def _publish(self, producer: KafkaProducer, orders: list[Notification]) -> None:
        if orders:
            topic = self.services.settings.topic(topics.NOTIFICATIONS)
            publish_all(producer, ((topic, n.incident_id, n.model_dump_json().encode()) for n in orders))

    def tick(self, producer: KafkaProducer, sweep: bool = True) -> None:
        """Fire what is due; with `sweep`, also what the sweep does (tests call it as one step)."""
        now = self.clock()
        orders: list[Notification] = []
        for row in self.responses.due(now):
            orders += self.fire(row, now)
        if sweep:
            orders += self.retries(now)
            orders += self.abandoned(now)
        self._publish(producer, orders)

    def retries(self, now: datetime) -> list[Notification]:
        """Intents in `intended` whose message was lost (5 s) or whose transient-failure backoff is over."""
        ready = []
        stale = self.responses.stale_intents(now - timedelta(seconds=LOST_FIRST_S))
        for entry in stale:
            # Never tried: its order may have been lost (seen on tansu, see docs), or it is still queued behind a
            # backlog. Ask again after 2 s, then after as long again as it has already waited (2, 4, 8… up to
            # 60 s): a lost order goes again soon, while a backlog is not multiplied by re-publishing it all
            # every 2 s (measured: 10,994 orders for 1,806 intents before). The ledger claim keeps sends at most once.
            # A transient failure waits its backoff; the jitter is fixed per (key, attempt) so retries do not bunch.
            jitter = random.Random(f"{entry.notification.idempotency_key}:{entry.attempts}").random()
            if entry.attempts == 0:
                waited = (entry.updated_at or now) - entry.notification.created_at
                wait = min(LOST_MAX_S, max(LOST_FIRST_S, waited.total_seconds()))
            else:
                wait = retry_delay_s(entry.attempts, jitter)
            if entry.updated_at is not None and now - entry.updated_at >= timedelta(seconds=wait):
                ready.append(entry)
        seen = max((e.updated_at for e in stale if e.updated_at is not None), default=None)
        mine = self.responses.touch([e.notification.idempotency_key for e in ready], seen_before=seen)
        ready = [e for e in ready if e.notification.idempotency_key in mine]  # another scheduler took the rest
        for entry in ready:
            metrics.retried(entry)
        self.retried += len(ready)
        return [e.notification for e in ready]

    def abandoned(self, now: datetime) -> list[Notification]:
        """Notifications a worker claimed and never settled: it died between `sending` and the result. The lease
        outlasts any channel timeout, so a live worker has finished by then; the channel says whether it went out
        (recorded, not resent) or not (released and ordered again)."""
        settings = self.services.settings
        stale = self.responses.take_stale_sending(now - timedelta(seconds=settings.sending_lease_s))
        if not stale:
            return []
        out = reconcile_sending(self.services.store, self.services.channels, settings.live_participants, stale)
        log.warning("settled %d notification(s) left sending by a lost worker; %d to send again", len(stale),
                    len(out.notifications))
        return out.notifications

    def fire(self, row: DueRow, now: datetime) -> list[Notification]:
        store, plans = self.services.store, self.services.plans
        incident = store.get_incident(row.incident_id)
        plan = plans.get(row.plan_id)
        level = plan.level(Grade(row.grade)) if plan else None
        step = next((s for s in level.notify if s.id == row.step_id), None) if level else None
        if incident is None or plan is None or level is None or step is None:
            self.responses.fire(row, [], [ActionDraft(
                incident_id=row.incident_id, at=now, actor=ACTOR, kind=ActionKind.failed,
                details={"reason": f"deadline {row.kind} of step {row.step_id} cannot run: the plan no longer "
                         f"has it", "plan_id": row.plan_id, "grade": row.grade})])
            return []
        if incident.state is IncidentState.closed:
            self.responses.fire(row, [], [])
            return []
        level = level_with_holders(level, self.responses.role_holders(incident.id))
        if row.kind == DeadlineKind.roll_call:
            people = {p.id: p.name for t in step.targets for p in resolve(t, level, plans.directory, now)}
            confirmed = self.responses.confirmed(incident.id, step.id)
            missing = sorted(set(people) - confirmed)
            self.responses.fire(row, [], [ActionDraft(
                incident_id=incident.id, at=now, actor=ACTOR, kind=ActionKind.roll_call, plan_id=plan.id,
                plan_version=plan.version, details={"step": step.id, "confirmed": sorted(confirmed & set(people)),
                                                    "missing": missing})])
            metrics.escalation(row.kind, incident.status)
            return []
        orders = step_orders(incident, plan, level, step, plans.directory, now, attempt=row.attempt).notifications
        if step.roll_call and row.kind == DeadlineKind.repeat:
            confirmed = self.responses.confirmed(incident.id, step.id)
            orders = [n for n in orders if n.recipient.id not in confirmed]  # only those still missing
        # A plain delayed step is the plan's schedule (its `notified` entries say enough); a repeat or an
        # escalation happens because nobody acknowledged, and the log says so.
        actions = [] if row.kind == DeadlineKind.step else [ActionDraft(
            incident_id=incident.id, at=now, actor=ACTOR, kind=ActionKind.escalated,
            plan_id=plan.id, plan_version=plan.version,
            details={"step": step.id, "deadline": row.kind, "attempt": row.attempt,
                     "recipients": sorted({n.recipient.id for n in orders}),
                     "channels": sorted({n.channel.value for n in orders})},
            idempotency_key=f"deadline:{row.id}")]
        if self.responses.fire(row, orders, actions) is None:
            return []  # another worker fired it
        metrics.escalation(row.kind, incident.status)
        self.fired += 1
        return orders

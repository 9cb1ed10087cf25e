"""The watchdog: the dead-man's switch's sender and judge. It runs in the API process, which needs no broker.

Every PINGAN_HEARTBEAT_INTERVAL_S it commits one heartbeat per partition to the outbox; the worker's relay and
agents carry them through the pipeline and the notifier stamps their arrival (handlers/heartbeat.py). Every tick
it reads how long the pipeline has owed a completed beat. Past the threshold it alerts once per outage, and
once beats complete again it sends a recovery notice. Alerts go straight to channel adapters (the console
always, a webhook and SMS numbers when configured) and to the API's log: never through the broker.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pingan.handlers.channels.base import ChannelAdapter
from pingan.handlers.channels.console import ConsoleChannel
from pingan.handlers.channels.twilio_sms import twilio_channel_from_settings
from pingan.handlers.channels.webhook import WebhookChannel
from pingan.handlers.incidents.heartbeat import (
    PLAN_ID,
    WATCHDOG_ID,
    Assessment,
    Transition,
    alert_text,
    assess,
    pipeline_age,
    recovery_text,
    stuck_at,
)
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.taxonomy import IncidentStatus
from pingan.settings import Settings
from pingan.store.heartbeat import HeartbeatStore
from pingan.store.repository import Store
from pingan.streams import topics
from pingan.streams.partitioning import beat_keys

log = logging.getLogger(__name__)
Target = tuple[ChannelAdapter, Recipient]
KEEP_BEATS = timedelta(days=1)
PRUNE_EVERY_S = 60.0
SEND_ATTEMPTS = 10


def raw_partitions() -> int:
    return next(spec.partitions for spec in topics.TOPICS if spec.name == topics.RAW)


def build_targets(settings: Settings) -> list[Target]:
    """The console always; a misconfigured extra target stops the API rather than leave the switch half-wired."""
    duty_room = Recipient(id="duty-room", name="值班室 duty room", channel=Channel.console, address="duty-room")
    targets: list[Target] = [(ConsoleChannel(settings.console_sink_path), duty_room)]
    url = settings.heartbeat_alert_webhook_url
    if url:
        secret = settings.heartbeat_alert_webhook_secret or settings.webhook_secret
        if not secret:
            raise ValueError("PINGAN_HEARTBEAT_ALERT_WEBHOOK_URL needs PINGAN_HEARTBEAT_ALERT_WEBHOOK_SECRET "
                             "(or PINGAN_WEBHOOK_SECRET) to sign the alerts")
        targets.append((WebhookChannel(secret), Recipient(id="heartbeat-webhook", name="heartbeat webhook",
                                                          channel=Channel.webhook, address=url)))
    numbers = [n.strip() for n in (settings.heartbeat_alert_sms or "").split(",") if n.strip()]
    if numbers:
        sms = twilio_channel_from_settings(settings)
        if sms is None:
            raise ValueError("PINGAN_HEARTBEAT_ALERT_SMS needs PINGAN_TWILIO_ACCOUNT_SID, PINGAN_TWILIO_AUTH_TOKEN "
                             "and PINGAN_TWILIO_FROM_NUMBER")
        targets += [(sms, Recipient(id=f"heartbeat-sms-{i}", name=number, channel=Channel.twilio_sms,
                                    address=number)) for i, number in enumerate(numbers)]
    return targets


class Watchdog(threading.Thread):
    def __init__(self, settings: Settings, store: Store, targets: list[Target] | None = None,
                 clock: Callable[[], datetime] = utcnow, background: bool = True) -> None:
        super().__init__(name="heartbeat-watchdog", daemon=True)
        if settings.heartbeat_interval_s <= 0:
            raise ValueError("the heartbeat is disabled (PINGAN_HEARTBEAT_INTERVAL_S=0)")
        self.interval_s = settings.heartbeat_interval_s
        self.threshold_s = settings.heartbeat_threshold_s
        self.grace_s = settings.heartbeat_grace_s
        self.keys = beat_keys(raw_partitions())
        self.raw_topic = settings.topic(topics.RAW)
        self.beats = HeartbeatStore(store)
        self.targets = build_targets(settings) if targets is None else targets
        self.clock = clock
        self.background = background  # False: alerts are sent inside tick() (tests that drive the clock)
        self.tick_s = min(max(self.interval_s / 4, 0.25), 5.0)
        self.started_at = clock()
        self.last: Assessment | None = None
        self._settled = False
        self._pruned_at = 0.0
        self._stop_event = threading.Event()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout_s)

    def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the store is down: /metrics shows it (pingan_store_up), and the next tick retries
                log.exception("heartbeat watchdog: tick failed")
            if self._stop_event.wait(self.tick_s):
                return

    def tick(self, now: datetime | None = None) -> Assessment:
        now = now or self.clock()
        self.beats.send_if_due(now, self.interval_s, self.keys, self.raw_topic)
        tracks = self.beats.tracks(len(self.keys))
        age = pipeline_age(tracks, now)
        progress = self.beats.progress()
        in_grace = not self._settled and (now - self.started_at).total_seconds() < self.grace_s
        previous, changed_at = self.beats.state(now)
        self.last = assessment = assess(previous, age, self.threshold_s, in_grace)
        # Start-up is over once beats sent since this process started have crossed every partition in time.
        crossed = len(tracks) == len(self.keys) and all(t.last_completed_sent_at for t in tracks)
        since_start = progress.arrived_at is not None and progress.arrived_at >= self.started_at
        self._settled = self._settled or (assessment.fresh and crossed and since_start)
        # Only the process whose compare-and-set wins tells anyone: one alert per outage, however many APIs watch.
        if assessment.state is not previous and self.beats.transition(previous, assessment.state, now):
            if assessment.transition is Transition.alert:
                self._announce("alert", alert_text(age, self.threshold_s, stuck_at(progress)), now)
            elif assessment.transition is Transition.recover:
                self._announce("recover", recovery_text((now - changed_at).total_seconds()), now)
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            self.beats.prune(now, KEEP_BEATS, timedelta(seconds=max(10 * self.interval_s, 60.0)))
        return assessment

    def _announce(self, kind: str, text: str, now: datetime) -> None:
        log.log(logging.ERROR if kind == "alert" else logging.WARNING, "%s", text.replace("\n", " / "))
        stamp = now.strftime("%Y%m%dT%H%M%S%f")
        for adapter, recipient in self.targets:
            n = Notification(
                idempotency_key=f"hb-{kind}-{stamp}-{recipient.id}"[:64], incident_id=WATCHDOG_ID,
                incident_status=IncidentStatus.actual, plan_id=PLAN_ID, plan_version=0, step=kind, recipient=recipient,
                channel=recipient.channel, text=text, created_at=now)
            if not self.background:
                _deliver(adapter, n)
                continue
            # A thread per target: a webhook timing out must hold up neither the next beat nor the other targets.
            threading.Thread(target=_deliver, args=(adapter, n), name=f"heartbeat-{kind}", daemon=True).start()


def _deliver(adapter: ChannelAdapter, n: Notification) -> None:
    """Retried with backoff on a transient failure, with the same Idempotency-Key each time."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        result = adapter.send(n)
        if result.outcome in (SendOutcome.delivered, SendOutcome.accepted):
            log.info("heartbeat %s sent by %s to %s", n.step, adapter.name, n.recipient.id)
            return
        if result.outcome is SendOutcome.permanent_failure or attempt == SEND_ATTEMPTS:
            log.error("heartbeat %s NOT sent by %s to %s: %s", n.step, adapter.name, n.recipient.id, result.detail)
            return
        time.sleep(min(2.0 ** attempt, 60.0))

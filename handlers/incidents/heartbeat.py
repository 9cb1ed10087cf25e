"""The dead-man's switch, pure part: what a heartbeat is on each topic, how long the pipeline has owed one,
and whether that is news (an alert, a recovery) or not. No I/O.

A heartbeat is a RawEvent of kind `heartbeat` that the watchdog (pingan.watchdog, in the API process) commits
to the outbox. It takes the path every report takes (outbox relay -> incidents.raw -> triage -> incidents ->
response -> notifications -> notifier), each stage stamping it in the store, and the notifier's stamp is its
arrival. It is status `test`, creates no incident, no log entry and no ledger row, and pages nobody.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pingan.schemas.events import IncidentEvent, RawEvent, RawKind, TriageOutcome
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype

BEAT_PREFIX = "hb-"  # outbox event ids of beats; intake event ids are uuid4 hex and never start with it
KEY_PREFIX = "HB-"  # beat keys, which are also the pseudo incident ids downstream (real ones start with INC-)
PLAN_ID = "pingan:heartbeat"
STEP = "heartbeat"
WATCHDOG_ID = "HB-WATCHDOG"  # the incident id on the watchdog's own alerts

_REPORT = IncidentReport(
    status=IncidentStatus.test, category=Category.accident_disaster, subtype=Subtype.public_facility,
    grade=Grade.IV, title="流水线心跳 pipeline heartbeat", dedup_key=KEY_PREFIX + "0",
)
_RECIPIENT = Recipient(id="pingan-heartbeat", name="Pingan heartbeat", channel=Channel.console, address="heartbeat")


def beat_event(beat_id: str, key: str, now: datetime) -> RawEvent:
    return RawEvent(event_id=beat_id, kind=RawKind.heartbeat, proposed_incident_id=key, received_at=now,
                    report=_REPORT.model_copy(update={"dedup_key": key}))


def is_beat(event: RawEvent | IncidentEvent) -> bool:
    if isinstance(event, RawEvent):
        return event.kind is RawKind.heartbeat
    return event.outcome is TriageOutcome.heartbeat


def is_beat_order(n: Notification) -> bool:
    return n.plan_id == PLAN_ID and n.step == STEP


def beat_incident_event(event: RawEvent) -> IncidentEvent:
    """What triage passes on: a pseudo incident keyed like the beat, so it stays on the beat's partition."""
    incident = Incident(**event.report.model_dump(exclude={"dedup_key"}), id=event.proposed_incident_id,
                        dedup_key=event.proposed_incident_id, received_at=event.received_at)
    return IncidentEvent(event_id=event.event_id, outcome=TriageOutcome.heartbeat, incident=incident)


def beat_order(event: IncidentEvent, now: datetime) -> Notification:
    """What response passes on: an order the notifier recognises (is_beat_order) and never hands to a channel.
    Even if it reached the ordinary notify stage, it has no ledger row, so the claim would fail and nothing go out."""
    return Notification(
        idempotency_key=event.event_id, incident_id=event.incident.id, incident_status=IncidentStatus.test,
        plan_id=PLAN_ID, plan_version=0, step=STEP, recipient=_RECIPIENT, channel=Channel.console,
        text="heartbeat", created_at=now,
    )


# ---- how long the pipeline has owed a beat ---------------------------------------------------------------------

@dataclass(frozen=True)
class PartitionTrack:
    """One partition's beats, from the store."""

    partition: int
    last_completed_sent_at: datetime | None  # the newest beat that arrived: when it was sent
    first_sent_at: datetime | None  # the oldest beat kept: the reference while none has arrived


def pipeline_age(tracks: list[PartitionTrack], now: datetime) -> float | None:
    """Seconds since the newest beat that went all the way through was sent, on the worst partition.

    Measured from sending, not arrival: a pipeline ten minutes behind delivers beats steadily but ten minutes
    late, and that is an outage too. A partition no beat has crossed yet counts from its first beat. None: no
    beat was ever sent."""
    ages = [(now - ref).total_seconds() for t in tracks
            if (ref := t.last_completed_sent_at or t.first_sent_at) is not None]
    return max(0.0, max(ages)) if ages else None


# ---- the decision --------------------------------------------------------------------------------------------

class MonitorState(StrEnum):
    starting = "starting"  # nothing judged yet
    ok = "ok"
    missing = "missing"  # the alert went out; the recovery notice goes when beats arrive again


class Transition(StrEnum):
    alert = "alert"
    recover = "recover"


@dataclass(frozen=True)
class Assessment:
    state: MonitorState
    transition: Transition | None
    fresh: bool  # the gauge pingan_heartbeat_ok


def is_fresh(age_s: float | None, threshold_s: float) -> bool:
    return age_s is not None and age_s <= threshold_s


def assess(previous: MonitorState, age_s: float | None, threshold_s: float, in_grace: bool) -> Assessment:
    """One alert per outage and one recovery notice after it.

    `in_grace`: the watchdog's process started less than the grace period ago and has seen no beat arrive
    since; a pipeline that is still starting up (or a store holding an old run's last beat) is no outage yet.
    """
    if is_fresh(age_s, threshold_s):
        return Assessment(MonitorState.ok, Transition.recover if previous is MonitorState.missing else None, True)
    if previous is MonitorState.missing:
        return Assessment(MonitorState.missing, None, False)
    if in_grace:
        return Assessment(previous, None, False)
    return Assessment(MonitorState.missing, Transition.alert, False)


# ---- where a beat stopped, and the words for the duty room ----------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """The newest time any beat reached each stage, and how many beats still wait in the outbox."""

    sent_at: datetime | None
    triaged_at: datetime | None
    responded_at: datetime | None
    arrived_at: datetime | None
    unpublished: int


_STUCK = {
    "relay": ("出口中继（worker 未运行，或 broker 不可用）",
              "the outbox relay (no worker running, or the broker down)"),
    "triage": ("broker 或分诊", "the broker or triage"),
    "response": ("响应（预案匹配）", "response (plan matching)"),
    "notifier": ("通知", "the notifier"),
}


def stuck_at(p: Progress) -> str:
    """The first stage no beat has passed since the last arrival: relay, triage, response or notifier."""
    def after(t: datetime | None) -> bool:
        return t is not None and (p.arrived_at is None or t > p.arrived_at)

    if after(p.responded_at):
        return "notifier"
    if after(p.triaged_at):
        return "response"
    return "relay" if p.unpublished else "triage"


def alert_text(age_s: float | None, threshold_s: float, stage: str) -> str:
    zh_stage, en_stage = _STUCK[stage]
    if age_s is None:
        zh_age, en_age = "没有任何心跳发出", "no heartbeat was ever sent"
    else:
        zh_age = f"最新走完全程的心跳已是 {age_s:.0f} 秒前发出"
        en_age = f"the newest heartbeat to complete the pipeline was sent {age_s:.0f} s ago"
    return (f"【平安自检】流水线心跳中断：{zh_age}（阈值 {threshold_s:.0f} 秒），停在：{zh_stage}。"
            f"报警可能无法送达，请立即检查 worker 与 broker。\n"
            f"[Pingan self-check] Pipeline heartbeat missing: {en_age} (threshold {threshold_s:.0f} s); stuck at "
            f"{en_stage}. Incidents may not be notified: check the workers and the broker now.")


def recovery_text(since_alert_s: float) -> str:
    return (f"【平安自检】流水线心跳恢复：告警 {since_alert_s:.0f} 秒后，心跳重新走完全程。\n"
            f"[Pingan self-check] Pipeline heartbeat restored: heartbeats complete the pipeline again, "
            f"{since_alert_s:.0f} s after the alert.")

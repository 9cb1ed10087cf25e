"""The dead-man's switch's pure part: beats on the wire, the pipeline's age, and alert / recover / nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner as AioPartitioner
from kafka.partitioner.default import DefaultPartitioner as KafkaPythonPartitioner

from pingan.handlers.incidents.heartbeat import (
    MonitorState,
    PartitionTrack,
    Progress,
    Transition,
    alert_text,
    assess,
    beat_event,
    beat_incident_event,
    beat_order,
    is_beat,
    is_beat_order,
    pipeline_age,
    recovery_text,
    stuck_at,
)
from pingan.schemas.events import IncidentEvent, RawEvent, RawKind, TriageOutcome
from pingan.schemas.notification import Notification
from pingan.schemas.taxonomy import IncidentStatus
from pingan.streams.partitioning import beat_keys

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
THRESHOLD = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- alert / recover / nothing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("previous", "age", "in_grace", "state", "transition"), [
    (MonitorState.starting, 5.0, True, MonitorState.ok, None),  # first beat through: ok, nothing to say
    (MonitorState.ok, 30.0, False, MonitorState.ok, None),
    (MonitorState.ok, 60.0, False, MonitorState.ok, None),  # exactly the threshold is still fresh
    (MonitorState.ok, 60.5, False, MonitorState.missing, Transition.alert),
    (MonitorState.missing, 600.0, False, MonitorState.missing, None),  # one alert per outage
    (MonitorState.missing, 3.0, False, MonitorState.ok, Transition.recover),
    (MonitorState.starting, 500.0, True, MonitorState.starting, None),  # still starting up: no verdict yet
    (MonitorState.ok, 500.0, True, MonitorState.ok, None),  # an old run's "ok" and last beat, in the grace period
    (MonitorState.starting, 500.0, False, MonitorState.missing, Transition.alert),  # never came up
    (MonitorState.starting, None, False, MonitorState.missing, Transition.alert),  # no beat was ever sent
    (MonitorState.missing, None, False, MonitorState.missing, None),
])
def test_assess(previous: MonitorState, age: float | None, in_grace: bool, state: MonitorState,
                transition: Transition | None) -> None:
    result = assess(previous, age, THRESHOLD, in_grace)
    assert (result.state, result.transition) == (state, transition)
    assert result.fresh is (age is not None and age <= THRESHOLD)


def test_one_alert_and_one_recovery_per_outage() -> None:
    ages = [1, 20, 59, 61, 90, 400, 2, 5, 70, 80, 1, 3]
    state, said = MonitorState.starting, []
    for age in ages:
        result = assess(state, age, THRESHOLD, in_grace=False)
        state = result.state
        if result.transition:
            said.append(result.transition.value)
    assert said == ["alert", "recover", "alert", "recover"]


# ---- the pipeline's age ----------------------------------------------------------------------------------------

def test_age_is_from_sending_on_the_worst_partition() -> None:
    now = at(100)
    tracks = [
        PartitionTrack(0, last_completed_sent_at=at(95), first_sent_at=at(0)),
        PartitionTrack(1, last_completed_sent_at=at(70), first_sent_at=at(0)),  # stuck for 30 s
        PartitionTrack(2, last_completed_sent_at=at(98), first_sent_at=at(0)),
    ]
    assert pipeline_age(tracks, now) == 30.0


def test_a_partition_no_beat_has_crossed_counts_from_its_first_beat() -> None:
    assert pipeline_age([PartitionTrack(0, None, at(10))], at(100)) == 90.0
    assert pipeline_age([], at(100)) is None
    assert pipeline_age([PartitionTrack(0, None, None)], at(100)) is None


def test_a_late_pipeline_is_old_even_when_beats_keep_arriving() -> None:
    # Beats arrive every 30 s but each was sent 10 minutes earlier: the age says 10 minutes, not 30 s.
    assert pipeline_age([PartitionTrack(0, at(400), at(0))], at(1000)) == 600.0


# ---- beats on the wire -----------------------------------------------------------------------------------------

class _Topic:
    """The two questions kafka-python's partitioner asks of cluster metadata, for one topic."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, _: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, _: str) -> set[int]:
        return self.partitions


@pytest.mark.parametrize("partitions", [1, 3, 6])
def test_one_key_per_partition_for_both_kafka_clients(partitions: int) -> None:
    """The relay publishes with kafka-python, the agents with aiokafka: both must put beat k on partition k."""
    keys = beat_keys(partitions)
    everyone = list(range(partitions))
    kafka_python = KafkaPythonPartitioner()
    assert [kafka_python.partition("t", k, k.encode(), None, None, _Topic(partitions)) for k in keys] == everyone
    assert [AioPartitioner()(k.encode(), everyone, everyone) for k in keys] == everyone
    assert beat_keys(partitions) == keys  # stable across processes and restarts


def test_a_beat_passes_each_topic_as_itself_and_never_as_an_incident() -> None:
    key = beat_keys(3)[1]
    raw = RawEvent.model_validate_json(beat_event("hb-0123456789abcdef", key, T0).model_dump_json())
    assert raw.kind is RawKind.heartbeat and is_beat(raw)
    assert raw.report.status is IncidentStatus.test and raw.report.effective_dedup_key() == key
    triaged = IncidentEvent.model_validate_json(beat_incident_event(raw).model_dump_json())
    assert triaged.outcome is TriageOutcome.heartbeat and is_beat(triaged)
    assert triaged.incident.id == key and triaged.event_id == raw.event_id  # same partition, same beat
    order = Notification.model_validate_json(beat_order(triaged, T0).model_dump_json())
    assert is_beat_order(order) and order.idempotency_key == raw.event_id and order.incident_id == key
    assert order.incident_status is IncidentStatus.test


def test_ordinary_traffic_is_not_a_beat() -> None:
    raw = beat_event("hb-0123456789abcdef", "HB-0", T0).model_copy(update={"kind": RawKind.report})
    assert not is_beat(raw)
    order = beat_order(beat_incident_event(beat_event("hb-0123456789abcdef", "HB-0", T0)), T0)
    assert not is_beat_order(order.model_copy(update={"plan_id": "building-fire"}))
    assert not is_beat_order(order.model_copy(update={"step": "alert"}))  # the watchdog's own alerts


# ---- where it stopped, and the words ---------------------------------------------------------------------------

@pytest.mark.parametrize(("progress", "stage"), [
    (Progress(at(50), at(10), at(10), at(10), unpublished=3), "relay"),  # nothing published since
    (Progress(at(50), at(10), at(10), at(10), unpublished=0), "triage"),  # published, never triaged
    (Progress(at(50), at(40), at(10), at(10), unpublished=0), "response"),
    (Progress(at(50), at(40), at(40), at(10), unpublished=0), "notifier"),
    (Progress(at(50), at(40), at(40), None, unpublished=0), "notifier"),
    (Progress(None, None, None, None, unpublished=0), "triage"),
])
def test_stuck_at(progress: Progress, stage: str) -> None:
    assert stuck_at(progress) == stage


def test_the_texts_are_bilingual_and_say_how_long() -> None:
    text = alert_text(125.4, 60, "relay")
    assert "125 秒" in text and "125 s ago" in text and "阈值 60 秒" in text and "threshold 60 s" in text
    assert "出口中继" in text and "outbox relay" in text
    assert "no heartbeat was ever sent" in alert_text(None, 60, "triage")
    restored = recovery_text(42)
    assert "恢复" in restored and "restored" in restored and "42 s" in restored

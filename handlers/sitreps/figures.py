"""The figures of a situation report, from rows the store read (store/sitrep_queries.py). Pure.

- Incidents: the real ones (status actual) received in the period, and in the previous period of equal length, by
  category, subtype, grade, area (the location's name, else its code, else "-") and state (as of the report). One
  merged into another (the same event, `pingan merge`) is counted once, as the incident it joined (its reports are
  in that one's report_count); only the notifications it sent still count.
- Response times, per incident of the period, in minutes from its receipt (received_at), so the triage and plan
  matching time counts against the office, as a citizen sees it:
  first notification (the first `notified` entry) against the activated level's earliest notify step
  (`delay_min`); first acknowledgement against the earliest acknowledgement deadline of its steps (when the step
  runs in the worst case, handlers.plans.timeline.step_schedule, plus its `ack_timeout_min`; roll calls excluded);
  close against nothing: plans set no time to close, so only its median and p90 are given. A target is met within
  TOLERANCE_MIN of it (the drill scoring's tolerance): a first step at minute 0 is met by the seconds the pipeline
  takes. The level is the one of
  the first `plan_activated` entry; an incident without one has no target. A target missed is one reached late, or
  not reached though its time has passed by the report's time (or the close, for a closed incident).
- Notifications by channel, from the ledger rows of the period's incidents.
- Roll calls: per incident, level and roll-call step, who was notified and who of them confirmed.
- Tasks: per level the incident ran at (each `plan_activated`), its tasks (in the entry's details) against the
  first `task_done` of that level: met by the deadline, late after, missed when the deadline passed undone before
  the level ended (the next activation, the close or the report's time), not due otherwise.
- Areas (handlers/sitreps/areas.py): incidents and reports per community, and per grid of the busiest
  communities, from triage's placement path, this period and the previous one.
- Releases: published releases of the period's incidents and the time from receipt to each incident's first;
  `None` rows mean the store has no release workflow (the figures are then marked not available).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pingan.handlers.incidents.merge import MERGED_INTO
from pingan.handlers.plans.timeline import step_schedule
from pingan.handlers.sitreps.areas import area_counts
from pingan.handlers.sitreps.period import buckets
from pingan.schemas.action import Action, ActionKind
from pingan.schemas.incident import Incident
from pingan.schemas.plan import Level, Plan
from pingan.schemas.sitrep import (
    AreaReports,
    Breakdown,
    Bucket,
    ChannelCounts,
    CountRow,
    OpenIncident,
    Period,
    Releases,
    ResponseTime,
    RollCall,
    Sitrep,
    TaskCounts,
)
from pingan.schemas.taxonomy import Grade, IncidentState

NO_AREA = "-"
TOLERANCE_MIN = 1.0
TOP_AREAS = 5
_SEVERITY = {"I": 0, "II": 1, "III": 2, "IV": 3}


@dataclass(frozen=True)
class LedgerRow:
    incident_id: str
    channel: str
    state: str


@dataclass
class SitrepRows:
    """What the store read for one period: real incidents only, exercise and test ones only counted."""

    incidents: list[Incident]  # received in [previous_start, end)
    exercise_excluded: int
    timelines: dict[str, list[Action]]  # the period's incidents' log entries, in seq order
    ledger: list[LedgerRow]  # the period's incidents' notifications
    still_open: list[Incident]  # not closed, received before the period's end
    releases: list[tuple[str, datetime]] | None = field(default=None)  # (incident id, published at); None: no workflow


def minutes(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 60.0, 2)


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the ceil(0.9 n)-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.9 * len(ordered))) - 1]


def area_of(incident: Incident) -> str:
    return incident.location.area_name or incident.location.area_code or NO_AREA


def _rows(current: Iterable[str], previous: Iterable[str]) -> list[CountRow]:
    now, before = Counter(current), Counter(previous)
    keys = sorted(set(now) | set(before), key=lambda k: (-now[k], -before[k], k))
    return [CountRow(key=k, current=now[k], previous=before[k]) for k in keys]


def _breakdown(current: list[Incident], previous: list[Incident]) -> Breakdown:
    def rows(pick) -> list[CountRow]:  # type: ignore[no-untyped-def]
        return _rows(map(pick, current), map(pick, previous))

    return Breakdown(category=rows(lambda i: i.category.value), subtype=rows(lambda i: i.subtype.value),
                     grade=rows(lambda i: i.grade.value), area=rows(area_of), state=rows(lambda i: i.state.value))


def _activations(timeline: list[Action]) -> list[tuple[int, Action]]:
    return [(n, a) for n, a in enumerate(timeline) if a.kind is ActionKind.plan_activated]


def _level(plans: Mapping[str, Plan], activation: Action) -> Level | None:
    plan = plans.get(activation.plan_id or "")
    grade = activation.details.get("level")
    return plan.level(Grade(grade)) if plan is not None and grade in _SEVERITY else None


def _first(timeline: list[Action], kind: ActionKind) -> datetime | None:
    return next((a.at for a in timeline if a.kind is kind), None)


def _targets(level: Level | None) -> tuple[float | None, float | None]:
    """(first notification, first acknowledgement) targets in minutes after activation."""
    if level is None:
        return None, None
    schedule = step_schedule(level)
    notify = min(s.fires for s in schedule)
    acks = [s.fires + s.step.ack_timeout_min for s in schedule if s.step.ack_timeout_min and not s.step.roll_call]
    return notify, (min(acks) if acks else None)


TARGET_RULES = {
    "first_notification": "the activated level's earliest notify step (delay_min), + 1 min tolerance",
    "first_acknowledgement": "the activated level's earliest acknowledgement deadline (step run + ack_timeout_min), "
                             "+ 1 min tolerance",
    "close": "plans set no time to close: not scored",
}


class _Measure:
    def __init__(self, name: str) -> None:
        self.name, self.times, self.incidents, self.with_target, self.met, self.missed = name, [], 0, 0, 0, 0

    def add(self, actual: float | None, target: float | None, elapsed: float) -> None:
        self.incidents += 1
        if actual is not None:
            self.times.append(actual)
        if target is None:
            return
        self.with_target += 1
        if actual is not None and actual <= target + TOLERANCE_MIN:
            self.met += 1
        elif actual is not None or elapsed > target + TOLERANCE_MIN:
            self.missed += 1

    def model(self) -> ResponseTime:
        return ResponseTime(measure=self.name, incidents=self.incidents, reached=len(self.times),  # type: ignore[arg-type]
                            median_min=median(self.times), p90_min=p90(self.times), with_target=self.with_target,
                            met=self.met, missed=self.missed, target_rule=TARGET_RULES[self.name])


def _response_times(incidents: list[Incident], timelines: Mapping[str, list[Action]], plans: Mapping[str, Plan],
                    as_of: datetime) -> list[ResponseTime]:
    measures = {name: _Measure(name) for name in TARGET_RULES}
    for incident in incidents:
        timeline = timelines.get(incident.id, [])
        activations = _activations(timeline)
        level = _level(plans, activations[0][1]) if activations else None
        notify_target, ack_target = _targets(level)
        closed = _first(timeline, ActionKind.closed)
        elapsed = minutes(incident.received_at, closed or as_of)

        def since_receipt(at: datetime | None, received: datetime = incident.received_at) -> float | None:
            return minutes(received, at) if at is not None else None

        measures["first_notification"].add(since_receipt(_first(timeline, ActionKind.notified)), notify_target,
                                           elapsed)
        measures["first_acknowledgement"].add(since_receipt(_first(timeline, ActionKind.acknowledged)), ack_target,
                                              elapsed)
        measures["close"].add(since_receipt(closed), None, elapsed)
    return [m.model() for m in measures.values()]


def _notifications(ledger: Iterable[LedgerRow]) -> list[ChannelCounts]:
    by: dict[str, Counter[str]] = {}
    for row in ledger:
        by.setdefault(row.channel, Counter())[row.state] += 1
    return [ChannelCounts(channel=ch, intended=sum(c.values()), sent=c["sent"] + c["delivered"],
                          delivered=c["delivered"], failed=c["failed"], pending=c["intended"] + c["sending"])
            for ch, c in sorted(by.items())]


def _roll_calls_and_tasks(incidents: list[Incident], timelines: Mapping[str, list[Action]],
                          plans: Mapping[str, Plan], as_of: datetime) -> tuple[RollCall, TaskCounts]:
    notified = confirmed = 0
    results: Counter[str] = Counter()
    for incident in incidents:
        timeline = timelines.get(incident.id, [])
        closed = _first(timeline, ActionKind.closed)
        activations = _activations(timeline)
        for k, (index, activation) in enumerate(activations):
            end_index = activations[k + 1][0] if k + 1 < len(activations) else len(timeline)
            level_end = activations[k + 1][1].at if k + 1 < len(activations) else (closed or as_of)
            entries = timeline[index + 1:end_index]
            grade = str(activation.details.get("level") or "")
            level = _level(plans, activation)
            for step in level.notify if level else []:
                if not step.roll_call:
                    continue
                told = {a.details.get("recipient") for a in entries
                        if a.kind is ActionKind.notified and a.details.get("step") == step.id}
                told.discard(None)
                said = {a.actor for a in timeline if a.kind is ActionKind.confirmed
                        and a.details.get("step") == step.id}
                notified += len(told)
                confirmed += len(told & said)
            for task in activation.details.get("tasks") or []:
                done = next((a for a in entries if a.kind is ActionKind.task_done
                             and a.details.get("task") == task.get("id")
                             and str(a.details.get("level") or grade) == grade), None)
                deadline = float(task.get("deadline_min") or 0)
                if done is not None:
                    results["met" if minutes(activation.at, done.at) <= deadline + TOLERANCE_MIN else "late"] += 1
                else:
                    late = minutes(activation.at, level_end) > deadline + TOLERANCE_MIN
                    results["missed" if late else "not_due"] += 1
    completion = round(confirmed / notified, 4) if notified else None
    return (RollCall(notified=notified, confirmed=confirmed, completion=completion),
            TaskCounts(total=sum(results.values()), met=results["met"], late=results["late"],
                       missed=results["missed"], not_due=results["not_due"]))


def _releases(incidents: list[Incident], rows: list[tuple[str, datetime]] | None) -> Releases:
    if rows is None:
        return Releases(available=False)
    received = {i.id: i.received_at for i in incidents}
    mine = [(iid, at) for iid, at in rows if iid in received]
    first: dict[str, datetime] = {}
    for iid, at in mine:
        first[iid] = min(at, first.get(iid, at))
    times = [minutes(received[iid], at) for iid, at in first.items()]
    return Releases(available=True, published=len(mine), incidents_with_release=len(first),
                    time_to_first_release_median_min=median(times), time_to_first_release_p90_min=p90(times))


def _still_open(rows: list[Incident], as_of: datetime) -> list[OpenIncident]:
    ordered = sorted((i for i in rows if i.state is not IncidentState.closed),
                     key=lambda i: (_SEVERITY[i.grade.value], i.received_at, i.id))
    return [OpenIncident(id=i.id, title=i.title, category=i.category.value, subtype=i.subtype.value,
                         grade=i.grade.value, state=i.state.value, area=area_of(i), received_at=i.received_at,
                         open_hours=round((as_of - i.received_at).total_seconds() / 3600.0, 2)) for i in ordered]


def _top_areas(incidents: list[Incident]) -> list[AreaReports]:
    counts: dict[str, list[int]] = {}
    for i in incidents:
        entry = counts.setdefault(area_of(i), [0, 0])
        entry[0] += 1
        entry[1] += i.report_count
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:TOP_AREAS]
    return [AreaReports(area=a, incidents=n, reports=r) for a, (n, r) in ranked]


def compute(period: Period, rows: SitrepRows, plans: Mapping[str, Plan], *, as_of: datetime) -> Sitrep:
    """The report. `plans`: plan id -> Plan (the loaded set), for the targets and the roll-call steps."""
    events = [i for i in rows.incidents if MERGED_INTO not in i.labels]
    current = [i for i in events if period.start <= i.received_at < period.end]
    previous = [i for i in events if period.previous_start <= i.received_at < period.previous_end]
    merged = sum(1 for i in rows.incidents if MERGED_INTO in i.labels and period.start <= i.received_at < period.end)
    roll_call, tasks = _roll_calls_and_tasks(current, rows.timelines, plans, as_of)
    by_community, by_grid = area_counts(current, previous)
    over_time = [Bucket(start=start, label=label, current=sum(1 for i in current if start <= i.received_at < end))
                 for start, end, label in buckets(period)]
    return Sitrep(
        generated_at=as_of, period=period, incidents=len(current), incidents_previous=len(previous),
        reports=sum(i.report_count for i in current), exercise_excluded=rows.exercise_excluded,
        merged_excluded=merged,
        by=_breakdown(current, previous), response_times=_response_times(current, rows.timelines, plans, as_of),
        notifications=_notifications(rows.ledger), roll_call=roll_call, tasks=tasks,
        releases=_releases(current, rows.releases),
        still_open=_still_open([i for i in rows.still_open if i.received_at < period.end], as_of),
        top_areas=_top_areas(current), over_time=over_time, by_community=by_community, by_grid=by_grid,
    )

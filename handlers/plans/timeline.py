"""The escalation timeline of one plan level: who is told what, when, if nobody acknowledges. Pure.

Semantics (shared by `pingan plans test`, the lint and the escalation engine):

- Every notify step runs at its `delay_min` after activation, acknowledged or not: each grade's plan
  says who must be told, and an early acknowledgment by the duty officer does not make the commander's
  call optional.
- `ack_timeout_min` is the window each attempt of a step has to be acknowledged. A step with `repeat: n`
  is re-sent n times, one window apart, while unacknowledged. When the last window closes with no
  acknowledgment, the NEXT step (in list order) runs at once if it has not run yet: that is an escalation.
  So, with nobody acknowledging, step i runs at
      fires(i) = min(delay(i), fires(i-1) + ack_timeout(i-1) * (repeat(i-1) + 1))   when step i-1 has a timeout
      fires(i) = delay(i)                                                          otherwise
  `repeat` without `ack_timeout_min` has no interval and is a lint error; it is ignored here.
- `roll_call` (点名): every recipient must confirm; the check is at the end of the step's last window
  (or at once when it has no timeout), and lists who did not confirm.
- Tasks appear at their deadline.

The timeline is the worst case: nobody acknowledges. Entries that an acknowledgment would cancel name the
step whose acknowledgment cancels them in `unless_acked`. Rosters are resolved at the moment of each entry
(`at` + minute), so a shift handoff during the escalation calls the new shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pingan.handlers.plans.directory import DirectoryIndex, resolve
from pingan.schemas.areas import Placement
from pingan.schemas.directory import Person
from pingan.schemas.plan import Level, NotifyChannel, NotifyStep, Plan, Target


class EntryKind(StrEnum):
    notify = "notify"
    escalate = "escalate"
    repeat = "repeat"
    roll_call = "roll_call"
    task = "task"


# At one minute: notifications first, then repeats, then roll-call checks, then deadlines.
_KIND_ORDER = {EntryKind.notify: 0, EntryKind.escalate: 0, EntryKind.repeat: 1, EntryKind.roll_call: 2,
               EntryKind.task: 3}

CHANNEL_WORDS: dict[NotifyChannel, str] = {
    NotifyChannel.console: "console",
    NotifyChannel.sms: "SMS",
    NotifyChannel.voice: "voice call",
    NotifyChannel.webhook: "webhook",
    NotifyChannel.email: "e-mail",
}


@dataclass(frozen=True)
class StepSchedule:
    """When one notify step runs with nobody acknowledging (see the module docstring)."""

    index: int
    step: NotifyStep
    fires: float  # minute it runs
    escalated_from: str | None  # id of the unacknowledged step that brought it forward, else None
    attempts: tuple[float, ...]  # fires, then each repeat
    window_end: float | None  # when its last attempt's ack window closes; None without ack_timeout_min

    @property
    def scheduled(self) -> float:
        return self.step.delay_min


def step_schedule(level: Level) -> list[StepSchedule]:
    """Each notify step's worst-case run time, in list order. Needs no directory: lint uses it too."""
    out: list[StepSchedule] = []
    previous: StepSchedule | None = None
    for i, step in enumerate(level.notify):
        fires, escalated_from = step.delay_min, None
        if previous is not None and previous.window_end is not None and previous.window_end < step.delay_min:
            fires, escalated_from = previous.window_end, previous.step.id
        if step.ack_timeout_min is None:
            attempts: tuple[float, ...] = (fires,)
            window_end = None
        else:
            attempts = tuple(fires + k * step.ack_timeout_min for k in range(step.repeat + 1))
            window_end = fires + step.ack_timeout_min * (step.repeat + 1)
        current = StepSchedule(i, step, fires, escalated_from, attempts, window_end)
        out.append(current)
        previous = current
    return out


@dataclass(frozen=True)
class ResolvedTarget:
    """A plan target and the people it reached at the entry's moment (empty: nobody)."""

    target: Target
    people: tuple[Person, ...]

    def label(self) -> str:
        """e.g. `值班员 张三 (roster duty-officer)`."""
        names = "、".join(person_label(p) for p in self.people) or "nobody"
        kind, _, ident = self.target.key().partition(":")
        return f"{names} ({kind} {ident})"


@dataclass(frozen=True)
class TimelineEntry:
    minute: float
    kind: EntryKind
    ref: str  # the notify step's or task's id
    channels: tuple[NotifyChannel, ...]
    targets: tuple[ResolvedTarget, ...]
    text: str
    attempt: int = 0  # 0: first run; k: the k-th repeat
    unless_acked: str | None = None  # the step whose acknowledgment cancels this entry

    @property
    def people(self) -> tuple[Person, ...]:
        seen: dict[str, Person] = {}
        for target in self.targets:
            for person in target.people:
                seen.setdefault(person.id, person)
        return tuple(seen.values())


def person_label(person: Person) -> str:
    return f"{person.title.zh} {person.name}" if person.title else person.name


def format_minute(minute: float) -> str:
    return f"t+{minute:g}" if minute else "t+0"


def escalation_timeline(plan: Plan, level: Level, directory: DirectoryIndex, at: datetime,
                        placement: Placement | None = None) -> list[TimelineEntry]:
    """Everything that follows activating `level` of `plan` at `at` if nobody acknowledges, sorted by minute.
    `placement`: where the incident is placed, for the area targets ({grid_officer: incident}, {area_leader: …})."""
    if not any(lv is level or lv == level for lv in plan.levels):
        raise ValueError(f"level {level.grade.value} is not a level of plan {plan.id!r}")

    def reach(targets: list[Target], minute: float) -> tuple[ResolvedTarget, ...]:
        when = at + timedelta(minutes=minute)
        return tuple(ResolvedTarget(t, tuple(resolve(t, level, directory, when, placement=placement)))
                     for t in targets)

    entries: list[tuple[tuple[float, int, int], TimelineEntry]] = []
    order = 0

    def add(entry: TimelineEntry) -> None:
        nonlocal order
        entries.append(((entry.minute, _KIND_ORDER[entry.kind], order), entry))
        order += 1

    for sched in step_schedule(level):
        step = sched.step
        channels = tuple(step.channels)
        how = " + ".join(CHANNEL_WORDS[c] for c in channels)
        targets = reach(step.targets, sched.fires)
        whom = ", ".join(t.label() for t in targets)
        if sched.escalated_from is None:
            add(TimelineEntry(sched.fires, EntryKind.notify, step.id, channels, targets,
                              f"{how} to {whom} [step {step.id}]"))
        else:
            text = (f"if {sched.escalated_from!r} is not acknowledged: escalate at once to {how} to {whom} "
                    f"[step {step.id}, scheduled {format_minute(sched.scheduled)}]")
            add(TimelineEntry(sched.fires, EntryKind.escalate, step.id, channels, targets, text,
                              unless_acked=sched.escalated_from))
        for k, minute in enumerate(sched.attempts[1:], start=1):
            again = reach(step.targets, minute)
            unless = "to whoever has not confirmed" if step.roll_call else "if not acknowledged"
            text = (f"{unless}: repeat {k}/{step.repeat}: {how} to "
                    f"{', '.join(t.label() for t in again)} [step {step.id}]")
            add(TimelineEntry(minute, EntryKind.repeat, step.id, channels, again, text, attempt=k,
                              unless_acked=step.id))
        if step.roll_call:
            minute = sched.window_end if sched.window_end is not None else sched.fires
            names = "、".join(person_label(p) for t in targets for p in t.people) or "nobody"
            text = f"roll call (点名): who of {names} has not confirmed is reported [step {step.id}]"
            add(TimelineEntry(minute, EntryKind.roll_call, step.id, channels, targets, text))

    for task in level.tasks:
        owner = reach([task.owner], task.deadline_min)
        title = task.title.zh + (f" ({task.title.en})" if task.title.en else "")
        add(TimelineEntry(task.deadline_min, EntryKind.task, task.id, (), owner,
                          f"task deadline: {title} — owner {owner[0].label()} [task {task.id}]"))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]

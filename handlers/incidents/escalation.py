"""Escalation: the deadlines a level's steps create, and what a duty officer's command does. Pure.

The schedule follows handlers/timeline.py (the same rules `pingan plans test` prints): every step runs at its
delay; an unacknowledged step's repeats come one ack window apart; when its last window closes the next step is
brought forward (an escalation). An acknowledgement cancels the repeats and escalations, not the steps the plan
says must be told anyway. A roll-call step's repeats go only to those who have not confirmed, ack or not.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pingan.handlers.incidents.tasks import task_key
from pingan.handlers.plans.timeline import step_schedule
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.incident import Incident
from pingan.schemas.plan import Level
from pingan.schemas.taxonomy import IncidentState


class DeadlineKind(StrEnum):
    step = "step"  # a step at its own delay
    escalate = "escalate"  # a step brought forward because the one before went unacknowledged
    repeat = "repeat"
    roll_call = "roll_call"  # the check of who has not confirmed


@dataclass(frozen=True)
class Deadline:
    step_id: str
    kind: DeadlineKind
    attempt: int
    minute: float
    cancel_on_ack: bool


def deadlines(level: Level) -> list[Deadline]:
    """Everything after t+0 that the level schedules (t+0 steps are sent when the plan activates)."""
    out: list[Deadline] = []
    for s in step_schedule(level):
        roll_call = s.step.roll_call
        if s.escalated_from is not None:
            out.append(Deadline(s.step.id, DeadlineKind.escalate, 1, s.fires, True))
        if s.step.delay_min > 0:
            out.append(Deadline(s.step.id, DeadlineKind.step, 1, s.step.delay_min, False))
        for k, minute in enumerate(s.attempts[1:], start=2):
            out.append(Deadline(s.step.id, DeadlineKind.repeat, k, minute, not roll_call))
        if roll_call:
            out.append(Deadline(s.step.id, DeadlineKind.roll_call, 1, s.window_end or s.fires, False))
    return sorted(out, key=lambda d: (d.minute, d.step_id, d.kind.value, d.attempt))


def due_at(activated_at: datetime, minute: float, time_scale: float) -> datetime:
    """`time_scale` > 1 fast-forwards the plan's minutes (drills and tests, as GoAlert's smoke harness does)."""
    return activated_at + timedelta(seconds=minute * 60.0 / time_scale)


class Command(StrEnum):
    acknowledge = "acknowledge"
    escalate = "escalate"
    close = "close"
    handover = "handover"
    confirm = "confirm"
    task_done = "task_done"


class CommandRefused(Exception):
    """A command that cannot apply; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class CommandDecision:
    state: IncidentState
    actions: list[ActionDraft]
    cancel: str | None  # "ack": rows an acknowledgement cancels; "all": every pending row
    fire_next_step: bool = False
    note: str | None = None  # a command that changes nothing says so (an acknowledgement repeated)


_KINDS = {Command.acknowledge: ActionKind.acknowledged, Command.escalate: ActionKind.escalated,
          Command.close: ActionKind.closed, Command.handover: ActionKind.handed_over,
          Command.confirm: ActionKind.confirmed, Command.task_done: ActionKind.task_done}


def decide_command(incident: Incident, command: Command, actor: str, at: datetime,
                   details: dict[str, Any], steps_pending: bool = True) -> CommandDecision:
    """`steps_pending`: whether the incident still has a notify step or escalation to fire (escalate needs one)."""
    if incident.state is IncidentState.closed and command is not Command.confirm:
        raise CommandRefused(f"incident {incident.id} is closed")
    if command is Command.handover and not details.get("to"):
        raise CommandRefused("handover needs the person to hand over to")
    if command is Command.task_done and not details.get("task"):
        raise CommandRefused("task_done needs the task id")
    if command is Command.close and not details.get("reason"):
        raise CommandRefused("close needs a reason")
    if command is Command.acknowledge and incident.state is IncidentState.acknowledged:
        # A second acknowledgement (a re-sent SMS, two officers at once) is answered, not logged again.
        return CommandDecision(incident.state, [], None, note=f"incident {incident.id} is already acknowledged")
    if command is Command.escalate and not steps_pending:
        raise CommandRefused(f"nothing left to escalate to in {incident.id}: every step of its plan level has run "
                             "(regrade it to bring in the next level)")
    # A task is done once per level: the key makes a second report of it (two officers at once) log nothing.
    key = task_key(incident.id, str(details["level"]), str(details["task"])) \
        if command is Command.task_done and details.get("level") else None
    action = ActionDraft(incident_id=incident.id, at=at, actor=actor, kind=_KINDS[command],
                         details={k: v for k, v in details.items() if v is not None}, idempotency_key=key)
    if command is Command.acknowledge:
        return CommandDecision(IncidentState.acknowledged, [action], "ack")
    if command is Command.close:
        return CommandDecision(IncidentState.closed, [action], "all")
    if command is Command.escalate:
        return CommandDecision(incident.state, [action], None, fire_next_step=True)
    return CommandDecision(incident.state, [action], None)


def level_with_holders(level: Level, holders: dict[str, str]) -> Level:
    """The level's command chain after handovers: a handed-over role now reaches its new holder."""
    if not holders:
        return level
    command = dict(level.command)
    for role, person in holders.items():
        command[role] = {"person": person}  # type: ignore[index]
    return Level.model_validate({**level.model_dump(), "command": command})


_SEVERITY = {"I": 0, "II": 1, "III": 2, "IV": 3}


def grade_raise(plan_rules: list[Any], grade: str, report_times: list[datetime], now: datetime,
                labels: dict[str, str], time_scale: float = 1.0) -> tuple[str, str] | None:
    """(new grade, rule id) when a plan's escalate_grade rule raises the incident above `grade`, else None.

    `report_times` are the times of the incident's reports (the first and every correlated one); `time_scale` is the
    incident's clock (a drill's speed), so "5 reports within 30 minutes" means 30 of the drill's minutes."""
    best: tuple[str, str] | None = None
    for rule in plan_rules:
        held = False
        if rule.correlated_reports is not None and rule.within_min is not None:
            since = now - timedelta(minutes=rule.within_min / time_scale)
            held = sum(1 for t in report_times if t >= since) >= rule.correlated_reports
        elif rule.casualties_gte is not None:
            try:
                held = int(labels.get("casualties", "0")) >= rule.casualties_gte
            except ValueError:
                held = False
        target = rule.raise_to.value
        if held and _SEVERITY[target] < _SEVERITY[best[0] if best else grade]:
            best = (target, rule.id)
    return best

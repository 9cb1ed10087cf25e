"""Duty officers' commands, by every route (CLI, HTTP, SMS reply, voice keypress): one service, one log. Also a plan's
four-eyes approval, logged in the same chain."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pingan import metrics
from pingan.handlers.incidents.escalation import Command, CommandRefused, decide_command
from pingan.handlers.incidents.merge import SPLIT_OUT, decide_merge, decide_split
from pingan.handlers.incidents.tasks import tasks_done
from pingan.handlers.plans.approval import approval_refusal, approved_yaml
from pingan.handlers.plans.directory import on_duty
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanLoadError
from pingan.schemas.action import Action, ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.events import IntakeItem, RawKind
from pingan.schemas.incident import Incident
from pingan.schemas.notification import DeliveryState
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Grade
from pingan.store.merges import apply_merge, apply_split, first_event_id, reports_of
from pingan.store.repository import Store
from pingan.store.response import ResponseStore


@dataclass(frozen=True)
class CommandResult:
    incident: Incident
    actions: list[Action]
    note: str | None = None  # e.g. "already acknowledged": nothing changed, nothing logged


def run_command(store: Store, plans: PlanSet, incident_id: str, command: Command, actor: str,
                **details: Any) -> CommandResult:
    """Apply one command; raises CommandRefused with a sentence for the person who sent it."""
    resolved = store.resolve_incident_id(incident_id)
    incident = store.get_incident(resolved) if resolved else None
    if incident is None:
        raise CommandRefused(f"incident {incident_id} not found")
    role = None
    if command is Command.handover:
        role = details.setdefault("role", "commander")
        to = details.get("to")
        if plans.directory.people and to not in plans.directory.people:
            raise CommandRefused(f"{to!r} is not a person in the directory")
        details["from"] = ResponseStore(store).role_holders(incident.id).get(role) or _plan_holder(
            store, plans, incident, role)
    if command is Command.task_done:
        details["level"] = _check_task(store, plans, incident, str(details.get("task") or ""))
    steps_pending = command is not Command.escalate or any(
        row.kind in ("step", "escalate") for row in ResponseStore(store).pending(incident.id))
    decision = decide_command(incident, command, actor, utcnow(), details, steps_pending)
    if decision.note:  # nothing changes: nothing to write
        return CommandResult(incident, [], decision.note)
    actions = ResponseStore(store).apply_command(incident, decision, role, details.get("to"))
    if actions and command is Command.acknowledge:
        metrics.acknowledged(store.timeline(incident.id), incident.status)
    elif actions and command is Command.escalate:
        metrics.escalation("manual", incident.status)
    return CommandResult(store.get_incident(incident.id) or incident, actions, decision.note)


def merge_incidents(store: Store, target_id: str, source_id: str, actor: str, reason: str | None = None
                    ) -> CommandResult:
    """Merge incident `source_id` into `target_id` (one event reported twice); raises CommandRefused saying why."""
    target, source = _incident(store, target_id), _incident(store, source_id)
    decision = decide_merge(target, source, actor, utcnow(), reason)
    return CommandResult(decision.target, apply_merge(store, decision))


def split_report(store: Store, incident_id: str, event_id: str, actor: str, raw_topic: str,
                 reason: str | None = None) -> tuple[CommandResult, str]:
    """Split report `event_id` out of the incident into an incident of its own, through intake again.

    Returns the result and the id the new report was accepted under (its incident id once triage has it). The report
    is accepted before the split is logged, under a key made from the event, so a repeat after a crash accepts it
    once and logs once."""
    incident = _incident(store, incident_id)
    if event_id in incident.labels.get(SPLIT_OUT, "").split(","):
        raise CommandRefused(f"report {event_id} is already split out of {incident.id}")
    report = next((r for r in reports_of(store, incident) if r.event_id == event_id), None)
    if report is None:
        raise CommandRefused(f"report {event_id} is not one of {incident.id}'s reports")
    decision = decide_split(incident, report.event, first_event_id(store, incident.id), actor, utcnow(), reason)
    accepted = store.accept(IntakeItem(kind=RawKind.report, report=decision.report, source_key=decision.source_key),
                            raw_topic)
    return CommandResult(decision.incident, apply_split(store, decision)), accepted.incident_id


def _incident(store: Store, some_id: str) -> Incident:
    resolved = store.resolve_incident_id(some_id)
    incident = store.get_incident(resolved) if resolved else None
    if incident is None:
        raise CommandRefused(f"incident {some_id} not found")
    return incident


def _check_task(store: Store, plans: PlanSet, incident: Incident, task: str) -> str:
    """Only a task of the level in force can be done, once per level (a level's task has its own deadline, so
    report-city done at grade III is due again at grade II); returns that level's grade."""
    plan = plans.get(store.response_plan(incident.id) or "")
    level = plan.level(incident.grade) if plan else None
    known = [t.id for t in level.tasks] if level else []
    if task not in known:
        raise CommandRefused(f"{task!r} is not a task of this incident's plan level; one of {', '.join(known) or '-'}")
    grade = incident.grade.value
    if (grade, task) in tasks_done((a.kind.value, a.details) for a in store.timeline(incident.id)):
        raise CommandRefused(f"task {task} is already done at grade {grade}")
    return grade


def _plan_holder(store: Store, plans: PlanSet, incident: Incident, role: str) -> str | None:
    plan = plans.get(store.response_plan(incident.id) or "")
    level = plan.level(incident.grade) if plan else None
    target = level.command.get(role) if level else None  # type: ignore[call-overload]
    return target.key() if target else None


# `<ref> 1` acknowledges, `<ref> 2` escalates, `<ref> 3` closes; `ACK <ref>` / `确认 <ref>` acknowledge.
_REF = r"(?P<ref>INC-[0-9A-Z]{10})"
_SMS_PATTERNS = [
    (re.compile(rf"^\s*{_REF}\s+(?P<digit>[123])\s*$", re.I), None),
    (re.compile(rf"^\s*(?:ACK|确认|收到)\s*{_REF}\s*$", re.I), Command.acknowledge),
]
_DIGITS = {"1": Command.acknowledge, "2": Command.escalate, "3": Command.close}


def parse_sms_command(body: str) -> tuple[str, Command] | None:
    """(incident ref, command) when the text is a command, else None (then it is a new report)."""
    for pattern, fixed in _SMS_PATTERNS:
        found = pattern.match(body.strip())
        if found:
            return found.group("ref").upper(), fixed or _DIGITS[found.group("digit")]
    return None


# A notification that reached the phone: Twilio took it (sent) or confirmed it (delivered). Not one still waiting,
# nor one that failed: a number the incident never reached has no business commanding it.
_REACHED = (DeliveryState.sent, DeliveryState.delivered)


@dataclass(frozen=True)
class PhoneSender:
    person: str | None  # who may command the incident from this number, or None
    why_not: str = ""  # for the refusal's log entry


def phone_sender(store: Store, incident_id: str, phone: str, plans: PlanSet | None = None,
                 at: datetime | None = None) -> PhoneSender:
    """Who `phone` is for this incident: a person the incident's notifications reached at that number, or a person
    on duty now on a roster its active plan level names (directly, through a department or through a role)."""
    tried = [e for e in store.ledger_for(incident_id) if e.notification.recipient.address == phone]
    reached = next((e for e in tried if e.state in _REACHED), None)
    if reached is not None:
        return PhoneSender(reached.notification.recipient.id)
    if plans is not None and (person := _on_duty_for(store, plans, incident_id, phone, at or utcnow())):
        return PhoneSender(person)
    if tried:
        states = ", ".join(sorted({e.state.value for e in tried}))
        return PhoneSender(None, f"{phone} was not reached for {incident_id} (its notifications: {states}); only a "
                                 "number the incident reached, or on duty on one of its rosters, may command it")
    return PhoneSender(None, f"{phone} is not in the chain of {incident_id}")


def _on_duty_for(store: Store, plans: PlanSet, incident_id: str, phone: str, at: datetime) -> str | None:
    incident = store.get_incident(incident_id)
    plan = plans.get(store.response_plan(incident_id) or "")
    if incident is None or plan is None:
        return None
    level = plan.level(Grade(ResponseStore(store).response_grade(incident_id) or incident.grade.value))
    if level is None:
        return None
    directory = plans.directory
    rosters: set[str] = set()
    targets = [t for step in level.notify for t in step.targets] + list(level.command.values())
    seen: set[str] = set()
    while targets:
        target = targets.pop()
        if target.key() in seen:
            continue
        seen.add(target.key())
        department = directory.departments.get(target.department or "")
        if target.roster:
            rosters.add(target.roster)
        elif department is not None and department.duty_roster:
            rosters.add(department.duty_roster)
        elif target.role is not None and target.role in level.command:
            targets.append(level.command[target.role])
    for roster_id in rosters:
        roster = directory.rosters.get(roster_id)
        person = directory.people.get(on_duty(roster, at)) if roster else None
        if person is not None and phone in (person.contacts.sms, person.contacts.voice):
            return person.id
    return None


def chain_member(store: Store, incident_id: str, phone: str, plans: PlanSet | None = None) -> str | None:
    """The person id behind `phone` if the incident reached them there (or they are on duty on its rosters)."""
    return phone_sender(store, incident_id, phone, plans).person


def refuse(store: Store, incident_id: str | None, actor: str, why: str, key: str | None = None) -> None:
    """A refused command is logged too: the attempt is part of the record. `key` (the message's) logs it once."""
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    with write_tx(store.engine) as conn:
        append_actions(conn, [ActionDraft(incident_id=incident_id or "-", at=utcnow(), actor=actor,
                                          kind=ActionKind.refused, details={"reason": why},
                                          idempotency_key=f"refused:{key}" if key else None)])


class ApprovalRefused(Exception):
    """The plan cannot be approved (the set does not load, no such plan, or four eyes say no); the message says why."""


def approve_plan(open_store: Callable[[], Store], plans_dir: Path, plan_id: str, by: str) -> Plan:
    """Approve `plan_id` in its file (status approved, `by` added to approved_by) and log `plan_approved` with the
    approved content's hash; returns the plan as it was. Four eyes always: `by` must hold the directory's
    plan_approver role and must not be the plan's last editor (handlers/plans/approval.py). The store is opened
    only once the file is approved, so a refusal touches no database."""
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    try:
        plans = load_plans(plans_dir)
    except PlanLoadError as exc:
        raise ApprovalRefused(f"the plan set does not load; fix it first:\n{exc}") from None
    plan = plans.get(plan_id)
    if plan is None:
        raise ApprovalRefused(f"no plan {plan_id!r} in {plans_dir}")
    refusal = approval_refusal(plan, by, plans.directory.people)
    if refusal:
        raise ApprovalRefused(refusal)
    path = Path(plans.sources[plan.id])
    path.write_text(approved_yaml(path.read_text(encoding="utf-8"), by), encoding="utf-8")
    approved = load_plans(plans_dir).get(plan_id)
    assert approved is not None
    with write_tx(open_store().engine) as conn:
        append_actions(conn, [ActionDraft(
            incident_id=f"plan:{plan.id}", at=utcnow(), actor=by, kind=ActionKind.plan_approved,
            plan_id=plan.id, plan_version=plan.version,
            details={"file": str(path), "plan_hash": approved.content_hash(), "last_editor": plan.last_editor,
                     "approved_by": approved.approved_by},
        )])
    return plan


def add_note(store: Store, incident_id: str, actor: str, text: str) -> CommandResult:
    """A person's note on an incident, in its log (the console's "add a note")."""
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    incident = _incident(store, incident_id)
    text = text.strip()
    if not text:
        raise CommandRefused("a note needs some text")
    with write_tx(store.engine) as conn:
        logged = append_actions(conn, [ActionDraft(incident_id=incident.id, at=utcnow(), actor=actor,
                                                   kind=ActionKind.note, details={"text": text[:2000]})])
    return CommandResult(incident, logged)


def regrade_incident(store: Store, incident_id: str, grade: str, actor: str, reason: str, raw_topic: str
                     ) -> CommandResult:
    """A person changes the grade. It goes through intake as an update of the incident (the path a CAP Update takes),
    so triage records the change and the response re-plans the new level, exactly as for any other grade change;
    the `regraded` entry says who ordered it and why. The update is accepted first, under a key made from the
    incident and the grade, so a retry after a crash changes the grade once."""
    from pingan.schemas.incident import IncidentReport
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    incident = _incident(store, incident_id)
    if not reason.strip():
        raise CommandRefused("a regrade needs a reason")
    if incident.state.value == "closed":
        raise CommandRefused(f"incident {incident.id} is closed")
    if incident.grade.value == grade:
        raise CommandRefused(f"incident {incident.id} is already grade {grade}")
    fields = incident.model_dump(include=set(IncidentReport.model_fields) - {"attachments", "reporter"})
    report = IncidentReport.model_validate({**fields, "grade": grade, "dedup_key": incident.dedup_key})
    count = sum(1 for a in store.timeline(incident.id) if a.kind is ActionKind.regraded)
    store.accept(IntakeItem(kind=RawKind.update, report=report, source_key=f"regrade:{incident.id}:{count}:{grade}"),
                 raw_topic)
    with write_tx(store.engine) as conn:
        logged = append_actions(conn, [ActionDraft(
            incident_id=incident.id, at=utcnow(), actor=actor, kind=ActionKind.regraded,
            details={"from": incident.grade.value, "to": grade, "reason": reason.strip()[:2000]},
            idempotency_key=f"regraded:{incident.id}:{count}:{grade}")])
    return CommandResult(incident, logged)


def hand_over_shift(store: Store, outgoing: str, incoming: str, note: str, open_incidents: list[str],
                    shift: str) -> list[Action]:
    """交接班: the outgoing duty officer hands the shift to the incoming one, with a note and the open incidents,
    logged under incident id "shift:<shift>" (the local date of the handover)."""
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    if not incoming or incoming == outgoing:
        raise CommandRefused("hand the shift to another person")
    with write_tx(store.engine) as conn:
        return append_actions(conn, [ActionDraft(
            incident_id=f"shift:{shift}", at=utcnow(), actor=outgoing, kind=ActionKind.shift_handover,
            details={"to": incoming, "note": note.strip()[:4000], "open_incidents": open_incidents})])

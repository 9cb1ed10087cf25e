"""What the console pages show, gathered from the store and the plan set: plain data for the templates."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pingan.handlers.access.permissions import Permission, sees_incident
from pingan.handlers.incidents.escalation import due_at
from pingan.handlers.incidents.tasks import tasks_done
from pingan.handlers.plans.directory import resolve
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.action import Action, ActionKind
from pingan.schemas.incident import Incident
from pingan.schemas.plan import Level, Plan
from pingan.store.console import BoardRow, board
from pingan.store.merges import reports_of
from pingan.store.repository import Store
from pingan.store.response import ResponseStore
from pingan.web.auth import Principal


def involved(plans: PlanSet, plan_id: str | None, grade: str | None) -> list[str]:
    """The departments the incident's active plan level activates."""
    plan = plans.get(plan_id) if plan_id else None
    level = plan.level(grade) if plan and grade else None  # type: ignore[arg-type]
    return list(level.departments) if level else []


def sees(person: Principal, departments: list[str]) -> bool:
    return sees_incident(person.roles, person.departments, departments)


def board_rows(store: Store, plans: PlanSet, person: Principal) -> list[BoardRow]:
    """The open incidents this person may see (a department liaison: only their departments')."""
    rows = board(store.engine)
    cache: dict[tuple[str | None, str | None], list[str]] = {}
    out = []
    for row in rows:
        key = (row.plan_id, row.plan_grade or row.grade)
        if key not in cache:
            cache[key] = involved(plans, *key)
        if sees(person, cache[key]):
            out.append(row)
    return out


def mask_phone(value: str | None, person: Principal) -> str:
    """Reporters' and responders' numbers, masked except for roles that need them."""
    if not value or person.can(Permission.phones_read) or not value.startswith("+"):
        return value or ""
    return value[:4] + "*" * max(len(value) - 6, 0) + value[-2:]


@dataclass
class IncidentView:
    incident: Incident
    plan: Plan | None
    level: Level | None
    timeline: list[Action]
    chain: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    roll_calls: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    next_due: datetime | None = None
    people: dict[str, str] = field(default_factory=dict)  # person id -> name, for actors


def _activated_at(timeline: list[Action], grade: str) -> datetime | None:
    """When the level in force was activated: its latest plan_activated entry (a regrade activates again)."""
    at = None
    for action in timeline:
        if action.kind is ActionKind.plan_activated and action.details.get("level", grade) == grade:
            at = action.at
    if at is None:
        at = next((a.at for a in timeline if a.kind is ActionKind.plan_activated), None)
    return at


def incident_view(store: Store, plans: PlanSet, incident: Incident, person: Principal, lang: str,
                  time_scale: float) -> IncidentView:
    plan_id = store.response_plan(incident.id)
    responses = ResponseStore(store)
    grade = responses.response_grade(incident.id) or incident.grade.value
    plan = plans.get(plan_id) if plan_id else None
    level = plan.level(grade) if plan else None  # type: ignore[arg-type]
    timeline = store.timeline(incident.id)
    directory = plans.directory
    view = IncidentView(incident, plan, level, timeline, people={p: v.name for p, v in directory.people.items()})
    now = datetime.now(UTC)
    if level is not None:
        holders = responses.role_holders(incident.id)
        for role, target in level.command.items():
            held = holders.get(role.value)
            names = [view.people.get(held, held)] if held else [p.name for p in resolve(target, level, directory, now)]
            view.chain.append({"role": role.value, "people": names, "handed_over": bool(held),
                               "target": target.key()})
    ledger = store.ledger_for(incident.id)
    for entry in ledger:
        n = entry.notification
        view.notifications.append({"recipient": n.recipient.name, "recipient_id": n.recipient.id,
                                   "address": mask_phone(n.recipient.address, person), "channel": n.channel.value,
                                   "state": entry.state.value, "attempts": entry.attempts, "step": n.step,
                                   "attempt": n.attempt, "detail": entry.detail, "at": entry.updated_at})
    if level is not None:
        for step in (s for s in level.notify if s.roll_call):
            called = sorted({e.notification.recipient.id for e in ledger if e.notification.step == step.id})
            confirmed = responses.confirmed(incident.id, step.id)
            view.roll_calls.append({"step": step.id, "confirmed": [view.people.get(p, p) for p in called
                                                                   if p in confirmed],
                                    "missing": [view.people.get(p, p) for p in called if p not in confirmed]})
        activated = _activated_at(timeline, grade)
        # This level's reports only: a task done at another grade is due again at this one.
        indexed = tasks_done((a.kind.value, a.details) for a in timeline)
        done = {task: timeline[i] for (at, task), i in indexed.items() if at == level.grade.value}
        for task in level.tasks:
            deadline = due_at(activated, task.deadline_min, time_scale) if activated else None
            finished = done.get(task.id)
            view.tasks.append({"id": task.id, "title": task.title.pick(lang), "deadline": deadline,
                               "deadline_min": task.deadline_min, "done": finished,
                               "overdue": deadline is not None and (finished.at if finished else now) > deadline,
                               "owner": task.owner.key()})
    for report in reports_of(store, incident):
        r = report.event.report
        view.reports.append({"at": report.at, "outcome": report.outcome, "source": r.source.value,
                             "title": r.title, "grade": r.grade.value, "event_id": report.event_id,
                             "reporter": (r.reporter.name or "") if r.reporter else "",
                             "phone": mask_phone(r.reporter.phone if r.reporter else None, person)})
    pending = responses.pending(incident.id)
    view.next_due = pending[0].due_at if pending else None
    return view


def describe(action: Action) -> str:
    """The details of a log entry worth a glance, in one line."""
    d = action.details
    keys = ("reason", "text", "level", "recipient", "channel", "to", "role", "task", "from", "note", "step", "grade",
            "category", "missing", "rule")
    parts = [f"{k}={d[k]}" for k in keys if d.get(k) not in (None, "", [])]
    if action.plan_id:
        parts.insert(0, f"plan={action.plan_id}@v{action.plan_version}")
    return " ".join(parts)[:300]

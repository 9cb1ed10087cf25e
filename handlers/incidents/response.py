"""Response: which plan an incident activates and whom it tells. Pure: data in, decision out."""

from dataclasses import dataclass
from datetime import datetime

from pingan.handlers.incidents.notify import build_notifications
from pingan.handlers.plans.matching import match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.incident import Incident
from pingan.schemas.notification import Notification

ACTOR = "system:response"


@dataclass(frozen=True)
class ResponseDecision:
    plan_id: str | None
    plan_version: int | None
    notifications: list[Notification]
    actions: list[ActionDraft]


def respond(incident: Incident, plans: PlanSet, now: datetime) -> ResponseDecision:
    match = match_plan(plans, incident)
    if match.plan is None:
        # Only a plan set without a catch-all gets here (a shipped set has one, so every incident is heard): no plan
        # is then itself a fact the duty room must see: it is logged, and shows up as a coverage gap.
        action = ActionDraft(
            incident_id=incident.id, at=now, actor=ACTOR, kind=ActionKind.no_plan,
            details={"reason": match.reason, "candidates": match.candidates},
            idempotency_key=f"response:{incident.id}:{incident.grade.value}",
        )
        return ResponseDecision(None, None, [], [action])
    plan = match.plan
    level = plan.level(incident.grade)
    built = build_notifications(incident, plan, now, plans.directory)
    orders = built.notifications
    action = ActionDraft(
        incident_id=incident.id,
        at=now,
        actor=ACTOR,
        kind=ActionKind.plan_activated,
        plan_id=plan.id,
        plan_version=plan.version,
        details={
            "plan_title": plan.title.zh,
            "plan_hash": plans.hashes.get(plan.id) or plan.content_hash(),
            "level": incident.grade.value,
            "response_level": level.response_level if level else None,
            "departments": level.departments if level else [],
            "tasks": [{"id": t.id, "deadline_min": t.deadline_min, "title": t.title.zh} for t in level.tasks]
            if level else [],
            "unreachable": built.unreachable,
            "reason": match.reason,
            "candidates": match.candidates,
            # Marked only on a fallback, so ordinary activations keep the shape (and the hashes) they had.
            **({"catch_all": True} if match.catch_all else {}),
            "notifications": [
                {"key": n.idempotency_key, "recipient": n.recipient.id, "channel": n.channel.value, "step": n.step}
                for n in orders
            ],
        },
        idempotency_key=f"response:{incident.id}:{incident.grade.value}",
    )
    return ResponseDecision(plan.id, plan.version, orders, [action])

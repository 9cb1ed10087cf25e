"""Which response plan an incident activates. Pure: a PlanSet and an incident in, a MatchResult out.

A plan covers an incident when its category, grade, subtype (empty = any subtype of the category)
and hazard (empty = any hazard) all fit. Among covering plans the most specific wins, ranked by
(names the hazard, names the subtype): a typhoon plan beats a general meteorological plan, which
beats a catch-all natural-disaster plan. Equally specific plans are a tie: the lowest id wins so the
outcome never depends on file order, and the tie is reported so the office can resolve it.

Cost: PlanSet.index is keyed by (category, subtype or None, grade) and then by hazard or None, so a
match is at most eight dict gets however many plans are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pingan.handlers.plan_loader import PlanSet, normalise_hazard
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.plan import Plan, PlanStatus
from pingan.schemas.taxonomy import IncidentStatus


@dataclass(frozen=True)
class MatchResult:
    """plan: the activated plan, or None.

    candidates: on a match, the ids of every plan as specific as the winner (more than one = a tie);
    with no match, the ids of plans that covered the incident but were excluded by their status.
    """

    plan: Plan | None
    candidates: list[str] = field(default_factory=list)
    reason: str = ""


def _eligible(plan: Plan, status: IncidentStatus) -> bool:
    # A draft must never drive a real response, but drilling a draft is exactly how it gets approved.
    if plan.status is PlanStatus.approved:
        return True
    return plan.status is PlanStatus.draft and status is not IncidentStatus.actual


def match_plan(plans: PlanSet, incident: Incident | IncidentReport) -> MatchResult:
    hazard = normalise_hazard(incident.hazard)
    what = _describe(incident, hazard)
    # Most specific first: (hazard named, subtype named), (hazard named, any subtype), ...
    tiers = [
        (hazard, incident.subtype, "hazard and subtype"),
        (hazard, None, "hazard"),
        (None, incident.subtype, "subtype"),
        (None, None, "category"),
    ]
    excluded: list[str] = []
    for tier_hazard, tier_subtype, label in tiers:
        if tier_hazard is None and label.startswith("hazard"):
            continue  # the incident names no hazard, so no hazard-specific plan can cover it
        by_hazard = plans.index.get((incident.category, tier_subtype, incident.grade))
        if not by_hazard:
            continue
        covering = by_hazard.get(tier_hazard, ())
        eligible = [p for p in covering if _eligible(p, incident.status)]
        excluded.extend(p.id for p in covering if not _eligible(p, incident.status))
        if not eligible:
            continue
        ids = [p.id for p in eligible]  # already sorted by id in the index
        winner = eligible[0]
        if len(eligible) > 1:
            reason = (f"tie: {len(ids)} plans equally specific (by {label}) for {what}: {', '.join(ids)}; "
                      f"chose {winner.id!r}, the lowest id")
        else:
            reason = f"plan {winner.id!r} v{winner.version} matches {what} by {label}"
        return MatchResult(winner, ids, reason)

    excluded = list(dict.fromkeys(excluded))
    if excluded:
        statuses = ", ".join(f"{pid} ({_status_of(plans, pid)})" for pid in excluded)
        rule = ("actual incidents need an approved plan" if incident.status is IncidentStatus.actual
                else "exercises and tests accept approved or draft plans")
        reason = f"no plan for {what}: covering plans excluded by status: {statuses} ({rule}; retired never)"
        return MatchResult(None, excluded, reason)
    return MatchResult(None, [], f"no plan covers {what}")


def _status_of(plans: PlanSet, plan_id: str) -> str:
    plan = plans.get(plan_id)
    return plan.status.value if plan else "?"


def _describe(incident: Incident | IncidentReport, hazard: str | None) -> str:
    parts = f"{incident.category.value}/{incident.subtype.value}"
    if hazard:
        parts += f"/{hazard}"
    return f"{incident.status.value} {parts} grade {incident.grade.value}"

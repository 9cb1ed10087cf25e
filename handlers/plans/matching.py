"""Which response plan an incident activates. Pure: a PlanSet and an incident in, a MatchResult out.

A plan covers an incident when its category, grade, subtype (empty = any subtype of the category)
and hazard (empty = any hazard) all fit. Among covering plans the most specific wins, ranked by
(names the hazard, names the subtype): a typhoon plan beats a general meteorological plan, which
beats a plan for the whole natural-disaster category. Equally specific plans are a tie: the lowest id
wins so the outcome never depends on file order, and the tie is reported so the office can resolve it.

Within a tier, plans that also narrow by area (longest code prefix) or by label matchers rank
above those that do not. Actual incidents only match approved plans inside their effective dates.

When no plan covers the incident (or every covering plan is excluded by its status), the set's
catch-all plan (`applies_to.catch_all`, 通用突发事件) takes it, with a reason saying why: an incident
that matches nothing must still reach the duty room. Only a set without an eligible catch-all
returns no plan.

Cost: PlanSet.index is keyed by (category, subtype or None, grade) and then by hazard or None, so a
match is at most eight dict gets however many plans are loaded, plus the few plans in that cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from pingan.handlers.plans.planset import PlanSet, normalise_hazard
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.plan import LabelMatcher, MatchOp, Plan, PlanStatus
from pingan.schemas.taxonomy import IncidentStatus


@dataclass(frozen=True)
class MatchResult:
    """plan: the activated plan, or None.

    candidates: on a match, the ids of every plan as specific as the winner (more than one = a tie);
    on the catch-all, its id; with no match, the ids of plans that covered the incident but were
    excluded by their status.
    """

    plan: Plan | None
    candidates: list[str] = field(default_factory=list)
    reason: str = ""
    catch_all: bool = False  # the plan is the set's catch-all: no specific plan took the incident


def _eligible(plan: Plan, status: IncidentStatus, today: date) -> bool:
    # A draft must never drive a real response, but drilling a draft is exactly how it gets approved.
    if status is not IncidentStatus.actual:
        return plan.status in (PlanStatus.approved, PlanStatus.draft)
    if plan.status is not PlanStatus.approved:
        return False
    if plan.effective_from and today < plan.effective_from:
        return False
    return not (plan.effective_to and today > plan.effective_to)


def _label_holds(m: LabelMatcher, labels: dict[str, str]) -> bool:
    value = labels.get(m.label, "")
    if m.op is MatchOp.eq:
        return value == m.value
    if m.op is MatchOp.ne:
        return value != m.value
    matched = re.fullmatch(m.value, value) is not None
    return matched if m.op is MatchOp.re else not matched


def _narrowing(plan: Plan, incident: Incident | IncidentReport) -> tuple[int, int] | None:
    """How much more than the cell this plan asks for, or None when its areas or matchers exclude the incident."""
    rules = plan.applies_to
    # The report's own code and every area triage placed it in (issue 18): a plan for a community covers its grids.
    placement = incident.location.placement
    codes = [incident.location.area_code or "", *(a.code for a in placement.path)] if placement else \
        [incident.location.area_code or ""]
    prefix = 0
    level = plan.level(incident.grade)
    for areas in (rules.areas, level.areas if level is not None else []):  # the plan's, then its level's
        if areas:
            fitting = [len(a) for a in areas for code in codes if code.startswith(a)]
            if not fitting:
                return None
            prefix = max(prefix, *fitting)
    if not all(_label_holds(m, incident.labels) for m in rules.matchers):
        return None
    return prefix, len(rules.matchers)


def match_plan(plans: PlanSet, incident: Incident | IncidentReport, today: date | None = None) -> MatchResult:
    hazard = normalise_hazard(incident.hazard)
    what = _describe(incident, hazard)
    day = today or date.today()
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
        covering = [p for p in by_hazard.get(tier_hazard, ()) if _narrowing(p, incident) is not None]
        eligible = [p for p in covering if _eligible(p, incident.status, day)]
        excluded.extend(p.id for p in covering if not _eligible(p, incident.status, day))
        if not eligible:
            continue
        best = max(_narrowing(p, incident) or (0, 0) for p in eligible)
        eligible = [p for p in eligible if _narrowing(p, incident) == best]
        ids = [p.id for p in eligible]  # already sorted by id in the index
        winner = eligible[0]
        if len(eligible) > 1:
            reason = (f"tie: {len(ids)} plans equally specific (by {label}) for {what}: {', '.join(ids)}; "
                      f"chose {winner.id!r}, the lowest id")
        else:
            reason = f"plan {winner.id!r} v{winner.version} matches {what} by {label}"
        return MatchResult(winner, ids, reason)

    excluded = list(dict.fromkeys(excluded))
    rule = ("actual incidents need an approved plan in its effective dates"
            if incident.status is IncidentStatus.actual else "exercises and tests accept approved or draft plans")
    if excluded:
        statuses = ", ".join(f"{pid} ({_status_of(plans, pid)})" for pid in excluded)
        reason = f"no plan for {what}: covering plans excluded by status: {statuses} ({rule}; retired never)"
    else:
        reason = f"no plan covers {what}"
    fallback = plans.catch_all
    if fallback is not None and _eligible(fallback, incident.status, day):
        # The words the duty room reads first, then the detail: which cell, and any plan its status kept out.
        why = f"no plan for this category and grade: {reason}; the catch-all plan {fallback.id!r} " \
              f"v{fallback.version} takes it"
        return MatchResult(fallback, [fallback.id], why, catch_all=True)
    if fallback is not None:
        reason += f"; the catch-all plan {fallback.id!r} is excluded too ({fallback.status.value}; {rule})"
    return MatchResult(None, excluded, reason)


def _status_of(plans: PlanSet, plan_id: str) -> str:
    plan = plans.get(plan_id)
    return plan.status.value if plan else "?"


def _describe(incident: Incident | IncidentReport, hazard: str | None) -> str:
    parts = f"{incident.category.value}/{incident.subtype.value}"
    if hazard:
        parts += f"/{hazard}"
    return f"{incident.status.value} {parts} grade {incident.grade.value}"

"""Cells of the taxonomy and the plans filed under them, and whether two plans can tie in matching.

A cell is (category, subtype, hazard or None, grade). The plans that handle a cell are those in the most
specific index tier that has any non-retired plan, in matching's order: (hazard, subtype), (hazard, any
subtype), (subtype), (category). More than one plan there means area or matcher variants, or a tie.
`equal_specificity` decides, for lint, whether two plans sharing a cell can still be ranked equal by matching
once areas and matchers are taken into account. Used by lint, diff and coverage alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import NamedTuple

from pingan.handlers.plans.planset import PlanSet, plan_cells
from pingan.schemas.plan import LabelMatcher, MatchOp, Plan, PlanStatus
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, Subtype


class Cell(NamedTuple):
    category: Category
    subtype: Subtype
    hazard: str | None
    grade: Grade

    def label(self) -> str:
        return f"{self.category.value}/{self.subtype.value}/{self.hazard or '*'} {self.grade.value}"



def compact(cell_list: Iterable[Cell]) -> str:
    """Cells that differ only by grade on one line: `natural_disaster/meteorological/typhoon II, III`."""
    grades: dict[str, list[str]] = {}
    for cell in cell_list:
        grades.setdefault(cell.label().rsplit(" ", 1)[0], []).append(cell.grade.value)
    return "; ".join(f"{where} {', '.join(gs)}" for where, gs in grades.items())



def tiers(planset: PlanSet, cell: Cell) -> Iterator[tuple[Plan, ...]]:
    """The non-retired plans filed under the cell, one tuple per tier, most specific first."""
    keys: list[tuple[str | None, Subtype | None]] = []
    if cell.hazard is not None:
        keys += [(cell.hazard, cell.subtype), (cell.hazard, None)]
    keys += [(None, cell.subtype), (None, None)]
    for hazard, subtype in keys:
        by_hazard = planset.index.get((cell.category, subtype, cell.grade), {})
        plans = tuple(p for p in by_hazard.get(hazard, ()) if p.status is not PlanStatus.retired)
        if plans:
            yield plans



def cell_plans(planset: PlanSet, cell: Cell) -> tuple[Plan, ...]:
    return next(tiers(planset, cell), ())



def cells(*plansets: PlanSet) -> list[Cell]:
    """Every category x subtype x grade with no hazard, plus each hazard any plan names for it."""
    named: dict[tuple[Category, Subtype | None, Grade], set[str]] = {}
    for planset in plansets:
        for plan in planset:
            for key, hazard in plan_cells(plan):
                if hazard is not None:
                    named.setdefault(key, set()).add(hazard)
    out: list[Cell] = []
    for category in Category:
        for subtype in (s for s in Subtype if s in SUBTYPES_BY_CATEGORY[category]):
            for grade in Grade:
                hazards = named.get((category, subtype, grade), set()) | named.get((category, None, grade), set())
                out.extend(Cell(category, subtype, h, grade) for h in [None, *sorted(hazards)])
    return out



def plan_label(plan: Plan) -> str:
    """e.g. `typhoon v2`, `typhoon v2 (draft) [areas 4403]`."""
    label = f"{plan.id} v{plan.version}"
    if plan.status is not PlanStatus.approved:
        label += f" ({plan.status.value})"
    scope = plan.applies_to
    if scope.areas:
        label += f" [areas {','.join(scope.areas)}]"
    if scope.matchers:
        label += " [" + ", ".join(f"{m.label}{m.op.value}{m.value!r}" for m in scope.matchers) + "]"
    return label



def dates_overlap(a: Plan, b: Plan) -> bool:
    lo = max(d for d in (a.effective_from, b.effective_from, date.min) if d is not None)
    hi = min(d for d in (a.effective_to, b.effective_to, date.max) if d is not None)
    return lo <= hi



def equal_specificity(a: Plan, b: Plan, grades: Iterable[Grade] | None = None) -> bool | None:
    """Can matching rank the two plans equal for one incident of a cell they share (at one of `grades`, which
    brings in their levels' areas)? None: regexes undecided."""
    tie = any(_areas_tie(a, b, g) for g in grades) if grades is not None else _areas_tie(a, b, None)
    return _matchers_tie(a.applies_to.matchers, b.applies_to.matchers) if tie else False



def _areas_tie(a: Plan, b: Plan, grade: Grade | None) -> bool:
    """Can the longest fitting area prefix be equal for one incident? Both empty, or a code in both (a plan's areas
    and, at `grade`, its level's: matching takes the longer prefix of the two)."""
    first, second = _areas_at(a, grade), _areas_at(b, grade)
    if not first or not second:
        return not (first or second) or "" in (first | second)
    return bool(first & second)



def _areas_at(plan: Plan, grade: Grade | None) -> set[str]:
    level = plan.level(grade) if grade is not None else None
    return set(plan.applies_to.areas) | set(level.areas if level is not None else [])



def _holds(matcher: LabelMatcher, value: str) -> bool:
    if matcher.op is MatchOp.eq:
        return value == matcher.value
    if matcher.op is MatchOp.ne:
        return value != matcher.value
    try:
        found = re.fullmatch(matcher.value, value) is not None
    except re.error:
        return False
    return found if matcher.op is MatchOp.re else not found



def _matchers_tie(a: list[LabelMatcher], b: list[LabelMatcher]) -> bool | None:
    """Equal counts and jointly satisfiable: True, False, or None when regexes make it undecidable here.

    A label's candidate values are its `=` value if any, else "", the literal alternatives of its `=~`
    patterns and one unlikely string; a candidate that satisfies every matcher proves the overlap.
    """
    if len(a) != len(b):
        return False
    by_label: dict[str, list[LabelMatcher]] = {}
    for matcher in [*a, *b]:
        by_label.setdefault(matcher.label, []).append(matcher)
    verdict: bool | None = True
    for matchers in by_label.values():
        equals = {m.value for m in matchers if m.op is MatchOp.eq}
        if equals:
            candidates = list(equals)
        else:
            candidates = ["", "\x00pingan-lint\x00"]
            for m in matchers:
                if m.op is MatchOp.re:
                    candidates += [alt for alt in m.value.split("|") if alt and re.escape(alt) == alt]
        if any(all(_holds(m, v) for m in matchers) for v in candidates):
            continue
        if equals or all(m.op in (MatchOp.eq, MatchOp.ne) for m in matchers):
            return False
        verdict = None
    return verdict

"""The set-level coverage rules of `pingan plans lint`: the catch-all plan and the cells nobody else covers.

ERRORS: more than one non-retired catch-all plan (`applies_to.catch_all: true`): matching could fall back to
either, so the set must say which.
WARNINGS: no catch-all (an incident no plan covers notifies nobody: `no_plan`); a catch-all that is not approved
(actual incidents cannot fall to it); an `uncovered` entry naming a cell a specific plan now covers (stale); and,
one warning per category, the cells only the catch-all covers, each marked deliberate (listed in the catch-all's
`applies_to.uncovered`) or not. Without an approved catch-all, the old rule instead: a category and grade with
no plan at all is a coverage gap.
"""

from __future__ import annotations

from collections.abc import Iterable

from pingan.handlers.plans.coverage import CoverageRow, coverage
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanProblem, Severity
from pingan.handlers.plans.reader import PlansRead
from pingan.handlers.plans.yaml_source import Loc, SourceDoc, format_loc
from pingan.schemas.plan import Plan, PlanStatus
from pingan.schemas.taxonomy import Category, Grade

CATCH_ALL_LOC: Loc = ("applies_to", "catch_all")


def coverage_problems(read: PlansRead) -> tuple[list[PlanProblem], list[PlanProblem]]:
    """(errors, warnings) of the coverage rules over what read_plans loaded."""
    errors: list[PlanProblem] = []
    warnings: list[PlanProblem] = []
    live = [(plan, doc) for plan, doc in read.plans if plan.status is not PlanStatus.retired]
    catch_alls = sorted(((p, d) for p, d in live if p.catch_all), key=lambda pd: pd[0].id)
    where = str(read.directory_path)
    if len(catch_alls) > 1:
        first, first_doc = catch_alls[0]
        for _plan, doc in catch_alls[1:]:
            errors.append(_at(doc, CATCH_ALL_LOC, f"a second catch-all plan: {first.id!r} "
                              f"({first_doc.where(CATCH_ALL_LOC)}) already takes the incidents no plan covers; "
                              "keep one (or retire the other)"))
    if not catch_alls:
        warnings.append(PlanProblem(where, 0, 0, "no catch-all plan (applies_to.catch_all: true): an incident no "
                                    "plan covers notifies nobody", Severity.warning))
    elif catch_alls[0][0].status is not PlanStatus.approved:
        plan, doc = catch_alls[0]
        warnings.append(_at(doc, ("status",), f"the catch-all plan is {plan.status.value}: actual incidents no "
                            "approved plan covers notify nobody", Severity.warning))

    planset = PlanSet.of((p for p, _ in read.plans), None)
    rows = coverage(planset)
    fallback = planset.catch_all
    if fallback is None or fallback.status is not PlanStatus.approved:
        warnings += _category_gaps(read, where)
        return errors, warnings
    doc = next(d for p, d in read.plans if p.id == fallback.id)
    warnings += _stale_uncovered(fallback, doc, rows)
    by_category: dict[Category, list[CoverageRow]] = {}
    for row in rows:
        if row.catch_all_only:
            by_category.setdefault(row.category, []).append(row)
    for category, only in by_category.items():
        warnings.append(_at(doc, CATCH_ALL_LOC, f"{category.value}: cells only the catch-all {fallback.id!r} "
                            f"covers: {_describe(only)}", Severity.warning))
    return errors, warnings


def _at(doc: SourceDoc, loc: Loc, message: str, severity: Severity = Severity.error) -> PlanProblem:
    return doc.problem(loc, f"{format_loc(loc)}: {message}", severity)


def _describe(rows: Iterable[CoverageRow]) -> str:
    """`earthquake I, II, III, IV (no plan of its own: write one, or list it in applies_to.uncovered with a
    reason); cyber I, II, III, IV (deliberate)`: one clause per subtype and kind."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.deliberate:
            why = "deliberate"
        elif row.hazards:
            why = f"only hazards {', '.join(row.hazards)} have a plan; undocumented"
        else:
            why = "undocumented: write a plan, or list it in applies_to.uncovered with a reason"
        groups.setdefault((row.subtype.value, why), []).append(row.grade.value)
    return "; ".join(f"{subtype} {', '.join(grades)} ({why})" for (subtype, why), grades in groups.items())


def _stale_uncovered(catch_all: Plan, doc: SourceDoc, rows: list[CoverageRow]) -> list[PlanProblem]:
    """An `uncovered` entry is documentation; once a plan covers its cells it misleads whoever reads it."""
    out: list[PlanProblem] = []
    for i, entry in enumerate(catch_all.applies_to.uncovered):
        covered = [r for r in rows if entry.covers(r.category, r.subtype, r.grade) and not r.catch_all_only]
        if covered:
            cells = "; ".join(f"{r.subtype.value} {r.grade.value} ({', '.join(r.general) or 'hazards'})"
                              for r in covered)
            out.append(_at(doc, ("applies_to", "uncovered", i), f"listed as left to the catch-all, but covered by "
                           f"a specific plan: {entry.category.value} {cells}", Severity.warning))
    return out


def _category_gaps(read: PlansRead, where: str) -> list[PlanProblem]:
    covered = {(plan.applies_to.category, g) for plan, _ in read.plans
               if plan.status is not PlanStatus.retired and not plan.catch_all for g in plan.grades}
    return [PlanProblem(where, 0, 0, f"coverage gap: no plan covers {category.value} grade {grade.value}",
                        Severity.warning)
            for category in Category for grade in Grade if (category, grade) not in covered]

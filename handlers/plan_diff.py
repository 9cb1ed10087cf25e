"""Cells of the taxonomy and what handles them: the pure logic behind `pingan plans diff` and `coverage`.

A cell is (category, subtype, hazard or None, grade). The plans that handle a cell are those in the most
specific index tier that has any non-retired plan, in matching's order: (hazard, subtype), (hazard, any
subtype), (subtype), (category). More than one plan there means area or matcher variants, or a tie.
Incident-specific narrowing (areas, label matchers, effective dates) is shown, not evaluated: a diff
compares what the plan files say. `equal_specificity` decides, for lint, whether two plans sharing a cell
can still be ranked equal by matching once areas and matchers are taken into account.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from pingan.handlers.plan_loader import PlanSet, plan_cells
from pingan.schemas.plan import LabelMatcher, Level, MatchOp, Plan, PlanStatus, Target
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


# ── scope overlap: can two plans tie in matching? (lint's ambiguity rule) ──────
def dates_overlap(a: Plan, b: Plan) -> bool:
    lo = max(d for d in (a.effective_from, b.effective_from, date.min) if d is not None)
    hi = min(d for d in (a.effective_to, b.effective_to, date.max) if d is not None)
    return lo <= hi


def equal_specificity(a: Plan, b: Plan) -> bool | None:
    """Can matching rank the two plans equal for one incident of a cell they share? None: regexes undecided."""
    return _matchers_tie(a.applies_to.matchers, b.applies_to.matchers) if _areas_tie(a, b) else False


def _areas_tie(a: Plan, b: Plan) -> bool:
    """Can the longest fitting area prefix be equal for one incident? Both empty, or a code in both."""
    first, second = set(a.applies_to.areas), set(b.applies_to.areas)
    if not first or not second:
        return not (first or second) or "" in (first | second)
    return bool(first & second)


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


# ── diff ─────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class CellDiff:
    cell: Cell
    before: tuple[str, ...]  # plan labels
    after: tuple[str, ...]
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def diff_plansets(old: PlanSet, new: PlanSet) -> list[CellDiff]:
    """One CellDiff per cell of either set, in taxonomy order; `changes` is empty where nothing changed."""
    out: list[CellDiff] = []
    for cell in cells(old, new):
        before, after = cell_plans(old, cell), cell_plans(new, cell)
        out.append(CellDiff(cell, tuple(plan_label(p) for p in before), tuple(plan_label(p) for p in after),
                            _cell_changes(cell.grade, before, after, old, new)))
    return out


def _cell_changes(grade: Grade, before: tuple[Plan, ...], after: tuple[Plan, ...], old: PlanSet,
                  new: PlanSet) -> list[str]:
    if len(before) == 1 and len(after) == 1:
        return plan_changes(before[0], after[0], grade, old.hashes.get(before[0].id), new.hashes.get(after[0].id))
    changes: list[str] = []
    old_ids, new_ids = {p.id: p for p in before}, {p.id: p for p in after}
    if not before and not after:
        return []
    if not before:
        return [f"now handled by {', '.join(plan_label(p) for p in after)} (no plan before)"]
    if not after:
        return [f"no plan any more (was {', '.join(plan_label(p) for p in before)})"]
    changes += [f"no longer handled by {plan_label(old_ids[i])}" for i in old_ids if i not in new_ids]
    changes += [f"also handled by {plan_label(new_ids[i])}" for i in new_ids if i not in old_ids]
    for pid in old_ids.keys() & new_ids.keys():
        changes += [f"{pid}: {c}" for c in plan_changes(old_ids[pid], new_ids[pid], grade, old.hashes.get(pid),
                                                        new.hashes.get(pid))]
    return changes


def plan_changes(a: Plan, b: Plan, grade: Grade, hash_a: str | None = None, hash_b: str | None = None) -> list[str]:
    """What differs for one grade between two plans (or two versions of one)."""
    changes: list[str] = []
    if a.id != b.id:
        changes.append(f"plan {plan_label(a)} → {plan_label(b)}")
    elif a.version != b.version:
        changes.append(f"version {a.version} → {b.version}")
    for name in ("status", "applies_to"):
        if a.id == b.id and getattr(a, name) != getattr(b, name):
            changes.append(f"{name} changed")
    level_a, level_b = a.level(grade), b.level(grade)
    if level_a is None or level_b is None:  # cannot happen for plans filed under this grade
        return changes
    level_changes = _level_changes(level_a, level_b)
    changes += level_changes
    if not changes and (hash_a or a.content_hash()) != (hash_b or b.content_hash()):
        changes.append("text changed outside this level (content hash differs)")
    return changes


def _level_changes(a: Level, b: Level) -> list[str]:
    changes: list[str] = []
    if a.response_level != b.response_level:
        changes.append(f"response_level {a.response_level} → {b.response_level}")
    for role in dict.fromkeys([*a.command, *b.command]):
        was, now = a.command.get(role), b.command.get(role)
        if was != now:
            changes.append(f"command.{role.value}: {was.key() if was else '-'} → {now.key() if now else '-'}")
    if a.departments != b.departments:
        gone, came = sorted(set(a.departments) - set(b.departments)), sorted(set(b.departments) - set(a.departments))
        changes.append(f"departments: -{gone} +{came}" if gone or came else "departments reordered")
    steps_a, steps_b = {s.id: s for s in a.notify}, {s.id: s for s in b.notify}
    changes += [f"notify {sid!r} removed" for sid in steps_a if sid not in steps_b]
    for sid, step in steps_b.items():
        if sid not in steps_a:
            changes.append(f"notify {sid!r} added (t+{step.delay_min:g}, {_keys(step.targets)} via "
                           f"{'/'.join(c.value for c in step.channels)})")
            continue
        old = steps_a[sid]
        for name in ("targets", "channels", "delay_min", "ack_timeout_min", "repeat", "roll_call", "template"):
            was, now = getattr(old, name), getattr(step, name)
            if was != now and name == "template":
                changes.append(f"notify {sid!r} template text changed")
            elif was != now:
                changes.append(f"notify {sid!r} {name}: {_show(was)} → {_show(now)}")
    tasks_a, tasks_b = {t.id: t for t in a.tasks}, {t.id: t for t in b.tasks}
    changes += [f"task {tid!r} removed" for tid in tasks_a if tid not in tasks_b]
    for tid, task in tasks_b.items():
        if tid not in tasks_a:
            changes.append(f"task {tid!r} added (deadline t+{task.deadline_min:g}, owner {task.owner.key()})")
            continue
        old_task = tasks_a[tid]
        if old_task.deadline_min != task.deadline_min:
            changes.append(f"task {tid!r} deadline t+{old_task.deadline_min:g} → t+{task.deadline_min:g}")
        if old_task.owner != task.owner:
            changes.append(f"task {tid!r} owner {old_task.owner.key()} → {task.owner.key()}")
    return changes


def _keys(targets: Iterable[Target]) -> str:
    return ", ".join(t.key() for t in targets)


def _show(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(v.key() if isinstance(v, Target) else str(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


# ── coverage ─────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class CoverageRow:
    """One category x subtype x grade: who handles incidents with no (or another) hazard, and per hazard."""

    category: Category
    subtype: Subtype
    grade: Grade
    general: tuple[str, ...]  # labels of the plans handling the cell without a hazard
    hazards: dict[str, tuple[str, ...]]  # hazard -> labels of the plans handling it
    gap: str | None  # why this cell is not fully covered, or None

    def as_json(self) -> dict[str, object]:
        return {"category": self.category.value, "subtype": self.subtype.value, "grade": self.grade.value,
                "plans": list(self.general), "hazards": {h: list(p) for h, p in self.hazards.items()},
                "gap": self.gap}


def _unrestricted(plan: Plan) -> bool:
    return plan.status is PlanStatus.approved and not plan.applies_to.areas and not plan.applies_to.matchers


def coverage(planset: PlanSet) -> list[CoverageRow]:
    rows: list[CoverageRow] = []
    grouped: dict[tuple[Category, Subtype, Grade], list[Cell]] = {}
    for cell in cells(planset):
        grouped.setdefault((cell.category, cell.subtype, cell.grade), []).append(cell)
    for (category, subtype, grade), group in grouped.items():
        general_cell, hazard_cells = group[0], group[1:]
        general = cell_plans(planset, general_cell)
        hazards = {c.hazard: tuple(plan_label(p) for p in cell_plans(planset, c)) for c in hazard_cells if c.hazard}
        gap: str | None = None
        if not any(_unrestricted(p) for tier in tiers(planset, general_cell) for p in tier):
            if general:
                gap = "only " + ", ".join(plan_label(p) for p in general)
            elif hazards:
                gap = "only hazards " + ", ".join(hazards)
            else:
                gap = "no plan"
        rows.append(CoverageRow(category, subtype, grade, tuple(plan_label(p) for p in general), hazards, gap))
    return rows

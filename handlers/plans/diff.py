"""`pingan plans diff`: what changes, cell by cell, between two built plan sets.

Incident-specific narrowing (areas, label matchers, effective dates) is shown, not evaluated: a diff compares
what the plan files say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pingan.handlers.plans.cells import Cell, cell_plans, cells, compact, plan_label
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.plan import Level, Plan, Target
from pingan.schemas.taxonomy import Grade


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


@dataclass(frozen=True)
class ChangeGroup:
    """Cells with the same plans before and after and the same changes: a version bump touches many cells alike."""

    cells: list[Cell]
    before: tuple[str, ...]
    after: tuple[str, ...]
    changes: tuple[str, ...]

    @property
    def where(self) -> str:
        return compact(self.cells)


@dataclass(frozen=True)
class PlansetDiff:
    groups: list[ChangeGroup]
    changed: int  # cells
    total: int


def summarise_diff(old: PlanSet, new: PlanSet, show_all: bool = False) -> PlansetDiff:
    """The changed cells of `diff_plansets`, grouped so that alike cells show once (with `show_all`, unchanged
    cells too)."""
    diffs = diff_plansets(old, new)
    groups: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], list[Cell]] = {}
    for d in diffs:
        if d.changed or show_all:
            groups.setdefault((d.before, d.after, tuple(d.changes)), []).append(d.cell)
    return PlansetDiff([ChangeGroup(group, *key) for key, group in groups.items()],
                       sum(d.changed for d in diffs), len(diffs))


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

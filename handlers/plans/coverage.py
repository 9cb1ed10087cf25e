"""`pingan plans coverage`: which plans handle each cell of the taxonomy, and which cells nobody handles.

A cell that no specific plan handles (fully: approved, everywhere, for every label) is a gap. In a set with an
approved catch-all plan the gap is not silence, since the catch-all takes what the specific plans leave, so the row
names the catch-all too, and the reason when the catch-all lists the cell as deliberately left to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pingan.handlers.plans.cells import Cell, cell_plans, cells, plan_label, tiers
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.plan import Plan, PlanStatus
from pingan.schemas.taxonomy import Category, Grade, Subtype


@dataclass(frozen=True)
class CoverageRow:
    """One category x subtype x grade: who handles incidents with no (or another) hazard, and per hazard."""

    category: Category
    subtype: Subtype
    grade: Grade
    general: tuple[str, ...]  # labels of the specific plans handling the cell without a hazard
    hazards: dict[str, tuple[str, ...]]  # hazard -> labels of the plans handling it
    gap: str | None  # why no specific plan fully covers this cell, or None
    catch_all: str | None = None  # label of the catch-all taking what the specific plans leave here, if any
    deliberate: str | None = None  # why the catch-all lists this cell as deliberately left to it, if it does

    @property
    def catch_all_only(self) -> bool:
        """No specific plan at all for the cell's incidents without a named hazard: only the catch-all."""
        return self.catch_all is not None and not self.general

    @property
    def cell(self) -> Cell:
        return Cell(self.category, self.subtype, None, self.grade)

    def as_json(self) -> dict[str, object]:
        return {"category": self.category.value, "subtype": self.subtype.value, "grade": self.grade.value,
                "plans": list(self.general), "hazards": {h: list(p) for h, p in self.hazards.items()},
                "gap": self.gap, "catch_all": self.catch_all, "catch_all_only": self.catch_all_only,
                "deliberate": self.deliberate}


def _unrestricted(plan: Plan) -> bool:
    return plan.status is PlanStatus.approved and not plan.applies_to.areas and not plan.applies_to.matchers


def deliberate_reason(catch_all: Plan, category: Category, subtype: Subtype, grade: Grade) -> str | None:
    """The catch-all's documented reason for leaving the cell to it (English when given), or None."""
    entry = next((u for u in catch_all.applies_to.uncovered if u.covers(category, subtype, grade)), None)
    return entry.reason.pick("en") if entry else None


def coverage(planset: PlanSet) -> list[CoverageRow]:
    # Coverage is about real incidents, which only an approved catch-all takes.
    fallback = planset.catch_all if planset.catch_all and planset.catch_all.status is PlanStatus.approved else None
    rows: list[CoverageRow] = []
    grouped: dict[tuple[Category, Subtype, Grade], list[Cell]] = {}
    for cell in cells(planset):
        grouped.setdefault((cell.category, cell.subtype, cell.grade), []).append(cell)
    for (category, subtype, grade), group in grouped.items():
        general_cell, hazard_cells = group[0], group[1:]
        general = cell_plans(planset, general_cell)
        hazards = {c.hazard: tuple(plan_label(p) for p in cell_plans(planset, c)) for c in hazard_cells if c.hazard}
        gap: str | None = None
        catch_all = deliberate = None
        if not any(_unrestricted(p) for tier in tiers(planset, general_cell) for p in tier):
            if general:
                gap = "only " + ", ".join(plan_label(p) for p in general)
            elif hazards:
                gap = "only hazards " + ", ".join(hazards)
            else:
                gap = "no plan"
            if fallback is not None:
                catch_all = plan_label(fallback)
                deliberate = deliberate_reason(fallback, category, subtype, grade)
                gap = _with_catch_all(gap, catch_all, deliberate)
        rows.append(CoverageRow(category, subtype, grade, tuple(plan_label(p) for p in general), hazards, gap,
                                catch_all, deliberate))
    return rows


def _with_catch_all(gap: str, catch_all: str, deliberate: str | None) -> str:
    if gap == "no plan":
        text = f"catch-all only ({catch_all})"
    else:
        text = f"{gap}; the rest falls to the catch-all ({catch_all})"
    return f"{text}: deliberate, {deliberate}" if deliberate else f"{text}: no specific plan, none documented"

"""`pingan plans coverage`: which plans handle each cell of the taxonomy, and which cells nobody handles."""

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

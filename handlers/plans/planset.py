"""The set of plans in force and its matching index, built once so each match is a few dict lookups."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pingan.handlers.plans.directory import DirectoryIndex
from pingan.schemas.directory import Directory
from pingan.schemas.plan import Plan, PlanStatus
from pingan.schemas.taxonomy import Category, Grade, Subtype

# (category, subtype or None for "every subtype", grade) -> {hazard or None for "any hazard": plans by id}
IndexKey = tuple[Category, Subtype | None, Grade]



PlanIndex = dict[IndexKey, dict[str | None, tuple[Plan, ...]]]



def normalise_hazard(hazard: str | None) -> str | None:
    """Hazards are free text on both sides; compare them case- and space-insensitively."""
    if hazard is None:
        return None
    hazard = hazard.strip().lower()
    return hazard or None



@dataclass(frozen=True)
class PlanSet:
    """The loaded plans plus the matching index, built once so each match is a few dict lookups."""

    plans: tuple[Plan, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)  # plan id -> file
    directory: DirectoryIndex = field(default_factory=DirectoryIndex.empty, compare=False)
    index: PlanIndex = field(init=False, repr=False, compare=False)
    hashes: dict[str, str] = field(init=False, repr=False, compare=False)  # plan id -> content_hash()
    # The plan every incident falls to when no other covers it; None: such an incident gets no_plan.
    catch_all: Plan | None = field(init=False, repr=False, compare=False)
    _by_id: dict[str, Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [p.id for p in self.plans]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate plan ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        # Frozen, so the derived lookups are set once here and can never drift from `plans`.
        object.__setattr__(self, "index", _build_index(self.plans))
        object.__setattr__(self, "hashes", {p.id: p.content_hash() for p in self.plans})
        object.__setattr__(self, "_by_id", {p.id: p for p in self.plans})
        # Lint allows one non-retired catch-all; should a set built in code hold more, the lowest id is stable.
        fallbacks = sorted((p for p in self.plans if p.catch_all and p.status is not PlanStatus.retired),
                           key=lambda p: p.id)
        object.__setattr__(self, "catch_all", fallbacks[0] if fallbacks else None)

    @classmethod
    def empty(cls) -> PlanSet:
        return cls(())

    @classmethod
    def of(cls, plans: Iterable[Plan], directory: DirectoryIndex | Directory | None = None) -> PlanSet:
        if isinstance(directory, Directory):
            directory = DirectoryIndex.of(directory)
        return cls(tuple(plans), {}, directory or DirectoryIndex.empty())

    def get(self, plan_id: str) -> Plan | None:
        return self._by_id.get(plan_id)

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)



def plan_cells(plan: Plan) -> Iterator[tuple[IndexKey, str | None]]:
    """Every (index key, hazard) bucket a plan is filed under: its subtypes (or None) x grades x hazards.

    Nothing for the catch-all: it is filed under no cell; matching falls back to it (PlanSet.catch_all).
    """
    scope = plan.applies_to
    if scope.category is None:
        return
    subtypes: list[Subtype | None] = list(dict.fromkeys(scope.subtypes)) or [None]
    hazards = list(dict.fromkeys(normalise_hazard(h) for h in scope.hazards)) or [None]
    for grade in dict.fromkeys(plan.grades):
        for subtype in subtypes:
            for hazard in hazards:
                yield (scope.category, subtype, grade), hazard



def _build_index(plans: Iterable[Plan]) -> PlanIndex:
    buckets: dict[IndexKey, dict[str | None, list[Plan]]] = {}
    for plan in plans:
        for key, hazard in plan_cells(plan):
            buckets.setdefault(key, {}).setdefault(hazard, []).append(plan)
    # Sorted by id so a tie always resolves to the same plan, whatever the file order was.
    return {
        key: {hz: tuple(sorted(ps, key=lambda p: p.id)) for hz, ps in by_hazard.items()}
        for key, by_hazard in buckets.items()
    }

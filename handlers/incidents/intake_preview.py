"""`pingan intake test` as data: what a message would become through the live endpoints' parsers and mapping, and
the plan each incident would match; offline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pingan.handlers.incidents.placement import Placer, placed_report
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.matching import match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.adapters.by_kind import parse
from pingan.schemas.adapters.config import IntakeConfig
from pingan.schemas.adapters.input_kind import InputKind, detect
from pingan.schemas.areas import DistrictFileError, district_from_geojson
from pingan.schemas.events import IntakeItem

# What the route does with the parsed items before it commits them (an intake token's binding checks, its
# namespace): returns the items as they would be stored, or raises what the route would answer instead.
Admit = Callable[[list[IntakeItem]], list[IntakeItem]]


@dataclass(frozen=True)
class IntakePreview:
    kind: InputKind  # as detected when asked for auto
    summaries: list[dict[str, Any]]  # per incident event: kind, keys, the plan it matches and why, the report


def preview(data: bytes, kind: InputKind, name: str, config: IntakeConfig, plans_dir: Path,
            admit: Admit | None = None, district_file: Path | None = None) -> IntakePreview:
    """Parse `data` (detecting its kind for auto), pass the items through `admit` if given, place each report in the
    district of `district_file` as triage would (the worker's PINGAN_DISTRICT_AREAS; an unreadable file places
    nothing), then match each incident against the plans in `plans_dir`.

    Raises IntakeError for a message the endpoint would refuse; the plans are loaded only for one it would take."""
    chosen = detect(data) if kind is InputKind.auto else kind
    items = parse(data, chosen, name, config)
    if admit is not None:
        items = admit(items)
    plans = load_plans(plans_dir)
    placer = _placer(district_file, plans)
    summaries = []
    for item in items:
        report = placed_report(item.report, placer) if placer is not None else item.report
        match = match_plan(plans, report)
        placement = report.location.placement
        summaries.append({
            "kind": item.kind.value, "source_key": item.source_key, "dedup_key": item.report.effective_dedup_key(),
            "plan": match.plan.id if match.plan else None, "plan_reason": match.reason,
            "placement": {"path": [a.code for a in placement.path], "method": placement.method,
                          "evidence": placement.evidence, "outside": placement.outside} if placement else None,
            "report": item.report.model_dump(mode="json", exclude_defaults=True),
        })
    return IntakePreview(chosen, summaries)


def _placer(district_file: Path | None, plans: PlanSet) -> Placer | None:
    if district_file is None:
        return None
    try:
        district = district_from_geojson(district_file.read_text(encoding="utf-8"), str(district_file))
    except (OSError, DistrictFileError):
        return None
    return Placer(district, plans.directory.people.values())

"""`pingan plans test` as data: the incident report from options or a file, the plan and level it would activate,
why, who the command roles reach and the escalation timeline that would follow if nobody acknowledged.

`--subtype` also takes a hazard alias, because people say "typhoon", not "meteorological":

    alias         subtype          hazard
    typhoon       meteorological   typhoon
    rainstorm     meteorological   rainstorm
    blizzard      meteorological   blizzard
    storm_surge   marine           storm_surge     (storm-surge is accepted too)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from pingan.handlers.plans.directory import resolve
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.matching import MatchResult, match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.timeline import ResolvedTarget, TimelineEntry, escalation_timeline
from pingan.schemas.common import describe_validation
from pingan.schemas.incident import IncidentReport
from pingan.schemas.plan import Level
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, IncidentStatus, Subtype

HAZARD_ALIASES: dict[str, tuple[Subtype, str]] = {
    "typhoon": (Subtype.meteorological, "typhoon"),
    "rainstorm": (Subtype.meteorological, "rainstorm"),
    "blizzard": (Subtype.meteorological, "blizzard"),
    "storm_surge": (Subtype.marine, "storm_surge"),
}
NO_PLAN = "none"  # `--expect none`: assert that nothing matches


class ExplainError(ValueError):
    """The options or the file do not make an incident report; the message says why, for the person who ran it."""


def resolve_subtype(value: str, hazard: str | None) -> tuple[Subtype, str | None]:
    """A subtype, or a hazard alias as (subtype, hazard); refuses a --hazard that contradicts the alias."""
    try:
        return Subtype(value), hazard
    except ValueError:
        pass
    alias = HAZARD_ALIASES.get(value.strip().lower().replace("-", "_"))
    if alias is None:
        raise ExplainError(f"unknown subtype {value!r}; subtypes: {', '.join(s.value for s in Subtype)}; "
                           f"hazard aliases: {', '.join(HAZARD_ALIASES)}")
    subtype, alias_hazard = alias
    if hazard is not None and hazard.strip().lower() != alias_hazard:
        raise ExplainError(f"--subtype {value} means hazard {alias_hazard!r}, but --hazard is {hazard!r}")
    return subtype, alias_hazard


def report_from_options(category: Category | None, subtype: str | None, grade: Grade | None, area: str | None,
                        labels: list[str], hazard: str | None, status: IncidentStatus) -> IncidentReport:
    """The report `plans test --category/--subtype/--grade/--area/--label/--hazard/--status` describes."""
    from pingan.schemas.incident import Location
    from pingan.schemas.taxonomy import Source

    if subtype is None or grade is None:
        raise ExplainError("give --subtype and --grade (and --category), or --file")
    sub, hazard = resolve_subtype(subtype, hazard)
    if category is None:  # every subtype belongs to exactly one category
        category = next(c for c, subs in SUBTYPES_BY_CATEGORY.items() if sub in subs)
    parsed: dict[str, str] = {}
    for pair in labels:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ExplainError(f"--label wants k=v, got {pair!r}")
        parsed[key.strip()] = value.strip()
    try:
        return IncidentReport(source=Source.cli, status=status, category=category, subtype=sub, grade=grade,
                              hazard=hazard, title="pingan plans test", labels=parsed,
                              location=Location(area_code=area))
    except ValidationError as exc:
        raise ExplainError(describe_validation(exc)) from None


def reports_from_bytes(data: bytes, name: str) -> list[IncidentReport]:
    """The reports in a file's content: a CAP message (one per <info>), an incident report or a stored incident."""
    from pingan.schemas.adapters.cap import parse_cap
    from pingan.schemas.adapters.errors import IntakeError
    from pingan.schemas.incident import Incident

    if data.lstrip().startswith(b"<"):
        try:
            return [item.report for item in parse_cap(data, source_name=name)]
        except IntakeError as exc:
            raise ExplainError(str(exc)) from None
    try:
        return [IncidentReport.model_validate_json(data)]
    except ValidationError as first:
        try:  # a stored incident (with id, received_at, …) works as well
            return [Incident.model_validate_json(data)]
        except ValidationError:
            raise ExplainError(f"{name}: not an incident report: {describe_validation(first)}") from None


@dataclass(frozen=True)
class Explanation:
    """What one report would activate at `when`; `level` and the lists are empty when no plan or level applies."""

    report: IncidentReport
    match: MatchResult
    when: datetime
    source: str = "?"  # the matched plan's file
    level: Level | None = None
    command: list[tuple[str, str]] = field(default_factory=list)  # (role, whom it reaches at `when`)
    timeline: list[TimelineEntry] = field(default_factory=list)  # if nobody acknowledges

    @property
    def plan_id(self) -> str:
        """The matched plan's id, or NO_PLAN: what `--expect` compares with."""
        return self.match.plan.id if self.match.plan else NO_PLAN


def explain(plans: PlanSet, report: IncidentReport, when: datetime) -> Explanation:
    """Which plan and level `report` would activate at `when`, who its command roles reach, and its timeline."""
    match = match_plan(plans, report, today=when.astimezone().date())
    plan = match.plan
    if plan is None:
        return Explanation(report, match, when)
    source = plans.sources.get(plan.id, "?")
    level = plan.level(report.grade)
    if level is None:
        return Explanation(report, match, when, source)
    placement = report.location.placement  # set by `plans test --area` (cli), for the area targets
    command = [(role.value, ResolvedTarget(target, tuple(resolve(target, level, plans.directory, when,
                                                                 placement=placement))).label())
               for role, target in level.command.items()]
    return Explanation(report, match, when, source, level, command,
                       escalation_timeline(plan, level, plans.directory, when, placement))


def explain_reports(plans_dir: Path, reports: list[IncidentReport], when: datetime) -> list[Explanation]:
    """`explain` for each report against the plan set in `plans_dir`; raises PlanLoadError when it does not load."""
    plans = load_plans(plans_dir)
    return [explain(plans, report, when) for report in reports]

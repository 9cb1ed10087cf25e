"""`pingan areas [CODE] [--exercise] [--json]`: the district's areas as GET /v1/areas and GET /v1/areas/{code} show
them (issue 18, part 5). Without a code, the hierarchy as a tree (grids with their officers); with one, the area's
path, children, open incidents, report and incident counts of the last 24 h and 7 days, trend series and warnings.
Thin: store/area_reads.py reads, this prints. Imports are lazy so `pingan --help` stays light."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pingan.cli import runtime

if TYPE_CHECKING:
    from pingan.schemas.area_view import AreaDetail, AreaNode


def _tree(nodes: list[AreaNode]) -> list[str]:
    by_code = {n.code: n for n in nodes}
    lines: list[str] = []

    def walk(node: AreaNode, depth: int) -> None:
        extra = f"  officers: {', '.join(node.officers)}" if node.officers else ""
        lines.append(f"{'  ' * depth}{node.code:<16} {node.level or '':<9} {node.name_zh or ''} "
                     f"({node.name_en or ''}){extra}")
        for child in node.children:
            if child in by_code:
                walk(by_code[child], depth + 1)

    for root in (n for n in nodes if n.parent is None or n.parent not in by_code):
        walk(root, 0)
    return lines


def _detail(d: AreaDetail) -> list[str]:
    a = d.area
    lines = [f"{a.code}  {a.level or ''}  {a.name_zh or ''} ({a.name_en or ''})",
             "path: " + " → ".join(f"{p.name_zh or p.code}" for p in d.path)]
    if a.officers:
        lines.append("officers: " + ", ".join(a.officers))
    if a.leaders:
        lines.append("leaders: " + ", ".join(a.leaders))
    if d.children:
        lines.append("children: " + ", ".join(f"{c.code} {c.name_zh or ''}" for c in d.children))
    lines.append(f"open incidents ({len(d.open_incidents)}):" if d.open_incidents else "open incidents: none")
    for i in d.open_incidents:
        lines.append(f"  {i.id}  {i.grade.value:<3} {i.category.value}/{i.subtype.value}  {i.state.value}  {i.title}")
    for w in d.counts:
        cats = ", ".join(f"{c.category} {c.reports}/{c.incidents}" for c in w.by_category)
        lines.append(f"last {w.window}: {w.reports} reports, {w.incidents} incidents"
                     + (f"  (reports/incidents: {cats})" if cats else ""))
    for s in d.series:
        kind = f"{s.category}/{s.subtype or '*'}"
        said = (f"baseline {s.baseline_mean:.1f}±{s.baseline_sd:.1f}  {s.detector} {s.statistic:.2f} / "
                f"{s.threshold:g}{'  ALARM' if s.alarm else ''}" if s.statistic is not None and s.threshold is not None
                and s.baseline_mean is not None and s.baseline_sd is not None else "no rule or too little history")
        lines.append(f"series {kind:<40} {s.interval:<6} recent {' '.join(map(str, s.counts))}  {said}")
    for al in d.alarms:
        lines.append(f"warning {al.incident_id}  {al.key}  raised {al.raised_at.isoformat(timespec='seconds')}  "
                     f"alarms {al.alarms}")
    return lines


def areas(code: Annotated[str | None, typer.Argument(help="An area's code; default the whole hierarchy")] = None,
          exercise: Annotated[bool, typer.Option("--exercise", help="Count exercise incidents and reports in")]
          = False,
          as_json: Annotated[bool, typer.Option("--json", help="The JSON of GET /v1/areas[/{code}]")] = False) -> None:
    """The district's areas (网格): the hierarchy, or one area's open incidents, counts, trends and warnings."""
    from pingan.handlers.plans.lint_trends import read_trend_rules
    from pingan.schemas.area_view import AreaList, district_nodes
    from pingan.schemas.areas import DistrictFileError
    from pingan.schemas.common import utcnow
    from pingan.store.area_reads import area_detail

    settings = runtime.settings()
    try:
        name, nodes = district_nodes(settings.district_areas)
    except (OSError, DistrictFileError) as exc:
        runtime.fail(f"the district areas file cannot be read: {exc}")
    if code is None:
        if as_json:
            runtime.echo_lines(AreaList(district=name, items=nodes).model_dump_json(indent=2))
            return
        runtime.echo(f"{name}: {len(nodes)} areas")
        for line in _tree(nodes):
            runtime.echo(line)
        return
    by_code = {n.code: n for n in nodes}
    if code not in by_code:
        runtime.fail(f"area {code!r} not found in {settings.district_areas}")
    rules, _ = read_trend_rules(settings.plans_dir)
    detail = area_detail(runtime.store(), by_code, code, utcnow(), rules.rules if rules else [], exercise=exercise,
                         scale=settings.escalation_time_scale)
    if as_json:
        runtime.echo_lines(json.dumps(detail.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for line in _detail(detail):
        runtime.echo(line)

"""`pingan plans …`: the plan author's tools: lint, test, diff, coverage, approve. Each verb reads its arguments,
calls pingan.handlers.plans (or pingan.commands for approve) and prints; `plans test`'s hazard aliases are in
handlers/plans/explain.py.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated

import typer

from pingan.cli import runtime
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype

if TYPE_CHECKING:  # the commands import their handlers lazily, so `pingan --help` stays fast
    from pingan.handlers.plans.explain import Explanation
    from pingan.schemas.incident import IncidentReport

plans_app = typer.Typer(help="Response plans: lint, test, diff and coverage.", no_args_is_help=True)


def _plans_dir(directory: Path | None) -> Path:
    return directory if directory is not None else runtime.settings().plans_dir


@plans_app.command("lint")
def lint(directory: Annotated[Path | None, typer.Argument(help="Plans directory; default PINGAN_PLANS_DIR")] = None,
         ) -> None:
    """Check every plan and the directory; prints file:line:col: problems. Exit 1 on errors, not on warnings."""
    from pingan.handlers.plans.lint import lint_plans

    plans_dir = _plans_dir(directory)
    report = lint_plans(plans_dir)
    for problem in sorted(report.errors + report.warnings, key=lambda p: (p.file, p.line, p.col)):
        runtime.echo(str(problem))
    count = len(report.planset) if report.planset is not None else "?"
    runtime.echo(f"{plans_dir}: {count} plans, {len(report.errors)} error(s), {len(report.warnings)} warning(s)",
                 err=True)
    raise typer.Exit(1 if report.errors else 0)


def _when(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        runtime.fail(f"--at wants an ISO time such as 2026-07-01T09:30+08:00, got {at!r}")
    return when if when.tzinfo else when.astimezone()  # a naive time is the local time


@plans_app.command("test")
def test(
    category: Annotated[Category | None, typer.Option(help="Default: the subtype's category")] = None,
    subtype: Annotated[str | None, typer.Option(help="A subtype, or a hazard alias: typhoon, rainstorm, "
                                                     "blizzard, storm_surge")] = None,
    grade: Annotated[Grade | None, typer.Option(help="I (特别重大) … IV (一般)")] = None,
    area: Annotated[str | None, typer.Option(help="Area code (plans/areas/): a grid, community, town…; the report is "
                                                  "placed there, for area plans and area targets")] = None,
    label: Annotated[list[str] | None, typer.Option(help="k=v; repeatable")] = None,
    hazard: Annotated[str | None, typer.Option(help="Finer hazard, e.g. typhoon")] = None,
    file: Annotated[Path | None, typer.Option(help="An incident JSON or a CAP XML file instead")] = None,
    status: Annotated[IncidentStatus, typer.Option(help="actual needs approved plans; --file brings its own")
                      ] = IncidentStatus.actual,
    expect: Annotated[str | None, typer.Option(help="Fail unless this plan id matches ('none': no plan)")] = None,
    at: Annotated[str | None, typer.Option(help="ISO time for on-call resolution; default now")] = None,
    plans_dir: Annotated[Path | None, typer.Option("--dir", help="Default: PINGAN_PLANS_DIR")] = None,
) -> None:
    """Which plan and level an incident would activate, why, and the escalation timeline that would follow.

    --subtype also takes a hazard alias: typhoon, rainstorm, blizzard (meteorological with that hazard) and
    storm_surge (marine). With --expect it is a regression check: exit 1 when another plan (or none) matches.
    """
    from pingan.handlers.plans.explain import ExplainError, explain_reports, report_from_options, reports_from_bytes
    from pingan.handlers.plans.problems import PlanLoadError

    try:
        if file is not None:
            if any(v is not None for v in (category, subtype, grade, area, hazard)) or label:
                runtime.fail("--file replaces --category/--subtype/--grade/--area/--hazard/--label")
            try:
                data = file.read_bytes()
            except OSError as exc:
                runtime.fail(f"{file}: {exc.strerror}")
            reports = reports_from_bytes(data, str(file))
        else:
            reports = [report_from_options(category, subtype, grade, area, label or [], hazard, status)]
    except ExplainError as exc:
        runtime.fail(str(exc))
    when = _when(at)
    reports = _placed(_plans_dir(plans_dir), reports)
    try:
        explanations = explain_reports(_plans_dir(plans_dir), reports, when)
    except PlanLoadError as exc:
        runtime.fail(f"the plan set does not load (run `pingan plans lint`):\n{exc}")
    failed = False
    for explanation in explanations:
        _print_explanation(explanation)
        if expect is not None:
            got = explanation.plan_id
            if got != expect:
                runtime.echo(f"error: expected plan {expect!r}, matched {got!r}: {explanation.match.reason}", err=True)
                failed = True
            else:
                runtime.echo(f"ok: matched the expected plan {expect!r}")
    raise typer.Exit(1 if failed else 0)


def _placed(directory: Path, reports: list[IncidentReport]) -> list[IncidentReport]:
    """The reports placed in the district of the plans directory (areas/*.geojson), as triage would place them:
    `--area CODE` then names a grid, a community… and the area targets and area plans follow from it."""
    from pingan.handlers.incidents.placement import Placer, placed_report
    from pingan.handlers.plans.reader import read_plans
    from pingan.schemas.areas import DistrictFileError, district_from_geojson

    files = sorted((directory / "areas").glob("*.geojson")) if (directory / "areas").is_dir() else []
    if not files:
        return reports
    try:
        district = district_from_geojson(files[0].read_text(encoding="utf-8"), str(files[0]))
    except (OSError, DistrictFileError) as exc:
        runtime.echo(f"warning: reports not placed in areas: {exc}", err=True)
        return reports
    placer = Placer(district, read_plans(directory).directory.people)
    return [placed_report(r, placer) for r in reports]


def _print_explanation(explanation: Explanation) -> None:
    from pingan.handlers.plans.timeline import format_minute

    report, match = explanation.report, explanation.match
    what = f"{report.status.value} {report.category.value}/{report.subtype.value}"
    what += f"/{report.hazard}" if report.hazard else ""
    extras = [f"area {report.location.area_code}"] if report.location.area_code else []
    extras += [f"{k}={v}" for k, v in report.labels.items()]
    runtime.echo(f"incident: {what} grade {report.grade.value}" + (f" ({', '.join(extras)})" if extras else ""))
    if (placement := report.location.placement) is not None:
        path = " › ".join(f"{a.name_zh or a.name_en or a.code}" for a in placement.path) or "nowhere"
        runtime.echo(f"placed:   {path} ({placement.method}: {placement.evidence})")
    if match.plan is None:
        runtime.echo(f"plan:     none — {match.reason}")
        if match.candidates:
            runtime.echo(f"excluded: {', '.join(match.candidates)}")
        return
    plan = match.plan
    runtime.echo(f"plan:     {plan.id} v{plan.version} {plan.title.zh} ({explanation.source})")
    runtime.echo(f"why:      {match.reason}")
    runtime.echo(f"{'tied' if len(match.candidates) > 1 else 'candidates'}: {', '.join(match.candidates)}")
    level = explanation.level
    if level is None:
        runtime.echo(f"level:    none for grade {report.grade.value}")
        return
    runtime.echo(f"level:    {level.grade.value} {level.response_level}")
    for role, reached in explanation.command:
        runtime.echo(f"  {role}: {reached}")
    if level.departments:
        runtime.echo(f"  departments: {', '.join(level.departments)}")
    runtime.echo(f"timeline from {explanation.when.isoformat(timespec='minutes')} if nobody acknowledges:")
    for entry in explanation.timeline:
        runtime.echo(f"  {format_minute(entry.minute):>7} {entry.text}")


# ── diff ─────────────────────────────────────────────────────────────────────
def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        runtime.fail(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


@contextmanager
def _materialise(spec: str, path: str) -> Iterator[tuple[Path, str]]:
    """(directory, how to name it): a plans directory as given, or `path` at a git revision written out to a
    temporary directory, named `REV:path` so messages do not point into a directory that is gone."""
    if Path(spec).is_dir():
        yield Path(spec), spec
        return
    check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], capture_output=True,
                           check=False)
    if check.returncode != 0:
        runtime.fail(f"{spec!r} is neither a plans directory nor a git revision")
    root = PurePosixPath(path.strip("/"))
    with tempfile.TemporaryDirectory(prefix="pingan-plans-") as tmp:
        names = _git("ls-tree", "-r", "--name-only", "--full-tree", spec, "--", f"{root}/").splitlines()
        for name in names:
            rel = PurePosixPath(name).relative_to(root)
            wanted = len(rel.parts) == 1 or (len(rel.parts) == 2 and rel.parts[0] == "directory")
            if wanted and rel.suffix in (".yaml", ".yml"):
                target = Path(tmp, *rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_git("show", f"{spec}:{name}"), encoding="utf-8")
        yield Path(tmp), f"{spec}:{root}"


@plans_app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="A plans directory or a git revision")],
    new: Annotated[str, typer.Argument(help="A plans directory or a git revision")],
    path: Annotated[str, typer.Option(help="The plans directory inside the repository, for revisions")] = "plans",
    show_all: Annotated[bool, typer.Option("--all", help="Also list the cells that did not change")] = False,
) -> None:
    """Per (category, subtype, hazard, grade): which plan, version and level handled it before and after."""
    from pingan.handlers.plans.diff import summarise_diff
    from pingan.handlers.plans.lint import lint_plans

    plansets = []
    for spec in (old, new):
        with _materialise(spec, path) as (directory, name):
            report = lint_plans(directory)
            if report.planset is None:
                problems = "\n".join(str(p).replace(str(directory), name, 1) for p in report.errors)
                runtime.fail(f"{spec} does not load:\n{problems}")
            plansets.append(report.planset)
    summary = summarise_diff(*plansets, show_all=show_all)
    for group in summary.groups:
        runtime.echo(f"{group.where}:")
        runtime.echo(f"    {', '.join(group.before) or 'no plan'} → {', '.join(group.after) or 'no plan'}")
        for change in group.changes:
            runtime.echo(f"    {change}")
    runtime.echo(f"{summary.changed} of {summary.total} cells changed", err=True)


# ── coverage ─────────────────────────────────────────────────────────────────
@plans_app.command("coverage")
def coverage(
    directory: Annotated[Path | None, typer.Argument(help="Plans directory; default PINGAN_PLANS_DIR")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable rows and gaps")] = False,
) -> None:
    """The four categories x subtypes x grades I–IV: the plan covering each cell, and the gaps."""
    from rich.console import Console
    from rich.table import Table

    from pingan.handlers.plans.coverage import coverage as coverage_rows
    from pingan.handlers.plans.lint import lint_plans

    report = lint_plans(_plans_dir(directory))
    if report.planset is None:
        runtime.fail("the plan set does not load:\n" + "\n".join(str(p) for p in report.errors))
    rows = coverage_rows(report.planset)
    gaps = [r for r in rows if r.gap]
    if as_json:
        gaps_json = [{"cell": f"{r.category.value}/{r.subtype.value} {r.grade.value}", "why": r.gap} for r in gaps]
        runtime.echo_lines(json.dumps({"rows": [r.as_json() for r in rows], "gaps": gaps_json}, ensure_ascii=False,
                                      indent=2))
        return
    table = Table(title="Plan coverage (category × subtype × grade)")
    for column in ("category", "subtype", *(g.value for g in Grade)):
        table.add_column(column)
    by_row: dict[tuple[Category, Subtype], dict[Grade, str]] = {}
    for r in rows:
        text = ", ".join(p.split(" ")[0] for p in r.general) or ("[yellow]catch-all[/yellow]" if r.catch_all else "")
        text += "".join(f"\n{h}: {', '.join(p.split(' ')[0] for p in ps)}" for h, ps in r.hazards.items())
        by_row.setdefault((r.category, r.subtype), {})[r.grade] = text.strip() or "[red]—[/red]"
    for (category, subtype), cells in by_row.items():
        table.add_row(category.value, subtype.value, *(cells[g] for g in Grade))
    Console(width=160).print(table)
    typer.echo(f"\n{len(rows) - len(gaps)} of {len(rows)} cells covered by a specific approved plan everywhere; "
               f"{len(gaps)} gap(s), {sum(1 for r in gaps if r.catch_all)} of them taken by the catch-all:")
    grouped: dict[tuple[str, str], list[str]] = {}  # one line per subtype and reason, listing its grades
    for r in gaps:
        grouped.setdefault((f"{r.category.value}/{r.subtype.value}", r.gap or ""), []).append(r.grade.value)
    for (cell, why), grades in grouped.items():
        runtime.echo(f"  {cell} {', '.join(grades)}: {why}")


from pingan.cli.plan_approval import approve  # noqa: E402  (kept in its own module)

plans_app.command("approve")(approve)

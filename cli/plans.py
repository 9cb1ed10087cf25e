"""`pingan plans …`: the plan author's tools: lint, test, diff, coverage.

`plans test --subtype` also takes a hazard alias, because people say "typhoon", not "meteorological":

    alias         subtype          hazard
    typhoon       meteorological   typhoon
    rainstorm     meteorological   rainstorm
    blizzard      meteorological   blizzard
    storm_surge   marine           storm_surge     (storm-surge is accepted too)
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
from pingan.schemas.incident import IncidentReport
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, IncidentStatus, Subtype

if TYPE_CHECKING:  # the commands import their handlers lazily, so `pingan --help` stays fast
    from pingan.handlers.plans.matching import MatchResult
    from pingan.handlers.plans.planset import PlanSet

plans_app = typer.Typer(help="Response plans: lint, test, diff and coverage.", no_args_is_help=True)

HAZARD_ALIASES: dict[str, tuple[Subtype, str]] = {
    "typhoon": (Subtype.meteorological, "typhoon"),
    "rainstorm": (Subtype.meteorological, "rainstorm"),
    "blizzard": (Subtype.meteorological, "blizzard"),
    "storm_surge": (Subtype.marine, "storm_surge"),
}
NO_PLAN = "none"  # `--expect none`: assert that nothing matches


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
        typer.echo(str(problem))
    count = len(report.planset) if report.planset is not None else "?"
    typer.echo(f"{plans_dir}: {count} plans, {len(report.errors)} error(s), {len(report.warnings)} warning(s)",
               err=True)
    raise typer.Exit(1 if report.errors else 0)


def _subtype(value: str, hazard: str | None) -> tuple[Subtype, str | None]:
    try:
        return Subtype(value), hazard
    except ValueError:
        pass
    alias = HAZARD_ALIASES.get(value.strip().lower().replace("-", "_"))
    if alias is None:
        runtime.fail(f"unknown subtype {value!r}; subtypes: {', '.join(s.value for s in Subtype)}; "
                     f"hazard aliases: {', '.join(HAZARD_ALIASES)}")
    subtype, alias_hazard = alias
    if hazard is not None and hazard.strip().lower() != alias_hazard:
        runtime.fail(f"--subtype {value} means hazard {alias_hazard!r}, but --hazard is {hazard!r}")
    return subtype, alias_hazard


def _reports_from_file(file: Path) -> list[IncidentReport]:
    from pydantic import ValidationError

    from pingan.schemas.adapters.cap import parse_cap
    from pingan.schemas.adapters.errors import IntakeError
    from pingan.schemas.incident import Incident

    try:
        data = file.read_bytes()
    except OSError as exc:
        runtime.fail(f"{file}: {exc.strerror}")
    if data.lstrip().startswith(b"<"):
        try:
            return [item.report for item in parse_cap(data, source_name=str(file))]
        except IntakeError as exc:
            runtime.fail(str(exc))
    try:
        return [IncidentReport.model_validate_json(data)]
    except ValidationError as first:
        try:  # a stored incident (with id, received_at, …) works as well
            return [Incident.model_validate_json(data)]
        except ValidationError:
            runtime.fail(f"{file}: not an incident report: {runtime.describe_validation(first)}")


def _report(category: Category | None, subtype: str | None, grade: Grade | None, area: str | None,
            labels: list[str], hazard: str | None, status: IncidentStatus) -> IncidentReport:
    from pydantic import ValidationError

    from pingan.schemas.incident import Location
    from pingan.schemas.taxonomy import Source

    if subtype is None or grade is None:
        runtime.fail("give --subtype and --grade (and --category), or --file")
    sub, hazard = _subtype(subtype, hazard)
    if category is None:  # every subtype belongs to exactly one category
        category = next(c for c, subs in SUBTYPES_BY_CATEGORY.items() if sub in subs)
    parsed: dict[str, str] = {}
    for pair in labels:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            runtime.fail(f"--label wants k=v, got {pair!r}")
        parsed[key.strip()] = value.strip()
    try:
        return IncidentReport(source=Source.cli, status=status, category=category, subtype=sub, grade=grade,
                              hazard=hazard, title="pingan plans test", labels=parsed,
                              location=Location(area_code=area))
    except ValidationError as exc:
        runtime.fail(runtime.describe_validation(exc))


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
    area: Annotated[str | None, typer.Option(help="Administrative area code")] = None,
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
    from pingan.handlers.plans.load import load_plans
    from pingan.handlers.plans.matching import match_plan
    from pingan.handlers.plans.problems import PlanLoadError

    if file is not None:
        if any(v is not None for v in (category, subtype, grade, area, hazard)) or label:
            runtime.fail("--file replaces --category/--subtype/--grade/--area/--hazard/--label")
        reports = _reports_from_file(file)
    else:
        reports = [_report(category, subtype, grade, area, label or [], hazard, status)]
    when = _when(at)
    try:
        plans = load_plans(_plans_dir(plans_dir))
    except PlanLoadError as exc:
        runtime.fail(f"the plan set does not load (run `pingan plans lint`):\n{exc}")
    failed = False
    for report in reports:
        match = match_plan(plans, report, today=when.astimezone().date())
        _print_match(report, match, plans, when)
        if expect is not None:
            got = match.plan.id if match.plan else NO_PLAN
            if got != expect:
                typer.echo(f"error: expected plan {expect!r}, matched {got!r}: {match.reason}", err=True)
                failed = True
            else:
                typer.echo(f"ok: matched the expected plan {expect!r}")
    raise typer.Exit(1 if failed else 0)


def _print_match(report: IncidentReport, match: MatchResult, plans: PlanSet, when: datetime) -> None:
    from pingan.handlers.plans.directory import resolve
    from pingan.handlers.plans.timeline import ResolvedTarget, escalation_timeline, format_minute

    what = f"{report.status.value} {report.category.value}/{report.subtype.value}"
    what += f"/{report.hazard}" if report.hazard else ""
    extras = [f"area {report.location.area_code}"] if report.location.area_code else []
    extras += [f"{k}={v}" for k, v in report.labels.items()]
    typer.echo(f"incident: {what} grade {report.grade.value}" + (f" ({', '.join(extras)})" if extras else ""))
    if match.plan is None:
        typer.echo(f"plan:     none — {match.reason}")
        if match.candidates:
            typer.echo(f"excluded: {', '.join(match.candidates)}")
        return
    plan = match.plan
    typer.echo(f"plan:     {plan.id} v{plan.version} {plan.title.zh} ({plans.sources.get(plan.id, '?')})")
    typer.echo(f"why:      {match.reason}")
    typer.echo(f"{'tied' if len(match.candidates) > 1 else 'candidates'}: {', '.join(match.candidates)}")
    level = plan.level(report.grade)
    if level is None:
        typer.echo(f"level:    none for grade {report.grade.value}")
        return
    typer.echo(f"level:    {level.grade.value} {level.response_level}")
    for role, target in level.command.items():
        people = tuple(resolve(target, level, plans.directory, when))
        typer.echo(f"  {role.value}: {ResolvedTarget(target, people).label()}")
    if level.departments:
        typer.echo(f"  departments: {', '.join(level.departments)}")
    typer.echo(f"timeline from {when.isoformat(timespec='minutes')} if nobody acknowledges:")
    for entry in escalation_timeline(plan, level, plans.directory, when):
        typer.echo(f"  {format_minute(entry.minute):>7} {entry.text}")


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
    from pingan.handlers.plans.cells import Cell, compact
    from pingan.handlers.plans.diff import diff_plansets
    from pingan.handlers.plans.lint import lint_plans

    plansets = []
    for spec in (old, new):
        with _materialise(spec, path) as (directory, name):
            report = lint_plans(directory)
            if report.planset is None:
                problems = "\n".join(str(p).replace(str(directory), name, 1) for p in report.errors)
                runtime.fail(f"{spec} does not load:\n{problems}")
            plansets.append(report.planset)
    diffs = diff_plansets(*plansets)
    # Cells with the same before, after and changes print once: a version bump touches many cells alike.
    groups: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], list[Cell]] = {}
    for d in diffs:
        if d.changed or show_all:
            groups.setdefault((d.before, d.after, tuple(d.changes)), []).append(d.cell)
    for (before, after, changes), group in groups.items():
        typer.echo(f"{compact(group)}:")
        typer.echo(f"    {', '.join(before) or 'no plan'} → {', '.join(after) or 'no plan'}")
        for change in changes:
            typer.echo(f"    {change}")
    changed = sum(d.changed for d in diffs)
    typer.echo(f"{changed} of {len(diffs)} cells changed", err=True)


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
        typer.echo(json.dumps({"rows": [r.as_json() for r in rows],
                               "gaps": [{"cell": f"{r.category.value}/{r.subtype.value} {r.grade.value}",
                                         "why": r.gap} for r in gaps]}, ensure_ascii=False, indent=2))
        return
    table = Table(title="Plan coverage (category × subtype × grade)")
    for column in ("category", "subtype", *(g.value for g in Grade)):
        table.add_column(column)
    by_row: dict[tuple[Category, Subtype], dict[Grade, str]] = {}
    for r in rows:
        text = ", ".join(p.split(" ")[0] for p in r.general) or ""
        text += "".join(f"\n{h}: {', '.join(p.split(' ')[0] for p in ps)}" for h, ps in r.hazards.items())
        by_row.setdefault((r.category, r.subtype), {})[r.grade] = text.strip() or "[red]—[/red]"
    for (category, subtype), cells in by_row.items():
        table.add_row(category.value, subtype.value, *(cells[g] for g in Grade))
    Console(width=160).print(table)
    typer.echo(f"\n{len(rows) - len(gaps)} of {len(rows)} cells covered by an approved plan everywhere; "
               f"{len(gaps)} gap(s):")
    grouped: dict[tuple[str, str], list[str]] = {}  # one line per subtype and reason, listing its grades
    for r in gaps:
        grouped.setdefault((f"{r.category.value}/{r.subtype.value}", r.gap or ""), []).append(r.grade.value)
    for (cell, why), grades in grouped.items():
        typer.echo(f"  {cell} {', '.join(grades)}: {why}")


from pingan.cli.plan_approval import approve  # noqa: E402  (kept in its own module)

plans_app.command("approve")(approve)

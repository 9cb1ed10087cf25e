"""`pingan trends [--area CODE] [--category C] [--exercise]`: the report counts the trend early-warning stage keeps
(store/trends.py), each watched series' baseline and detector now, and the warnings raised; `pingan trends lint`
checks the rules file (plans/trends/rules.yaml). Thin: the store and handlers decide, this prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime

trends_app = typer.Typer(help="Trend early warning (趋势预警): report counts per area, baselines and alarms.",
                         invoke_without_command=True)


def _area_names(path: Path) -> dict[str, str]:
    from pingan.schemas.areas import DistrictFileError, district_from_geojson

    try:
        district = district_from_geojson(path.read_text(encoding="utf-8"), str(path))
    except (OSError, DistrictFileError):
        return {}
    return {a.code: a.name_zh or a.name_en or a.code for a in district.areas}


@trends_app.callback()
def show(ctx: typer.Context,
         area: Annotated[str | None, typer.Option(help="Only this area's series (its code)")] = None,
         category: Annotated[str | None, typer.Option(help="Only this category, e.g. public_health")] = None,
         exercise: Annotated[bool, typer.Option("--exercise", help="Exercise reports' series, not real ones")] = False,
         all_series: Annotated[bool, typer.Option("--all", help="Also series no rule watches")] = False) -> None:
    """Every series with reports in the last 28 days (hourly: 48 hours): recent counts, baseline, detector, alarm."""
    if ctx.invoked_subcommand is not None:
        return
    from pingan.handlers.plans.lint_trends import read_trend_rules
    from pingan.schemas.common import utcnow
    from pingan.store.trends import TrendStore, current_series

    settings = runtime.settings()
    rules, problems = read_trend_rules(settings.plans_dir)
    for problem in problems:
        runtime.echo(str(problem), err=True)
    status = "exercise" if exercise else "actual"
    names = _area_names(settings.district_areas)
    store = runtime.store()
    views = current_series(store, rules.rules if rules else [], utcnow(), status=status, area=area,
                           category=category, watched_only=not all_series, scale=settings.escalation_time_scale)
    if not views:
        runtime.echo(f"no {'watched ' if not all_series else ''}series with {status} reports in the last 28 days"
                     + (" (rules: none)" if rules is None else ""))
    for v in views:
        kind = f"{v.key.category}/{v.key.subtype}" if v.key.subtype else f"{v.key.category}/*"
        head = f"{v.key.level:<9} {v.key.area:<15} {names.get(v.key.area, ''):<8} {kind:<40} {v.key.interval:<6}"
        recent = " ".join(str(c) for c in v.counts)
        if v.verdict is None:
            said = "no rule" if v.rule is None else "too little history"
        else:
            b = v.verdict.baseline
            said = (f"baseline {b.mean:.1f}±{b.sd:.1f}  {v.verdict.detector} {v.verdict.statistic:.2f}"
                    f" {'>' if v.verdict.statistic > v.verdict.threshold else '≤'} {v.verdict.threshold:g}"
                    f"{'  ALARM' if v.verdict.alarm else ''}  [{v.rule.id if v.rule else ''}]")
        runtime.echo(f"{head}  now {v.counts[-1]:<4} recent {recent}  {said}")
    alarms = [a for a in TrendStore(store).alarms(status)
              if (area is None or f":{area}:" in a.dedup_key) and (category is None or f":{category}:" in a.dedup_key)]
    if alarms:
        runtime.echo("warnings raised:")
    for a in alarms:
        e = a.last_evidence
        runtime.echo(f"  {a.incident_id}  {a.dedup_key}  raised {a.raised_at.isoformat(timespec='seconds')}  "
                     f"alarms {a.alarms}, last {a.last_alarm_at.isoformat(timespec='seconds')}: {e.get('series')} "
                     f"{e.get('detector')} {e.get('statistic')} > {e.get('threshold')} on {e.get('count')} reports")


@trends_app.command("lint")
def lint(directory: Annotated[Path | None, typer.Argument(help="Plans directory; default PINGAN_PLANS_DIR")] = None,
         ) -> None:
    """Check the trend rules file (trends/rules.yaml under the plans directory); exit 1 on errors."""
    from pingan.handlers.plans.lint_trends import read_trend_rules
    from pingan.handlers.plans.problems import Severity
    from pingan.schemas.trends import TREND_RULES_FILE

    plans_dir = directory if directory is not None else runtime.settings().plans_dir
    rules, problems = read_trend_rules(plans_dir)
    for problem in problems:
        runtime.echo(str(problem))
    errors = [p for p in problems if p.severity is Severity.error]
    if errors:
        raise typer.Exit(1)
    if rules is None:
        runtime.echo(f"no rules file at {plans_dir / TREND_RULES_FILE}: trend warning is off")
    else:
        runtime.echo(f"ok: {len(rules.rules)} rules, {len(problems)} warnings")

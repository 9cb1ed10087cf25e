"""`pingan sitrep`: a situation report (态势研判) of a day, a week or a month, read-only from the store."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime


class PeriodOption(StrEnum):
    day = "day"
    week = "week"
    month = "month"


class FormatOption(StrEnum):
    html = "html"
    pdf = "pdf"
    json = "json"


class LangOption(StrEnum):
    zh = "zh"
    en = "en"


def sitrep(
    period: Annotated[PeriodOption, typer.Option(help="day (per hour), week or month (per day)")] = PeriodOption.day,
    since: Annotated[str | None, typer.Option(
        help="Start: a local date (2026-11-30) or an ISO time; default the last complete period (yesterday, the "
             "seven days before today, last month)")] = None,
    fmt: Annotated[FormatOption, typer.Option("--format", help="html (one self-contained file), pdf or json")]
    = FormatOption.html,
    lang: Annotated[LangOption, typer.Option(help="zh (中文) or en")] = LangOption.zh,
    out: Annotated[Path | None, typer.Option(help="Write here; default standard output")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The report's time (ISO, default now): what is open and late is judged then")] = None,
) -> None:
    """A situation report (态势研判): incidents against the previous period, response times against the plans'
    targets, notifications, roll calls, tasks, open incidents, busiest areas and charts. Exercise and test traffic
    is left out."""
    from zoneinfo import ZoneInfo

    from pingan import sitreps
    from pingan.handlers.sitreps.period import parse_since

    settings = runtime.settings()
    tz = ZoneInfo(settings.timezone)
    try:
        start = parse_since(since, tz) if since else None
        when = parse_since(as_of, tz, "--as-of") if as_of else None
    except ValueError as exc:
        runtime.fail(str(exc))
    if fmt is FormatOption.pdf and out is None:
        runtime.fail("--format pdf needs --out FILE")
    report = sitreps.build(runtime.store(), settings, period.value, since=start, as_of=when)  # type: ignore[arg-type]
    try:
        data = sitreps.render(report, fmt.value, lang.value)  # type: ignore[arg-type]
    except sitreps.PdfUnavailable as exc:
        runtime.fail(str(exc))
    if out is None:
        sys.stdout.buffer.write(data + (b"\n" if not data.endswith(b"\n") else b""))
        return
    out.write_bytes(data)
    runtime.echo(str(out), err=True)

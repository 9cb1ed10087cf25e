"""A report's period: a local day, week or month, and the previous period of equal length. Pure.

Periods are the district's local calendar (settings.timezone): a day is local midnight to midnight, a week seven local
days from its start, a month a calendar month. Without `since`, the last complete period before `now`: yesterday, the
seven days before today, last month.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pingan.schemas.sitrep import Period, PeriodKind


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _add_month_keep_day(day: date) -> date:
    year, month = day.year + day.month // 12, day.month % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def parse_since(text: str, tz: ZoneInfo, option: str = "--since") -> datetime:
    """`2026-11-30` (a local date, at local midnight) or an ISO time; a time without an offset is local."""
    text = text.strip()
    try:
        if len(text) == 10:
            return _local_midnight(date.fromisoformat(text), tz)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date (2026-11-30) or an ISO time (2026-11-30T08:00+08:00)")\
            from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def period_of(kind: PeriodKind, *, now: datetime, tz: ZoneInfo, since: datetime | None = None) -> Period:
    today = now.astimezone(tz).date()
    if since is not None:
        start = since.astimezone(tz)
    elif kind == "day":
        start = _local_midnight(today - timedelta(days=1), tz)
    elif kind == "week":
        start = _local_midnight(today - timedelta(days=7), tz)
    else:
        first = today.replace(day=1)
        start = _local_midnight((first - timedelta(days=1)).replace(day=1), tz)
    # Aware arithmetic on one ZoneInfo is wall-clock arithmetic: a local day stays midnight to midnight.
    if kind == "day":
        end = start + timedelta(days=1)
    elif kind == "week":
        end = start + timedelta(days=7)
    else:
        end_day = _add_month_keep_day(start.date())
        end = datetime.combine(end_day, start.timetz())
    length = end - start
    return Period(kind=kind, start=start.astimezone(UTC), end=end.astimezone(UTC),
                  previous_start=(start - length).astimezone(UTC), previous_end=start.astimezone(UTC),
                  timezone=tz.key)


def buckets(period: Period) -> list[tuple[datetime, datetime, str]]:
    """(start, end, label) of each chart bucket: local hours of a day, local days of a week or a month."""
    tz = ZoneInfo(period.timezone)
    step = timedelta(hours=1) if period.kind == "day" else timedelta(days=1)
    out = []
    at = period.start.astimezone(tz)
    while at < period.end:
        label = at.strftime("%H:00") if period.kind == "day" else at.strftime("%m-%d")
        out.append((at.astimezone(UTC), min(at + step, period.end).astimezone(UTC), label))
        at = at + step
    return out

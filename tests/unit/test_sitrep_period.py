"""Situation report periods, percentiles and buckets (handlers/sitreps): pure, against values worked out by hand."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pingan.handlers.sitreps.figures import median, p90
from pingan.handlers.sitreps.period import buckets, parse_since, period_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 09:00 on 12-05 in Shanghai


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("kind", "start", "end", "previous_start"), [
    ("day", "2026-12-03T16:00:00", "2026-12-04T16:00:00", "2026-12-02T16:00:00"),  # yesterday, local
    ("week", "2026-11-27T16:00:00", "2026-12-04T16:00:00", "2026-11-20T16:00:00"),  # the seven days before today
    ("month", "2026-10-31T16:00:00", "2026-11-30T16:00:00", "2026-10-01T16:00:00"),  # November; 30 days before it
])
def test_default_periods_are_the_last_complete_ones(kind: str, start: str, end: str, previous_start: str) -> None:
    p = period_of(kind, now=NOW, tz=SHANGHAI)  # type: ignore[arg-type]
    assert (p.start, p.end, p.previous_start, p.previous_end) == (_z(start), _z(end), _z(previous_start), _z(start))


def test_since_a_local_date_and_a_month_from_the_31st() -> None:
    p = period_of("month", now=NOW, tz=SHANGHAI, since=parse_since("2026-01-31", SHANGHAI))
    assert (p.start, p.end) == (_z("2026-01-30T16:00:00"), _z("2026-02-27T16:00:00"))  # Feb has no 31st
    q = period_of("day", now=NOW, tz=SHANGHAI, since=parse_since("2026-11-30T08:00", SHANGHAI))
    assert (q.start, q.end) == (_z("2026-11-30T00:00:00"), _z("2026-12-01T00:00:00"))
    assert parse_since("2026-11-30T08:00+00:00", SHANGHAI) == _z("2026-11-30T08:00:00")


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "30/11/2026", ""])
def test_a_bad_since_names_the_option(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text, SHANGHAI)


def test_buckets_are_local_hours_or_days() -> None:
    day = buckets(period_of("day", now=NOW, tz=SHANGHAI))
    assert len(day) == 24 and day[0][2] == "00:00" and day[-1][2] == "23:00"
    assert day[0][0] == _z("2026-12-03T16:00:00") and day[-1][1] == _z("2026-12-04T16:00:00")
    month = buckets(period_of("month", now=NOW, tz=SHANGHAI))
    assert [b[2] for b in month[:2]] == ["11-01", "11-02"] and len(month) == 30


def test_median_and_nearest_rank_p90() -> None:
    assert (median([]), p90([])) == (None, None)
    assert (median([7.0]), p90([7.0])) == (7.0, 7.0)
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    # nearest rank: ceil(0.9 x 10) = 9th of 1..10; ceil(0.9 x 11) = 10th of 1..11
    assert p90([float(x) for x in range(10, 0, -1)]) == 9.0
    assert p90([float(x) for x in range(1, 12)]) == 10.0

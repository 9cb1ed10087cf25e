"""Which series a report counts in, the intervals they are cut into, and what a rule decides over one series.

A report counts once in every series it belongs to: for each area on its path (district -> town -> community ->
grid, as placed by triage, else its area code and that code's parents in the district file), for its category as a
whole ('' subtype) and for its subtype, per hourly and daily interval. Exercise and test reports count in series of
their own status, so a drill never moves a real baseline and never raises a real warning.

Intervals are numbered slots: slot n starts at EPOCH + n × interval ÷ scale. EPOCH is a midnight of China Standard
Time (UTC+8, no daylight saving), so days run from local midnight and hours on the hour. `scale` is the stack's
clock (PINGAN_ESCALATION_TIME_SCALE; a drill's own speed for its reports): at 1440 a daily interval lasts one real
minute, which is how tests compress a day of reports.

When the detector runs: on every new count (the open interval's running count, so a surge is caught the day it
happens). Re-running it when an interval closes adds nothing: the new interval starts at 0, under every rule's
min_count, and a count of 0 can never raise a statistic above the one its interval had with its last report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from pingan.handlers.trends.cusum import cusum_series
from pingan.handlers.trends.ears import Baseline, c1, c2, c3
from pingan.schemas.trends import Detector, Interval, TrendRule

EPOCH = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
INTERVALS = (Interval.hourly, Interval.daily)


@dataclass(frozen=True, order=True)
class SeriesKey:
    status: str  # actual, exercise, test
    level: str  # district, town, community, grid
    area: str  # the area's code
    category: str
    subtype: str  # '' for the whole category
    interval: str  # hourly, daily

    def dedup_key(self) -> str:
        """One open warning per area and kind, whatever the interval or detector that saw it."""
        return f"trend:{self.level}:{self.area}:{self.category}:{self.subtype or '*'}"

    def label(self) -> str:
        kind = f"{self.category}/{self.subtype}" if self.subtype else self.category
        return f"{self.level} {self.area} × {kind} × {self.interval}"


def slot_of(at: datetime, interval: Interval, scale: float = 1.0) -> int:
    return math.floor((at - EPOCH).total_seconds() * scale / interval.seconds)


def slot_start(slot: int, interval: Interval, scale: float = 1.0) -> datetime:
    return (EPOCH + timedelta(seconds=slot * interval.seconds / scale)).astimezone(UTC)


@dataclass(frozen=True)
class AreaRef:
    code: str
    level: str


def series_of(status: str, category: str, subtype: str, path: Iterable[AreaRef]) -> list[SeriesKey]:
    """Every series a report of this status, category and subtype counts in, for each area of its path."""
    return [SeriesKey(status, a.level, a.code, category, sub, iv.value)
            for a in path for sub in ("", subtype) for iv in INTERVALS]


@dataclass(frozen=True)
class Verdict:
    """What a rule's detector says about a series at its latest interval."""

    rule: str
    detector: str
    statistic: float
    threshold: float
    count: int
    min_count: int
    baseline: Baseline
    limit: float  # the count that alone would alarm from a quiet state
    alarm: bool


def evaluate(rule: TrendRule, counts: Sequence[int]) -> Verdict | None:
    """The rule's detector over `counts` (oldest first, the last the current interval); None: too little history.
    The stage passes the rule's `history` intervals (28 by default), so a CUSUM is recomputed over that window each
    time (from its first interval with a full baseline, 19 of them): it forgets excess older than that, which a
    surge of the 1-7 days bench/trends.py injects never needs."""
    threshold = rule.effective_threshold
    if rule.detector is Detector.cusum:
        found = cusum_series(counts, k=rule.effective_k, h=threshold, min_sigma=rule.min_sigma)
    else:
        method = {Detector.c1: c1, Detector.c2: c2, Detector.c3: c3}[rule.detector]
        found = method(counts, threshold=threshold, min_sigma=rule.min_sigma)
    if found is None:
        return None
    return Verdict(rule.id, rule.detector.value, found.value, threshold, found.count, rule.min_count, found.baseline,
                   found.limit, found.alarm and found.count >= rule.min_count)


def rule_for(rules: Sequence[TrendRule], key: SeriesKey) -> TrendRule | None:
    """The rule watching exactly this series (its level, category, subtype or whole category, and interval)."""
    for rule in rules:
        if (rule.level.value == key.level and rule.category.value == key.category
                and rule.series_subtype() == key.subtype and rule.interval.value == key.interval):
            return rule
    return None

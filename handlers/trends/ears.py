"""CDC's Early Aberration Reporting System (EARS) methods C1, C2 and C3, as published.

References:
- Hutwagner L, Thompson W, Seeman GM, Treadwell T. "The bioterrorism preparedness and response Early Aberration
  Reporting System (EARS)". J Urban Health 2003;80(2 Suppl 1):i89-i96.
- Fricker RD Jr, Hegler BL, Dunfee DA. "Comparing syndromic surveillance detection methods: EARS' versus a
  CUSUM-based methodology". Stat Med 2008;27(17):3407-3429 (section 2.1 writes the three out as formulas).

With Y(t) the count of the current interval t (the last element of `counts`):

- C1 ("MILD"): baseline the 7 intervals just before t, no guard band:
      Ybar1 = mean(Y(t-7) … Y(t-1)),  S1 = sample standard deviation of the same 7 (divisor 6),
      C1(t) = (Y(t) - Ybar1) / S1, an alarm when C1(t) > 3.
- C2 ("MEDIUM"): the same, with a guard band of 2 intervals between baseline and today, so the first days of a
  rising outbreak do not inflate the baseline: Ybar3, S3 over Y(t-9) … Y(t-3); C2(t) = (Y(t) - Ybar3) / S3, alarm > 3.
- C3 ("ULTRA"): the current and the two previous C2 statistics' positive excess over 1, summed:
      C3(t) = sum_{i=t-2..t} max(0, C2(i) - 1), an alarm when C3(t) > 2.
  C3(t) therefore reads Y(t-11) … Y(t): 12 intervals.

Standard-deviation floor. A flat baseline (every interval the same, typically all zero in a quiet community) has
S = 0 and the statistic is undefined; EARS' SAS code and R's `surveillance::earsC` (its `minSigma`) leave the floor to
the user. We divide by max(S, min_sigma) with min_sigma = 1.0 report by default (chosen by bench/trends.py, see
docs/benchmarks.md): a count-based floor, so with an all-zero week a single report scores 1 and four score 4 (above
3), rather than one report scoring infinity. A rule's `min_count` (evaluate.py) is a separate guard on the count itself.

Missing intervals are the caller's business: an interval without reports is a 0 in `counts`, not a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BASELINE = 7  # intervals in the baseline (EARS)
GUARD_BAND = 2  # intervals between the baseline and the current one, for C2 and C3
DEFAULT_MIN_SIGMA = 1.0
C1_THRESHOLD = 3.0
C2_THRESHOLD = 3.0
C3_THRESHOLD = 2.0


@dataclass(frozen=True)
class Baseline:
    mean: float
    sd: float  # the sample standard deviation as computed
    sigma: float  # the one divided by: max(sd, min_sigma)
    first: int  # index in the series of the baseline's first and last interval
    last: int


@dataclass(frozen=True)
class Statistic:
    """One EARS statistic at the last interval of a series, with what it was computed from."""

    method: str
    value: float
    threshold: float
    count: int
    baseline: Baseline

    @property
    def alarm(self) -> bool:
        return self.value > self.threshold

    @property
    def limit(self) -> float:
        """The count the current interval would need to exceed for C1/C2 to alarm: mean + threshold × sigma."""
        return self.baseline.mean + self.threshold * self.baseline.sigma


def baseline(counts: Sequence[int], *, at: int, guard: int, window: int = BASELINE,
             min_sigma: float = DEFAULT_MIN_SIGMA) -> Baseline | None:
    """The baseline of interval `at`: `window` intervals ending `guard` + 1 before it; None with too little history."""
    last = at - guard - 1
    first = last - window + 1
    if first < 0 or at >= len(counts):
        return None
    values = [float(v) for v in counts[first: last + 1]]
    mean = sum(values) / window
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (window - 1))
    return Baseline(mean=mean, sd=sd, sigma=max(sd, min_sigma), first=first, last=last)


def _standardized(counts: Sequence[int], at: int, guard: int, min_sigma: float) -> tuple[float, Baseline] | None:
    base = baseline(counts, at=at, guard=guard, min_sigma=min_sigma)
    if base is None:
        return None
    return (counts[at] - base.mean) / base.sigma, base


def c1(counts: Sequence[int], *, threshold: float = C1_THRESHOLD,
       min_sigma: float = DEFAULT_MIN_SIGMA) -> Statistic | None:
    at = len(counts) - 1
    found = _standardized(counts, at, 0, min_sigma)
    if found is None:
        return None
    return Statistic("C1", found[0], threshold, int(counts[at]), found[1])


def c2_at(counts: Sequence[int], at: int, min_sigma: float = DEFAULT_MIN_SIGMA) -> tuple[float, Baseline] | None:
    return _standardized(counts, at, GUARD_BAND, min_sigma)


def c2(counts: Sequence[int], *, threshold: float = C2_THRESHOLD,
       min_sigma: float = DEFAULT_MIN_SIGMA) -> Statistic | None:
    at = len(counts) - 1
    found = c2_at(counts, at, min_sigma)
    if found is None:
        return None
    return Statistic("C2", found[0], threshold, int(counts[at]), found[1])


def c3(counts: Sequence[int], *, threshold: float = C3_THRESHOLD,
       min_sigma: float = DEFAULT_MIN_SIGMA) -> Statistic | None:
    """C3 at the last interval; needs the C2 of the last three, hence 12 intervals."""
    at = len(counts) - 1
    parts = [c2_at(counts, i, min_sigma) for i in (at - 2, at - 1, at)]
    if any(p is None for p in parts) or at < 2:
        return None
    value = sum(max(0.0, p[0] - 1.0) for p in parts if p is not None)
    current = parts[-1]
    assert current is not None
    return Statistic("C3", value, threshold, int(counts[at]), current[1])

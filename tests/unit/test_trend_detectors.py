"""EARS C1, C2, C3 and the CUSUM (handlers/trends) against numbers worked out by hand from their definitions.

Each expected value below was computed on paper from the published formulas (Hutwagner et al. 2003; Fricker et al.
2008; Montgomery's tabular CUSUM), not by running the code: mean and sample standard deviation (divisor 6) of the
baseline, then (count - mean) / sd.
"""

from __future__ import annotations

import pytest

from pingan.handlers.trends.cusum import cusum, cusum_series
from pingan.handlers.trends.ears import c1, c2, c3

APPROX = {"abs": 1e-4}


def test_c1_baseline_is_the_seven_intervals_just_before_today() -> None:
    # baseline 2,4,3,5,1,3,3: mean 21/7 = 3; squared deviations 1+1+0+4+4+0+0 = 10; sd = sqrt(10/6) = 1.290994
    # C1 = (9 - 3) / 1.290994 = 4.647580 > 3: an alarm
    stat = c1([2, 4, 3, 5, 1, 3, 3, 9])
    assert stat is not None
    assert stat.baseline.mean == pytest.approx(3.0)
    assert stat.baseline.sd == pytest.approx(1.290994, **APPROX)
    assert stat.value == pytest.approx(4.647580, **APPROX)
    assert stat.alarm and stat.threshold == 3.0
    assert (stat.baseline.first, stat.baseline.last) == (0, 6)


def test_c2_skips_a_guard_band_of_two_intervals() -> None:
    series = [2, 4, 3, 5, 1, 3, 3, 6, 7, 9]
    # C2's baseline is t-9..t-3 = 2,4,3,5,1,3,3 (mean 3, sd 1.290994): C2 = 6 / 1.290994 = 4.647580, an alarm
    stat = c2(series)
    assert stat is not None and stat.alarm
    assert stat.value == pytest.approx(4.647580, **APPROX)
    assert (stat.baseline.first, stat.baseline.last) == (0, 6)
    # C1's baseline has taken in the rise: 3,5,1,3,3,6,7, mean 28/7 = 4, squared deviations 1+1+9+1+1+4+9 = 26,
    # sd = sqrt(26/6) = 2.081666; C1 = (9 - 4) / 2.081666 = 2.401922, no alarm. This is what the guard band is for.
    early = c1(series)
    assert early is not None and not early.alarm
    assert early.value == pytest.approx(2.401922, **APPROX)


def test_c3_sums_the_last_three_c2_statistics_excess_over_one() -> None:
    series = [2, 4, 3, 5, 1, 3, 3, 3, 3, 5, 6, 7]  # t = 11
    # C2(9):  baseline 2,4,3,5,1,3,3: mean 3, sd 1.290994;         (5 - 3) / 1.290994 = 1.549193 -> excess 0.549193
    # C2(10): baseline 4,3,5,1,3,3,3: mean 22/7 = 3.142857, squared deviations sum 8.857143, sd sqrt(8.857143/6)
    #         = 1.214986;                                         (6 - 3.142857) / 1.214986 = 2.351588 -> 1.351588
    # C2(11): baseline 3,5,1,3,3,3,3: mean 3, sd sqrt(8/6) = 1.154701; (7 - 3) / 1.154701 = 3.464102 -> 2.464102
    # C3 = 0.549193 + 1.351588 + 2.464102 = 4.364883 > 2: an alarm
    stat = c3(series)
    assert stat is not None and stat.alarm and stat.threshold == 2.0
    assert stat.value == pytest.approx(4.364883, **APPROX)
    # a C2 below 1 adds nothing: C2(9) of 3 instead of 5 is (3 - 3) / sd = 0
    calmer = c3([2, 4, 3, 5, 1, 3, 3, 3, 3, 3, 6, 7])
    assert calmer is not None
    assert calmer.value == pytest.approx(1.351588 + 2.464102, **APPROX)


def test_flat_baseline_uses_the_standard_deviation_floor_of_one_report() -> None:
    # all-zero week: sd 0, divided by the floor 1.0; 4 reports score 4 (> 3), 3 reports score exactly 3 (not > 3)
    four = c1([0, 0, 0, 0, 0, 0, 0, 4])
    three = c1([0, 0, 0, 0, 0, 0, 0, 3])
    assert four is not None and three is not None
    assert four.baseline.sd == 0.0 and four.baseline.sigma == 1.0
    assert four.value == 4.0 and four.alarm
    assert three.value == 3.0 and not three.alarm
    assert four.limit == 3.0  # the count to exceed: mean 0 + 3 x 1
    # a lower floor is the caller's choice: 0.5 doubles the statistic
    half = c1([0, 0, 0, 0, 0, 0, 0, 3], min_sigma=0.5)
    assert half is not None and half.value == 6.0


def test_too_short_a_history_gives_no_statistic() -> None:
    assert c1([1, 2, 3, 4, 5, 6, 7]) is None  # 7 values: no baseline before the 7th
    assert c2([1] * 9) is None
    assert c3([1] * 11) is None
    assert c1([1] * 8) is not None and c2([1] * 10) is not None and c3([1] * 12) is not None


# Montgomery, Introduction to Statistical Quality Control (6th ed.), Example 9.1 / Table 9.1-9.2: 30 observations,
# the first 20 from N(10, 1), the last 10 from N(11, 1); mu0 = 10, sigma = 1, K = 0.5, H = 5.
MONTGOMERY_X = [9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34, 9.03, 11.47, 10.51, 9.40, 10.08,
                9.37, 10.62, 10.31, 8.52, 10.84, 10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52]
# C+_i = max(0, x_i - 10.5 + C+_{i-1}), as Table 9.2 lists it
MONTGOMERY_C_PLUS = [0, 0, 0, 1.16, 2.82, 2.50, 0.04, 1.00, 0, 0, 0, 0.97, 0.98, 0, 0, 0, 0.12, 0, 0, 0.34,
                     0.74, 0, 1.79, 2.79, 2.89, 3.47, 3.35, 4.47, 5.28]


def test_cusum_follows_montgomerys_worked_example() -> None:
    steps = cusum([x - 10.0 for x in MONTGOMERY_X], k=0.5, h=5.0)
    assert [round(s.value, 2) for s in steps[:29]] == pytest.approx(MONTGOMERY_C_PLUS, abs=0.006)
    # first alarm at sample 29 (5.28 > H = 5), as in the book; none before it
    assert [i + 1 for i, s in enumerate(steps) if s.alarm] == [29]
    # the book's chart runs on (C+_30 = 5.30); ours resets after the alarm: 0 + 10.52 - 10.5 = 0.02
    assert steps[29].value == pytest.approx(0.02, abs=1e-9)


def test_cusum_on_standardized_counts_with_a_sliding_baseline() -> None:
    counts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 1, 2]
    # z from a C2-like baseline (7 intervals, guard band 2), sd floored at 1:
    # t=9..11: baseline all zero, z = 2, 2, 1 -> S = 1.5, 3.0, 3.5 (k = 0.5, h = 4: no alarm)
    # t=12: baseline 0,0,0,0,0,0,2: mean 2/7 = 0.285714, sd 0.755929 < 1 -> sigma 1; z = 1.714286;
    #       S = 3.5 + 1.714286 - 0.5 = 4.714286 > 4: an alarm
    values = [cusum_series(counts[:n]) for n in (10, 11, 12, 13)]
    assert [round(v.value, 6) for v in values if v] == [1.5, 3.0, 3.5, 4.714286]
    assert [v.alarm for v in values if v] == [False, False, False, True]
    last = values[-1]
    assert last is not None and last.baseline.mean == pytest.approx(0.285714, **APPROX)
    assert cusum_series([0] * 9) is None

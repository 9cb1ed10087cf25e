"""Trend early warning (issue 18): EARS C1, C2, C3 and the CUSUM side by side on a simulated year of daily counts.

Run by hand: `python bench/trends.py` (seeded: the same seed prints the same table; about 20 s of CPU).

The simulation, per community and year:
- daily report counts ~ Poisson(level × weekday factor), levels 0.5, 2, 5 and 10 reports a day (a quiet community to
  a busy one), weekday factors Mon..Sun 1.2, 1.1, 1.0, 1.0, 1.0, 0.8, 0.7 (hotlines are busier early in the week,
  quieter at weekends; the factors average 0.971);
- outbreaks, one per simulated year so they never overlap, starting on a random day after a 30-day run-in: extra
  reports ~ Poisson(profile), where the profile's peak is `size` standard deviations of the daily count
  (size × sqrt(level)): small 1.5, medium 3, large 6; shapes `spike` (the peak for 1 day), `plateau` (3 days) and
  `ramp` (7 days rising linearly to the peak: peak/7, 2·peak/7, …, peak);
- an outbreak is detected when the detector alarms on any day of it; the delay is the first alarm's day minus the
  outbreak's first day (0: the same day);
- false alarms: the alarms on the same years without an outbreak, per 1,000 daily intervals.

The detectors are the shipped ones (pingan.handlers.trends), standard-deviation floor 1 report unless a row says
otherwise; `min_count` is the shipped rules' guard (no alarm on fewer reports than that in the interval).
"""

from __future__ import annotations

import argparse
import math
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pingan.handlers.trends.cusum import cusum, standardized
from pingan.handlers.trends.ears import c1, c2, c3

LEVELS = (0.5, 2.0, 5.0, 10.0)
WEEKDAY = (1.2, 1.1, 1.0, 1.0, 1.0, 0.8, 0.7)
SIZES = {"small": 1.5, "medium": 3.0, "large": 6.0}
SHAPES = {"spike": [1.0], "plateau": [1.0, 1.0, 1.0], "ramp": [i / 7 for i in range(1, 8)]}
DAYS = 365
RUN_IN = 30


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method for small means, a normal approximation above 30 (never reached here)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def year(rng: random.Random, level: float) -> list[int]:
    return [poisson(rng, level * WEEKDAY[d % 7]) for d in range(DAYS)]


@dataclass(frozen=True)
class Config:
    name: str
    threshold: str
    alarms: Callable[[Sequence[int]], list[bool]]  # one flag per day of the series


def ears(method: Callable[..., object], threshold: float, min_sigma: float = 1.0,
         min_count: int = 1) -> Callable[[Sequence[int]], list[bool]]:
    def run(counts: Sequence[int]) -> list[bool]:
        out = []
        for t in range(len(counts)):
            stat = method(counts[max(0, t - 11): t + 1], threshold=threshold, min_sigma=min_sigma)
            out.append(bool(stat is not None and stat.alarm and counts[t] >= min_count))  # type: ignore[attr-defined]
        return out
    return run


def cusum_run(k: float, h: float, min_count: int = 1) -> Callable[[Sequence[int]], list[bool]]:
    def run(counts: Sequence[int]) -> list[bool]:
        zs = standardized(counts)
        steps = cusum([z for z, _ in zs], k=k, h=h)
        lead = len(counts) - len(steps)
        return [False] * lead + [s.alarm and counts[lead + i] >= min_count for i, s in enumerate(steps)]
    return run


CONFIGS = [
    Config("C1", "> 3", ears(c1, 3.0)),
    Config("C2", "> 3", ears(c2, 3.0)),
    Config("C2", "> 3, sd floor 0.5", ears(c2, 3.0, min_sigma=0.5)),
    Config("C2", "> 2.5", ears(c2, 2.5)),
    Config("C3", "> 2", ears(c3, 2.0)),
    Config("C3", "> 3", ears(c3, 3.0)),
    Config("CUSUM", "k 0.5, h 3", cusum_run(0.5, 3.0)),
    Config("CUSUM", "k 0.5, h 4", cusum_run(0.5, 4.0)),
    Config("CUSUM", "k 0.5, h 5", cusum_run(0.5, 5.0)),
    Config("CUSUM", "k 1, h 2", cusum_run(1.0, 2.0)),
]


@dataclass
class Tally:
    found: dict[str, list[int]] = field(default_factory=dict)  # key -> [detected, total]
    delays: list[int] = field(default_factory=list)
    false_alarms: dict[float, list[int]] = field(default_factory=dict)  # level -> [alarms, intervals]

    def hit(self, keys: Sequence[str], delay: int | None) -> None:
        for key in keys:
            cell = self.found.setdefault(key, [0, 0])
            cell[1] += 1
            cell[0] += delay is not None
        if delay is not None:
            self.delays.append(delay)

    def share(self, key: str) -> float:
        detected, total = self.found.get(key, [0, 0])
        return detected / total if total else float("nan")

    def fa_per_1000(self, level: float | None = None) -> float:
        cells = [self.false_alarms[level]] if level is not None else list(self.false_alarms.values())
        alarms, intervals = sum(c[0] for c in cells), sum(c[1] for c in cells)
        return 1000 * alarms / intervals if intervals else float("nan")


def simulate(seed: int, years: int) -> dict[int, Tally]:
    rng = random.Random(seed)
    tallies = {i: Tally() for i in range(len(CONFIGS))}
    for level in LEVELS:
        for _ in range(years):
            clean = year(rng, level)
            for i, config in enumerate(CONFIGS):
                flags = config.alarms(clean)[RUN_IN:]
                tallies[i].false_alarms.setdefault(level, [0, 0])
                tallies[i].false_alarms[level][0] += sum(flags)
                tallies[i].false_alarms[level][1] += len(flags)
            for shape, profile in SHAPES.items():
                for size, sd in SIZES.items():
                    start = rng.randrange(RUN_IN + 12, DAYS - len(profile))
                    counts = list(clean)
                    peak = sd * math.sqrt(level)
                    for j, part in enumerate(profile):
                        counts[start + j] += poisson(rng, peak * part)
                    for i, config in enumerate(CONFIGS):
                        flags = config.alarms(counts)
                        days = [d - start for d in range(start, start + len(profile)) if flags[d]]
                        tallies[i].hit(("all", size, shape), days[0] if days else None)
    return tallies


def table(tallies: dict[int, Tally]) -> str:
    head = ("| detector | threshold | detected | small | medium | large | spike | plateau | ramp | median delay "
            "| false alarms / 1,000 | at 0.5/day | at 10/day |")
    rows = [head, "|" + "---|" * 13]
    for i, config in enumerate(CONFIGS):
        t = tallies[i]
        delay = f"{statistics.median(t.delays):.1f}" if t.delays else "-"
        shares = [f"{100 * t.share(k):.0f}%" for k in ("all", *SIZES, *SHAPES)]
        false_alarms = f"**{t.fa_per_1000():.1f}** | {t.fa_per_1000(0.5):.1f} | {t.fa_per_1000(10.0):.1f}"
        rows.append(f"| {config.name} | {config.threshold} | **{shares[0]}** | " + " | ".join(shares[1:])
                    + f" | {delay} | {false_alarms} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--years", type=int, default=25, help="simulated years per baseline level (default 25)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    tallies = simulate(args.seed, args.years)
    outbreaks = len(LEVELS) * args.years * len(SIZES) * len(SHAPES)
    intervals = len(LEVELS) * args.years * (DAYS - RUN_IN)
    print(f"command: python bench/trends.py {shlex.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"{outbreaks} outbreaks; {intervals:,} outbreak-free daily intervals for false alarms; "
          f"levels {', '.join(str(v) for v in LEVELS)} reports/day; seed {args.seed}; "
          f"{time.perf_counter() - began:.1f} s")
    print()
    print(table(tallies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

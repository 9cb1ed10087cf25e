"""Plan matching cost against the number of plans: µs per match at 10, 100, 1,000 and 10,000 plans.

Run by hand: `python bench/match.py`. The plans are synthetic (each with its own hazard, spread over every
category and subtype); the incidents hit plans, miss them, and fall back to the shipped district set.
"""

import argparse
import platform
import random
import shlex
import sys
import time
from datetime import UTC, datetime

from common import write_json

from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.matching import match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.plans import PLANS_DIR
from pingan.schemas.incident import Incident
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY

CELLS = [(c, s) for c, subs in SUBTYPES_BY_CATEGORY.items() for s in sorted(subs)]
T0 = datetime(2026, 11, 25, tzinfo=UTC)


def synthetic_plan(i: int) -> Plan:
    category, subtype = CELLS[i % len(CELLS)]
    return Plan.model_validate({
        "id": f"p{i:05d}", "version": 1, "title": {"zh": f"预案{i}"}, "owner": "emergency", "status": "approved",
        "applies_to": {"category": category.value, "subtypes": [subtype.value], "hazards": [f"hazard-{i}"]},
        "levels": [{"grade": g, "response_level": f"{g}级响应", "notify": [
            {"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"], "template": {"zh": "{title}"}}]}
            for g in ("I", "II", "III", "IV")],
    })


def incidents(n_plans: int, count: int, rng: random.Random) -> list[Incident]:
    out = []
    for k in range(count):
        i = rng.randrange(n_plans)
        category, subtype = CELLS[i % len(CELLS)]
        hazard = f"hazard-{i}" if k % 2 == 0 else None  # half hit a synthetic plan, half fall back
        out.append(Incident(id=f"INC-{k}", dedup_key="k", received_at=T0, category=category, subtype=subtype,
                            hazard=hazard, grade=rng.choice(["I", "II", "III", "IV"]), title="bench"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--matches", type=int, default=20000)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (for run_all.py)")
    args = parser.parse_args()
    rows = []
    shipped = list(load_plans(PLANS_DIR))
    all_plans = [synthetic_plan(i) for i in range(max(int(s) for s in args.sizes.split(",")))]
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {args.matches} matches per size")
    print(f"command: python bench/match.py --sizes {args.sizes} --matches {args.matches}")
    print(f"{'plans':>8} {'index keys':>10} {'build ms':>9} {'µs/match':>9} {'hit rate':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(size)
        started = time.perf_counter()
        planset = PlanSet.of(all_plans[:size] + shipped)
        build_ms = (time.perf_counter() - started) * 1000
        sample = incidents(size, 2000, rng)
        hits = sum(match_plan(planset, inc).plan is not None for inc in sample)
        rounds = max(1, args.matches // len(sample))
        started = time.perf_counter()
        for _ in range(rounds):
            for inc in sample:
                match_plan(planset, inc)
        per_match_us = (time.perf_counter() - started) / (rounds * len(sample)) * 1e6
        print(f"{size:>8} {len(planset.index):>10} {build_ms:>9.1f} {per_match_us:>9.2f} {hits / len(sample):>8.0%}")
        rows.append({"plans": size, "shipped_plans": len(shipped), "index_keys": len(planset.index),
                     "build_ms": build_ms, "us_per_match": per_match_us, "hit_rate": hits / len(sample),
                     "matches": rounds * len(sample)})
    write_json(args.json, {"bench": "match", "command": shlex.join(["python", *sys.argv]), "sizes": rows})


if __name__ == "__main__":
    main()

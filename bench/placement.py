"""Placement cost against the number of grids: µs per report at 50, 500, 5,000 and 20,000 grids (issue 18: under
50 µs per report at 5,000 grids).

Run by hand: `python bench/placement.py`. The district is synthetic: one district and one town over a box of about
60 × 45 km, cut into communities (a 10 × 5 grid of boxes), each cut into equal grids, so the grids tile the box like
the shipped file's do. Reports are JSON reports with a random point in the box (a few per cent outside it); each
is placed by `Placer.place` exactly as triage does (the point query, the path, the Placement model). Also timed:
the point lookup alone, the index build, and, on the shipped district, a report placed by a place name in its text.
Times are the bench process's CPU time (time.process_time), the median of --repeats runs.
"""

import argparse
import platform
import random
import statistics
import sys
import time

from common import write_json

from pingan.handlers.incidents.placement import Placer
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import District, DistrictArea, district_from_geojson
from pingan.schemas.incident import IncidentReport

X0, Y0, X1, Y1 = 113.30, 22.10, 113.90, 22.50  # the box, lon/lat
COMMUNITIES = (10, 5)


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[list[tuple[float, float]]]]:
    return [[[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]]


def synthetic(grids: int) -> District:
    """A district whose communities are cut into about `grids` grids in all (a square number per community)."""
    cols, rows = COMMUNITIES
    per_side = max(1, round((grids / (cols * rows)) ** 0.5))
    areas = [DistrictArea(code="D", level="district", polygons=box(X0, Y0, X1, Y1)),
             DistrictArea(code="T", level="town", parent="D", polygons=box(X0, Y0, X1, Y1))]
    w, h = (X1 - X0) / cols, (Y1 - Y0) / rows
    for c in range(cols):
        for r in range(rows):
            code = f"C{c:02d}{r:02d}"
            cx, cy = X0 + c * w, Y0 + r * h
            areas.append(DistrictArea(code=code, level="community", parent="T", name_zh=f"社区{code}",
                                      polygons=box(cx, cy, cx + w, cy + h)))
            gw, gh = w / per_side, h / per_side
            for i in range(per_side):
                for j in range(per_side):
                    gx, gy = cx + i * gw, cy + j * gh
                    areas.append(DistrictArea(code=f"{code}G{i:02d}{j:02d}", level="grid", parent=code,
                                              name_zh=f"网格{code}-{i}-{j}", polygons=box(gx, gy, gx + gw, gy + gh)))
    return District(name="synthetic", areas=areas)


def reports(n: int, rng: random.Random) -> list[IncidentReport]:
    pad = 0.02  # a few per cent of the points fall outside: they are placed too (district only)
    return [IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title="bench",
                           location={"lat": rng.uniform(Y0 - pad, Y1 + pad), "lon": rng.uniform(X0 - pad, X1 + pad)})
            for _ in range(n)]


def per_call_us(fn, items, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """The median over `repeats` runs of the mean CPU µs per item: the process's own CPU time, so that other
    processes on a shared machine do not count (their cache pressure still does); the median resists bursts."""
    runs = []
    for _ in range(repeats):
        t = time.process_time()
        for item in items:
            fn(item)
        runs.append((time.process_time() - t) / len(items) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,500,5000,20000", help="grids")
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    rng = random.Random(18)
    batch = reports(args.reports, rng)
    points = [(r.location.lat, r.location.lon) for r in batch]
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {args.reports} reports per size, "
          f"median of {args.repeats} runs")
    print(f"{'grids':>7} {'areas':>7} {'build ms':>9} {'µs/report':>10} {'µs/point':>9} {'in a grid':>10}")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        district = synthetic(size)
        t = time.perf_counter()
        placer = Placer(district)
        build_ms = (time.perf_counter() - t) * 1e3
        grids = sum(a.level == "grid" for a in district.areas)
        us = per_call_us(placer.place, batch, args.repeats)
        point_us = per_call_us(lambda p: placer.point_area(*p), points, args.repeats)  # noqa: B023
        in_grid = sum(1 for r in batch[:2000] if (placer.place(r).deepest or r).level == "grid") / 2000  # type: ignore[union-attr]
        rows.append({"grids": grids, "areas": len(district.areas), "build_ms": round(build_ms, 1),
                     "us_per_report": round(us, 1), "us_per_point": round(point_us, 1), "in_grid": in_grid})
        print(f"{grids:>7} {len(district.areas):>7} {build_ms:>9.1f} {us:>10.1f} {point_us:>9.1f} {in_grid:>10.1%}")
    shipped = Placer(district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE)))
    texts = [IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title=t) for t in
             ("唐绍仪故居旁边着火了", "鸡山村这边冒烟", "smoke near Beisha market", "路上有车着火")] * 500
    name_us = per_call_us(shipped.place, texts, args.repeats)
    print(f"shipped district ({len(shipped.district.areas)} areas), by place name in a short text: "
          f"{name_us:.1f} µs/report")
    write_json(args.json, {"bench": "placement", "argv": sys.argv[1:], "rows": rows, "name_us": round(name_us, 1)})


if __name__ == "__main__":
    main()

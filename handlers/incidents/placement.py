"""Placement: which area of the district's hierarchy a report concerns, as deep as it can say (issue 18). Pure: the
Placer is built once from the district file and the directory (core/bootstrap.py) and handed to triage, which
calls `place` for every report and keeps the answer in `location.placement` (schemas/areas.py Placement).

In order, the first that says anything decides:
1. coordinates - a CAP alert's shapes (each polygon or circle, clipped to the district: the deepest area holding all
   of what lies inside; a point, a circle of radius 0, is a point), else the report's `location.lat/lon` (a JSON
   report's, the centre the CAP adapter took), else an Alertmanager label pair (lat/lon, latitude/longitude).
   A point is looked up with shapely's STRtree (one query, then the deepest hit), so it stays fast at thousands of
   grids (bench/placement.py). Coordinates outside the district place the report with the district only,
   `outside: true`, and the evidence says so: they are not overruled by a name in the text.
2. the report's own area code when it is one of ours (`location.area_code`: an Alertmanager label, a CAP geocode,
   the SMS adapter's reading) and a known place name or alias in its text (title, description, area names; the
   rules of schemas/adapters/areas.py AreaTable: a name inside a longer one does not count, the deeper area
   wins): the deeper of the two, the code on a tie.
3. the caller's registered area: a person of the directory whose SMS or voice number sent it and who has an
   `area` (a grid officer's grid); also when the text names an area that holds it (an officer naming their own
   community is placed in their grid).
Otherwise the report is `unplaced`, with an empty path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import shapely
from shapely import STRtree
from shapely.errors import GEOSException
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from pingan.handlers.incidents.areas import _circle, _shape
from pingan.schemas.adapters.areas import area_table
from pingan.schemas.areas import District, DistrictArea, PlacedArea, Placement
from pingan.schemas.directory import Person
from pingan.schemas.incident import IncidentReport

LAT_LON_LABELS = (("lat", "lon"), ("latitude", "longitude"), ("lat", "lng"))
COVERED = 0.99  # an area holds a shape when it covers this share of it (edges are drawn by hand, not surveyed)
TEXT_CHARS = 2_000  # of the description searched for place names: where a caller says where, they say it early


class Placer:
    """The district's areas made ready once: each area's path, one STRtree over every polygon, the name table and
    the callers' registered areas. `place` is then cheap for every report."""

    def __init__(self, district: District, people: Iterable[Person] = ()) -> None:
        self.district = district
        self._by_code = {a.code: a for a in district.areas}
        # A community's grid officers are its grids' (a report placed no deeper than the community reaches them all);
        # wider areas have none of their own: a town-wide incident names its people by roster or department.
        self._officers = {a.code: list(a.officers) for a in district.areas}
        for grid in (a for a in district.areas if a.level == "grid" and a.parent in self._by_code):
            if self._by_code[grid.parent].level == "community":  # type: ignore[index]
                self._officers[grid.parent] = list(dict.fromkeys(  # type: ignore[index]
                    [*self._officers[grid.parent], *grid.officers]))  # type: ignore[index]
        self._paths = {a.code: self._path_of(a) for a in district.areas}
        self._depth = {code: len(path) for code, path in self._paths.items()}
        roots = [a for a in district.areas if a.parent not in self._by_code]
        # The widest area: the district level if the file has one, else the first area without a parent of ours.
        self.root = next((a for a in roots if a.level == "district"), roots[0] if roots else district.areas[0])
        shaped = [(a, _shape(a)) for a in district.areas if a.polygons]
        self._codes = [a.code for a, _ in shaped]
        self._shapes = [s for _, s in shaped]
        self._tree = STRtree(self._shapes)
        self._whole = shapely.union_all([s for a, s in shaped if a.parent not in self._by_code]) \
            if shaped else Polygon()
        self._names = area_table(district)
        self._callers: dict[str, Person] = {}
        for person in people:
            if person.area and person.area in self._by_code:
                for number in (person.contacts.sms, person.contacts.voice):
                    if number:
                        self._callers.setdefault(number, person)

    def _path_of(self, area: DistrictArea) -> list[PlacedArea]:
        path, seen, step = [], set(), area
        while step is not None and step.code not in seen:
            seen.add(step.code)
            # Who answers for each area, as the file says when the report is placed: plans reach them through
            # {grid_officer: incident} and {area_leader: LEVEL} (handlers/plans/directory.py).
            path.append(PlacedArea(code=step.code, level=step.level, name_zh=step.name_zh, name_en=step.name_en,
                                   officers=self._officers[step.code][:50], leaders=step.leaders))
            step = self._by_code.get(step.parent) if step.parent else None
        return path[::-1]

    def _label(self, code: str) -> str:
        area = self._by_code[code]
        return f"{area.name_zh or area.name_en or code} ({code})"

    def _placed(self, code: str, method: str, evidence: str) -> Placement:
        # Built from values made here (the paths validated once, at load): no need to validate them per report.
        return Placement.model_construct(path=list(self._paths[code]), method=method, evidence=evidence[:500],
                                         outside=False)

    def _outside(self, what: str) -> Placement:
        return Placement.model_construct(
            path=list(self._paths[self.root.code]), method="coordinates", outside=True,
            evidence=f"{what} lies outside {self._label(self.root.code)}: kept with the district only"[:500])

    # ── coordinates ──────────────────────────────────────────────────────────
    def point_area(self, lat: float, lon: float) -> str | None:
        """The code of the deepest area holding the point, or None outside every area (the hot path)."""
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        # The deepest; on a shared edge the smaller code, so the answer does not depend on the tree's order.
        return min((self._codes[i] for i in hits), key=lambda c: (-self._depth[c], c))

    def _by_point(self, lat: float, lon: float, what: str) -> Placement:
        code = self.point_area(lat, lon)
        if code is None:
            return self._outside(f"{what} {lat:.5f},{lon:.5f}")
        return self._placed(code, "coordinates", f"{what} {lat:.5f},{lon:.5f} is in {self._label(code)}")

    def _holding(self, shape: BaseGeometry) -> str | None:
        """The deepest area that holds (COVERED) the part of `shape` inside the district, or None if none is."""
        inside = shape.intersection(self._whole)
        if inside.is_empty:
            return None
        if inside.area == 0:  # a point or a line: the area it touches deepest
            hits = [self._codes[i] for i in self._tree.query(inside, predicate="intersects")]
        else:
            hits = [self._codes[i] for i in self._tree.query(inside)
                    if self._shapes[i].intersection(inside).area >= COVERED * inside.area]
        return min(hits, key=lambda c: (-self._depth[c], c)) if hits else None

    def _by_shapes(self, report: IncidentReport) -> Placement | None:
        shapes: list[tuple[str, BaseGeometry]] = []
        for area in report.areas:
            for ring in area.polygons:
                try:
                    shapes.append(("CAP polygon", shapely.make_valid(Polygon([(lon, lat) for lat, lon in ring]))))
                except (ValueError, GEOSException):
                    continue
            shapes += [("CAP circle", _circle(c.lat, c.lon, c.radius_km)) for c in area.circles]
        if not shapes:
            return None
        try:
            held = [(kind, self._holding(shape)) for kind, shape in shapes]
        except GEOSException:
            return None  # a shape GEOS cannot intersect: the adapter's centre (location) still places it
        codes = [c for _, c in held if c is not None]
        if not codes:
            return self._outside(f"every CAP shape ({len(shapes)})")
        common = self._common(codes)
        kind = next(kind for kind, c in held if c is not None)
        what = f"the {kind}'s part inside the district is" if len(codes) == 1 else \
            f"the parts of {len(codes)} CAP shapes inside the district are"
        return self._placed(common, "coordinates", f"{what} in {self._label(common)}"
                            + (f"; {len(shapes) - len(codes)} lie outside it" if len(codes) < len(shapes) else ""))

    def _common(self, codes: list[str]) -> str:
        """The deepest area on every one of the codes' paths."""
        paths = [self._paths[c] for c in codes]
        common = paths[0][0].code
        for level in zip(*paths, strict=False):
            if len({a.code for a in level}) != 1:
                break
            common = level[0].code
        return common

    @staticmethod
    def _label_point(labels: dict[str, str]) -> tuple[float, float, str] | None:
        for lat_key, lon_key in LAT_LON_LABELS:
            try:
                lat, lon = float(labels[lat_key]), float(labels[lon_key])
            except (KeyError, ValueError):
                continue
            if math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon, f"labels {lat_key}/{lon_key}"
        return None

    # ── names, codes, callers ────────────────────────────────────────────────
    def _by_text(self, report: IncidentReport) -> Placement | None:
        code = report.location.area_code
        by_code = code if code in self._by_code else None
        own = "\n".join(filter(None, (report.title, report.description[:TEXT_CHARS],
                                      *(a.name for a in report.areas[:20] if a.name))))
        text = f"{own}\n{report.location.area_name or ''}"
        named = self._names.match(text)
        by_name = named.code if named is not None else None
        # The same area both ways (the SMS adapter reads the code from the same names): the name is the evidence.
        if by_code and (by_name is None or (by_code != by_name and self._depth[by_code] >= self._depth[by_name])):
            return self._placed(by_code, "area_code", f"the report's area code is {self._label(by_code)}")
        if by_name is not None and named is not None:
            # The words the sender used, rather than the area name an adapter wrote beside them.
            terms = (named.name, *named.aliases)
            term = next((t for f in (own.casefold(), text.casefold()) for t in terms if t.casefold() in f), named.name)
            return self._placed(by_name, "place_name", f"{term!r} in the text names {self._label(by_name)}")
        return None

    def _by_caller(self, report: IncidentReport) -> Placement | None:
        phone = report.reporter.phone if report.reporter else None
        person = self._callers.get(phone) if phone else None
        if person is None or person.area is None:
            return None
        # The person's id, not the number: the evidence is shown to people who may not read phone numbers.
        return self._placed(person.area, "caller", f"the caller, {person.id}, is registered in "
                                                   f"{self._label(person.area)}")

    def place(self, report: IncidentReport) -> Placement:
        placed = self._by_shapes(report)
        if placed is None and report.location.lat is not None and report.location.lon is not None:
            placed = self._by_point(report.location.lat, report.location.lon, "point")
        if placed is None and (found := self._label_point(report.labels)) is not None:
            placed = self._by_point(found[0], found[1], f"point ({found[2]})")
        if placed is None:
            named, caller = self._by_text(report), self._by_caller(report)
            if named is None:
                placed = caller
            elif caller is not None and named.deepest in caller.path[:-1]:
                # A grid officer naming their own community is in their grid: the deeper reading of the same words.
                placed = caller.model_copy(update={"evidence": f"{named.evidence}; {caller.evidence}"[:500]})
            else:
                placed = named
        return placed or Placement(method="unplaced", evidence="no coordinates, no area code or place name of ours "
                                                                "in the report, and the caller has no registered area")


def placed_report(report: IncidentReport, placer: Placer) -> IncidentReport:
    """The report with `location.placement` set (replacing any a source sent)."""
    location = report.location.model_copy(update={"placement": placer.place(report)})
    return report.model_copy(update={"location": location})

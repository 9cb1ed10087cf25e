"""The area rules of `pingan plans lint`: the district's hierarchy in plans_dir/areas/*.geojson (district ->
sub-district -> community -> grid, schemas/areas.py describes the format) and its grid officers.

Each problem names the file, the feature's line (json keeps no positions: the line of its `"type": "Feature"`),
the feature (`features[i]`, its code and name) and what is wrong. ERRORS (load_plans refuses the set):

  json       the file is not JSON, not a FeatureCollection, or a feature is not an object with properties.
  geometry   not a Polygon or MultiPolygon; a ring with fewer than 4 positions or whose last position does not
             repeat its first (not closed); a position that is not [lon, lat] in range; a polygon that crosses
             itself (shapely's validity, with the reason).
  codes      a feature without a code; a code used twice (in any of the files), naming the first.
  parents    a parent code that is no feature of the files and no `enclosing` area; a parent chain that loops.
  overlap    two siblings (features with the same parent) whose polygons overlap (sharing an edge is fine).
  within     a feature that does not lie within its parent (a grid outside its community), with the share outside.
  officers   a grid officer or an area leader who is not a person of the directory; a person whose registered
             `area` is no code.
WARNINGS: a grid that names no officer; a level other than district, town, sub_district, community, grid.

Overlap and within are measured in square degrees with a tolerance (OVERLAP_TOLERANCE, a few square metres), so
shared edges rounded differently in two features do not count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely import STRtree
from shapely.errors import GEOSException
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from pingan.handlers.plans.problems import PlanProblem, Severity
from pingan.handlers.plans.reader import PlansRead

AREAS_SUBDIR = "areas"
LEVELS = ("district", "town", "sub_district", "community", "grid")
OVERLAP_TOLERANCE = 1e-9  # square degrees: about 12 m² at 22°N
_FEATURE = re.compile(r'"type"\s*:\s*"Feature"')


@dataclass
class _Feature:
    file: str
    index: int
    line: int
    props: dict[str, Any]
    shape: BaseGeometry | None = None

    @property
    def code(self) -> str:
        return str(self.props.get("code") or "")

    def label(self) -> str:
        name = self.props.get("name_zh") or self.props.get("name_en") or ""
        return f"features[{self.index}] ({' '.join(filter(None, (self.code, str(name))))})".replace(" ()", "")


class _AreaLint:
    def __init__(self, read: PlansRead) -> None:
        self.read = read
        self.errors: list[PlanProblem] = []
        self.warnings: list[PlanProblem] = []
        self.features: list[_Feature] = []
        self.enclosing: set[str] = set()

    def error(self, f: _Feature, message: str) -> None:
        self.errors.append(PlanProblem(f.file, f.line, 1, f"{f.label()}: {message}"))

    def warn(self, f: _Feature, message: str) -> None:
        self.warnings.append(PlanProblem(f.file, f.line, 1, f"{f.label()}: {message}", Severity.warning))

    def run(self, files: list[Path]) -> None:
        for path in files:
            self._read(path)
        by_code = self._codes()
        self._parents(by_code)
        self._siblings()
        self._within(by_code)
        self._officers(by_code)

    def _read(self, path: Path) -> None:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self.errors.append(PlanProblem(name, getattr(exc, "lineno", 0) or 0, getattr(exc, "colno", 1) or 1,
                                           f"not a readable JSON file: {exc}"))
            return
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
                or not isinstance(data.get("features"), list):
            self.errors.append(PlanProblem(name, 1, 1, "not a GeoJSON FeatureCollection with a features list"))
            return
        self.enclosing |= {str(e.get("code")) for e in data.get("enclosing") or [] if isinstance(e, dict)}
        lines = [text.count("\n", 0, m.start()) + 1 for m in _FEATURE.finditer(text)]
        for i, raw in enumerate(data["features"]):
            feature = _Feature(name, i, lines[i] if i < len(lines) else 1,
                               raw.get("properties") if isinstance(raw, dict) else None)  # type: ignore[arg-type]
            if not isinstance(feature.props, dict):
                feature.props = {}
                self.error(feature, "a feature must be an object with properties")
                continue
            if feature.props.get("level") not in LEVELS:
                self.warn(feature, f"level {feature.props.get('level')!r} is none of {', '.join(LEVELS)}")
            feature.shape = self._shape(feature, raw.get("geometry"))
            self.features.append(feature)

    def _shape(self, f: _Feature, geometry: Any) -> BaseGeometry | None:
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if kind not in ("Polygon", "MultiPolygon") or not isinstance(coordinates, list) or not coordinates:
            self.error(f, f"geometry must be a Polygon or MultiPolygon with coordinates (got {kind!r})")
            return None
        polygons, shapes = (coordinates if kind == "MultiPolygon" else [coordinates]), []
        for p, rings in enumerate(polygons):
            where = f"polygon {p} " if kind == "MultiPolygon" else ""
            good = []
            for r, ring in enumerate(rings if isinstance(rings, list) else []):
                points = ring if isinstance(ring, list) else []
                if not all(isinstance(q, list) and len(q) >= 2 and all(isinstance(v, int | float) for v in q[:2])
                           for q in points):
                    self.error(f, f"{where}ring {r}: every position must be [lon, lat] numbers")
                elif not all(-180 <= q[0] <= 180 and -90 <= q[1] <= 90 for q in points):
                    self.error(f, f"{where}ring {r}: a position is out of range (GeoJSON is [lon, lat] in degrees)")
                elif len(points) < 4:
                    self.error(f, f"{where}ring {r} has {len(points)} positions: a ring needs at least 4")
                elif points[0][:2] != points[-1][:2]:
                    self.error(f, f"{where}ring {r} is not closed: its last position {points[-1][:2]} does not "
                                  f"repeat its first {points[0][:2]}")
                else:
                    good.append([tuple(q[:2]) for q in points])
            if good and len(good) == len(rings):
                shape = Polygon(good[0], good[1:])
                if not shape.is_valid:
                    self.error(f, f"{where}is not a valid polygon: {explain_validity(shape)}")
                    continue
                shapes.append(shape)
        return shapely.union_all(shapes) if shapes and len(shapes) == len(polygons) else None

    def _codes(self) -> dict[str, _Feature]:
        by_code: dict[str, _Feature] = {}
        for f in self.features:
            if not f.code:
                self.error(f, "the feature has no code")
            elif f.code in by_code:
                first = by_code[f.code]
                self.error(f, f"code {f.code} is used twice (first at {first.file}:{first.line}, {first.label()})")
            else:
                by_code[f.code] = f
        return by_code

    def _parents(self, by_code: dict[str, _Feature]) -> None:
        for f in self.features:
            parent = f.props.get("parent")
            if parent is None or parent in by_code or parent in self.enclosing:
                seen, step = {f.code}, by_code.get(parent) if parent else None
                while step is not None:
                    if step.code in seen:
                        self.error(f, f"its parent chain loops back at {step.code}")
                        break
                    seen.add(step.code)
                    step = by_code.get(step.props.get("parent"))
                continue
            self.error(f, f"parent {parent} is no area of the files and no enclosing area")

    def _siblings(self) -> None:
        groups: dict[str, list[_Feature]] = {}
        for f in self.features:
            if f.shape is not None and f.code:
                groups.setdefault(str(f.props.get("parent")), []).append(f)
        for members in groups.values():
            tree = STRtree([m.shape for m in members])
            for i, a in enumerate(members):
                for j in tree.query(a.shape):
                    b = members[int(j)]
                    if j <= i:
                        continue
                    try:
                        shared = a.shape.intersection(b.shape).area  # type: ignore[union-attr]
                    except GEOSException:
                        continue
                    if shared > OVERLAP_TOLERANCE:
                        self.error(b, f"overlaps its sibling {a.code} ({a.file}:{a.line}) by "
                                      f"{shared / b.shape.area:.1%} of its area")  # type: ignore[union-attr]

    def _within(self, by_code: dict[str, _Feature]) -> None:
        for f in self.features:
            parent = by_code.get(f.props.get("parent"))
            if f.shape is None or parent is None or parent.shape is None or f.shape.area == 0:
                continue
            outside = f.shape.difference(parent.shape).area
            if outside > OVERLAP_TOLERANCE:
                kind = f.props.get("level") or "area"
                name = parent.props.get("name_zh") or parent.props.get("name_en") or ""
                self.error(f, f"the {kind} does not lie within its parent {parent.code} {name}".rstrip() +
                           f": {outside / f.shape.area:.1%} of it is outside")

    def _officers(self, by_code: dict[str, _Feature]) -> None:
        people = {p.id for p in self.read.directory.people}
        for f in self.features:
            officers, leaders = f.props.get("officers") or [], f.props.get("leaders") or []
            if not isinstance(officers, list) or not isinstance(leaders, list):
                self.error(f, "officers and leaders must be lists of directory person ids")
                continue
            for who, ids in (("grid officer", officers), ("leader", leaders)):
                for ident in ids:
                    if ident not in people:
                        self.error(f, f"{who} {ident!r} is no person of the directory "
                                      f"({self.read.directory_path / 'directory'})")
            if f.props.get("level") == "grid" and not officers:
                self.warn(f, "the grid names no grid officer (officers: [person id, …])")
        if not by_code:
            return
        by_id = {p.id: p for p in self.read.directory.people}
        for (kind, ident), entry in self.read.entries.items():
            person = by_id.get(ident) if kind == "people" else None
            if person is not None and person.area and person.area not in by_code:
                self.errors.append(entry.doc.problem((*entry.loc, "area"), f"area: {person.area} is no area of "
                                                     f"{Path(self.read.directory_path) / AREAS_SUBDIR}"))


def area_files(read: PlansRead) -> list[Path]:
    folder = Path(read.directory_path) / AREAS_SUBDIR
    return sorted(folder.glob("*.geojson")) if folder.is_dir() else []


def area_problems(read: PlansRead) -> tuple[list[PlanProblem], list[PlanProblem]]:
    """(errors, warnings) of the area rules over plans_dir/areas/*.geojson; none when there is no such file."""
    files = area_files(read)
    if not files:
        return [], []
    lint = _AreaLint(read)
    lint.run(files)
    return lint.errors, lint.warnings

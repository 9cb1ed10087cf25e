"""Areas: those an alert says it concerns (AlertArea, from a CAP <area>), and the district this office covers
(District, read from a GeoJSON file such as plans/areas/tangjiawan.geojson).

The pure check that compares them is handlers/incidents/areas.py; the file is read at the edges (core/bootstrap.py).

District file format: a GeoJSON FeatureCollection (RFC 7946, coordinates [lon, lat]). Each Feature is one area of
the district with a Polygon or MultiPolygon geometry and the properties `code` (administrative code, matched by
prefix against an alert's geocodes), `name_zh`, `name_en` and `aliases` (names an alert's <areaDesc> may use),
and optionally `level` (district, town, community, grid: the hierarchy), `parent` (the code of the area it lies in)
and, for a grid, `officers` (its grid officers' directory ids), for any area `leaders` (a community's leaders).
One foreign member at the top level, `enclosing`, lists the areas that contain the whole district (its city,
province…) as `{"code": …, "names": […]}`: an alert for Zhuhai city names no place of the town, yet it concerns
the town. `pingan plans lint` checks the hierarchy
(handlers/plans/lint_areas.py); Placement is where triage put a report in it (handlers/incidents/placement.py).
"""

import json
import re
from typing import Any

from pydantic import Field, ValidationError, field_validator

from pingan.schemas.common import Model

MAX_ALERT_AREAS = 500  # per message; a message with more is treated as naming no area (inside: see handlers)


class Geocode(Model):
    name: str = Field(default="", max_length=100, description="CAP valueName, e.g. SAME, UGC, 行政区划代码")
    value: str = Field(min_length=1, max_length=100)


class Circle(Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(ge=0, le=20_100)  # half the Earth's circumference: anything larger is everywhere


class AlertArea(Model):
    """One area an alert concerns, as its sender described it (a CAP <area>)."""

    name: str | None = Field(default=None, max_length=2000, description="CAP areaDesc")
    geocodes: list[Geocode] = Field(default_factory=list, max_length=2000)
    polygons: list[list[tuple[float, float]]] = Field(
        default_factory=list, max_length=500, description="Closed rings of (lat, lon) points, CAP's order")
    circles: list[Circle] = Field(default_factory=list, max_length=500)

    def is_empty(self) -> bool:
        return not (self.name or self.geocodes or self.polygons or self.circles)


Ring = list[tuple[float, float]]  # (lon, lat) points, GeoJSON's order


class DistrictArea(Model):
    code: str = Field(min_length=1, max_length=32)
    name_zh: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    level: str | None = Field(default=None, max_length=32)
    parent: str | None = Field(default=None, max_length=32)
    aliases: list[str] = Field(default_factory=list)
    officers: list[str] = Field(default_factory=list, description="A grid's officers (网格员): directory person ids")
    leaders: list[str] = Field(default_factory=list, description="The area's leaders (a community's 社区书记): "
                                                                 "directory person ids")
    polygons: list[list[Ring]] = Field(default_factory=list, description="Each polygon: its shell, then its holes")

    def names(self) -> list[str]:
        return [n for n in (self.name_zh, self.name_en, *self.aliases) if n and n.strip()]


class PlacedArea(Model):
    """One area of a placement's path: its code, level and names, as the district file has them."""

    code: str = Field(min_length=1, max_length=32)
    level: str | None = Field(default=None, max_length=32)
    name_zh: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    officers: list[str] = Field(default_factory=list, max_length=50, description="A grid's officers, when placed")
    leaders: list[str] = Field(default_factory=list, max_length=50, description="The area's leaders, when placed")


PLACEMENT_METHODS = ("coordinates", "area_code", "place_name", "caller", "unplaced")


class Placement(Model):
    """Where triage placed a report in the district's hierarchy (handlers/incidents/placement.py): the path from the
    district down to the deepest area it could (district -> sub-district -> community -> grid), how, and why."""

    path: list[PlacedArea] = Field(default_factory=list, max_length=10, description="Widest first")
    method: str = Field(pattern="^(" + "|".join(PLACEMENT_METHODS) + ")$", description=(
        "coordinates (point in polygon, or the area holding a CAP shape), area_code (a code of ours the report "
        "gave), place_name (a name or alias found in its text), caller (the reporter's registered area), "
        "unplaced"))
    evidence: str = Field(default="", max_length=500, description="What placed it, for the duty room")
    outside: bool = Field(default=False, description="Its coordinates lie outside the district: path is the "
                                                     "district only")

    def at(self, level: str) -> PlacedArea | None:
        """The area of that level on the path (e.g. "community"), or None."""
        return next((a for a in self.path if a.level == level), None)

    @property
    def deepest(self) -> PlacedArea | None:
        return self.path[-1] if self.path else None


class EnclosingArea(Model):
    """An area that contains the whole district (its city, its province): an alert for it concerns the district."""

    code: str | None = Field(default=None, min_length=1, max_length=32)
    names: list[str] = Field(default_factory=list)


class District(Model):
    name: str = Field(min_length=1, max_length=500)
    areas: list[DistrictArea] = Field(min_length=1)
    enclosing: list[EnclosingArea] = Field(default_factory=list)
    source: str = Field(default="", description="The file it was read from, for messages")

    @field_validator("areas")
    @classmethod
    def _codes_unique(cls, areas: list[DistrictArea]) -> list[DistrictArea]:
        seen: set[str] = set()
        for area in areas:
            if area.code in seen:
                raise ValueError(f"area code {area.code!r} appears twice")
            seen.add(area.code)
        return areas


class DistrictFileError(ValueError):
    """A district file that cannot be used, said as `file:line: field: what is wrong`."""

    def __init__(self, source: str, message: str, field: str | None = None, line: int | None = None) -> None:
        self.source, self.field, self.line = source, field, line
        where = source + (f":{line}" if line else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


_FEATURE = re.compile(r'"type"\s*:\s*"Feature"')


def _feature_lines(text: str) -> list[int]:
    """The line of each Feature in the file, in order (json keeps no positions; this is good enough to point at)."""
    return [text.count("\n", 0, m.start()) + 1 for m in _FEATURE.finditer(text)]


def _polygons(geometry: Any) -> list[list[Ring]]:
    if not isinstance(geometry, dict):
        raise ValueError("geometry must be a Polygon or MultiPolygon object")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        polygons = coordinates
    else:
        raise ValueError(f"geometry type {kind!r} is not Polygon or MultiPolygon")
    if not isinstance(polygons, list) or not polygons:
        raise ValueError("coordinates are missing")
    out: list[list[Ring]] = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise ValueError("a polygon needs at least its outer ring")
        rings: list[Ring] = []
        for ring in polygon:
            points = [(float(p[0]), float(p[1])) for p in ring] if isinstance(ring, list) else []
            if len(points) < 4 or points[0] != points[-1]:
                raise ValueError("a ring needs at least 4 [lon, lat] positions, the last repeating the first")
            if not all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in points):
                raise ValueError("a position is out of range: GeoJSON is [lon, lat] in decimal degrees")
            rings.append(points)
        out.append(rings)
    return out


def district_from_geojson(text: str, source: str) -> District:
    """The district described by a GeoJSON FeatureCollection (see the module docstring); DistrictFileError if not."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DistrictFileError(source, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise DistrictFileError(source, "must be a GeoJSON FeatureCollection", field="type", line=1)
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise DistrictFileError(source, "a district needs at least one Feature", field="features", line=1)
    lines = _feature_lines(text)
    areas = []
    for i, feature in enumerate(features):
        line = lines[i] if i < len(lines) else None
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            raise DistrictFileError(source, "a Feature needs properties", field=f"features[{i}].properties", line=line)
        try:
            polygons = _polygons(feature.get("geometry"))
        except (ValueError, TypeError, IndexError) as exc:
            raise DistrictFileError(source, str(exc), field=f"features[{i}].geometry", line=line) from None
        try:
            areas.append(DistrictArea(
                code=props.get("code"), name_zh=props.get("name_zh"), name_en=props.get("name_en"),
                level=props.get("level"), parent=props.get("parent"), aliases=props.get("aliases") or [],
                officers=props.get("officers") or [], leaders=props.get("leaders") or [],
                polygons=polygons))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = f"features[{i}].properties." + ".".join(str(p) for p in first["loc"])
            raise DistrictFileError(source, first["msg"], field=field, line=line) from None
    try:
        return District(name=str(data.get("name") or source), areas=areas, enclosing=data.get("enclosing") or [],
                        source=source)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DistrictFileError(source, first["msg"], field=".".join(str(p) for p in first["loc"])) from None

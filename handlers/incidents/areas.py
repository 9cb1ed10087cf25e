"""Does a warning concern our district? Pure: the alert's areas and the district's in, a verdict out.

A CAP alert names its areas four ways, and any one that meets the district makes it ours:
- a geocode matches an area's code by prefix, either way round (an alert for 440402, the town's district, covers
  the town 440402100; one for 440402100001 is in it). Chinese administrative codes padded with zeros to 6, 9 or
  12 digits (440400, 440402000000) are read as the level they name, so a city's padded code still prefixes ours;
- a polygon or a circle intersects an area's polygon (shapely; a circle is drawn on the sphere's local scale);
- its <areaDesc> contains an area's name or alias (唐家湾, 淇澳岛, Tangjiawan; Latin names as whole words), or one
  of its places (split at 、，,;; and spaces) is an area enclosing the district (珠海市, 珠海市香洲区, 广东省全境):
  an alert for the whole city names no street of ours. An enclosing name only counts when it is the whole place,
  so "广东省湛江市" (a city of our province, not ours) does not.
An alert that names no area at all counts as inside, and so does a shape that cannot be read: a warning that
might be ours must never be dropped as "outside" for want of information. Only an alert whose every area was read
and none meets the district is outside: it is recorded, and activates no plan.

The district is loaded at the edges (core/bootstrap.py, PINGAN_DISTRICT_AREAS); PINGAN_DISTRICT_AREA_CHECK=false
turns the check off.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

import shapely
from shapely.affinity import scale
from shapely.errors import GEOSException
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.areas import AlertArea, District, DistrictArea
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import Source

ACTOR = "system:response"
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_PLACE_SEPARATORS = re.compile(r"[、，,;；/|\s]+")
# What may follow an enclosing area's name and still mean all of it: "珠海市全境", "广东省沿海".
_WHOLE_WORDS = ("全境", "全市", "全区", "全省", "全域", "境内", "沿海地区", "沿海", "地区", "市区", "各区", "各镇")
_ADMIN_LEVELS = (2, 4, 6, 9, 12)  # province, city, county, town, community: GB/T 2260 and the statistics codes
KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON_AT_EQUATOR = 111.320
MAX_SHOWN = 5


@dataclass(frozen=True)
class AreaVerdict:
    inside: bool
    reason: str  # one sentence for the log
    matched: list[str] = field(default_factory=list)  # what met the district, e.g. "geocode 440402 ~ 唐家湾镇"


def admin_code(code: str) -> str:
    """A code as the level it names: trailing zero groups of a padded administrative code dropped (440400 -> 4404,
    440402000000 -> 440402). Codes that are not 6, 9 or 12 digits are compared as they are."""
    code = code.strip()
    if not code.isdigit() or len(code) not in (6, 9, 12):
        return code
    for level in _ADMIN_LEVELS:
        if level <= len(code) and set(code[level:]) <= {"0"}:
            return code[:level]
    return code


def _codes_meet(a: str, b: str) -> bool:
    shorter = min(len(a), len(b))
    return shorter >= 2 and (a.startswith(b) or b.startswith(a))


def _name_pattern(names: list[str]) -> re.Pattern[str] | None:
    parts = sorted({n.strip().casefold() for n in names if n and n.strip()}, key=len, reverse=True)
    if not parts:
        return None
    # CJK has no word boundaries; a Latin name must be a whole word ("Tangjia" is not in "Tangjiawan Road").
    return re.compile("|".join(re.escape(p) if _CJK.search(p) else rf"(?<!\w){re.escape(p)}(?!\w)" for p in parts))


def _shape(area: DistrictArea) -> BaseGeometry:
    shapes = [Polygon(rings[0], rings[1:]) for rings in area.polygons]
    return shapely.make_valid(shapely.union_all(shapes)) if shapes else Polygon()


def _circle(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    if radius_km <= 0:
        return Point(lon, lat)
    # Degrees of longitude shrink with latitude; near the poles any circle spans every longitude.
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    return scale(Point(lon, lat).buffer(1.0, quad_segs=32), xfact=radius_km / (KM_PER_DEGREE_LON_AT_EQUATOR * cos_lat),
                 yfact=radius_km / KM_PER_DEGREE_LAT, origin=(lon, lat))


class DistrictCheck:
    """The district's areas made ready once (shapes, codes, names); `verdict` is then cheap for every alert."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.label = district.areas[0].name_zh or district.areas[0].name_en or district.name
        self._areas = [(a, _shape(a), admin_code(a.code)) for a in district.areas]
        self._whole = prep(shapely.union_all([s for _, s, _ in self._areas]))
        self._names = [(a, _name_pattern(a.names())) for a in district.areas]
        self._enclosing_names = sorted({n.strip().casefold() for e in district.enclosing for n in e.names
                                        if n.strip()}, key=len, reverse=True)

    def verdict(self, areas: list[AlertArea]) -> AreaVerdict:
        areas = [a for a in areas if not a.is_empty()]
        if not areas:
            return AreaVerdict(True, f"the alert names no area: counted as inside {self.label}")
        matched: list[str] = []
        unreadable: list[str] = []
        for area in areas:
            matched += self._by_code(area) + self._by_shape(area, unreadable) + self._by_name(area)
        if matched or unreadable:
            shown = list(dict.fromkeys(matched + unreadable))
            why = "; ".join(shown[:MAX_SHOWN]) + (f"; {len(shown) - MAX_SHOWN} more" if len(shown) > MAX_SHOWN else "")
            return AreaVerdict(True, f"inside {self.label}: {why}", shown)
        described = "; ".join(filter(None, (a.name for a in areas[:3]))) or "areas given by geocode or shape"
        return AreaVerdict(False, f"outside our area: none of its {len(areas)} area(s) ({described[:300]}) meets "
                                  f"{self.label} by geocode, shape or name")

    def _by_code(self, area: AlertArea) -> list[str]:
        out = []
        for geocode in area.geocodes:
            code = admin_code(geocode.value)
            # An enclosing area's code needs no rule of its own: it prefixes the district's codes already.
            hit = next((a for a, _, ours in self._areas if _codes_meet(code, ours)), None)
            if hit is not None:
                out.append(f"geocode {geocode.value} ~ {hit.code} {hit.name_zh or hit.name_en or ''}".rstrip())
        return out

    def _by_shape(self, area: AlertArea, unreadable: list[str]) -> list[str]:
        shapes: list[tuple[str, BaseGeometry]] = []
        for ring in area.polygons:
            try:
                shapes.append(("polygon", shapely.make_valid(Polygon([(lon, lat) for lat, lon in ring]))))
            except (ValueError, GEOSException):
                unreadable.append("a polygon that could not be read (counted as inside)")
        shapes += [("circle", _circle(c.lat, c.lon, c.radius_km)) for c in area.circles]
        out = []
        for kind, shape in shapes:
            if self._whole.intersects(shape):
                hits = [a for a, s, _ in self._areas if s.intersects(shape)]
                finest = [a for a in hits if a.level not in ("district", "town")] or hits
                out.append(f"{kind} meets " + ", ".join(a.name_zh or a.name_en or a.code for a in finest[:3]))
        return out

    def _by_name(self, area: AlertArea) -> list[str]:
        if not area.name:
            return []
        text = area.name.casefold()
        for district_area, pattern in self._names:
            if pattern is not None and (m := pattern.search(text)):
                return [f"area name {area.name[:80]!r} names {m.group(0)} "
                        f"({district_area.name_zh or district_area.name_en or district_area.code})"]
        for place in _PLACE_SEPARATORS.split(text):
            if place and self._encloses(place):
                return [f"area name {area.name[:80]!r}: {place} encloses {self.label}"]
        return []

    def _encloses(self, place: str) -> bool:
        """Is this place, all of it, made of enclosing areas' names ("珠海市香洲区", "guangdong")?"""
        rest, consumed = place, False
        while rest:
            name = next((n for n in self._enclosing_names if rest.startswith(n)), None)
            if name is None:
                break
            rest, consumed = rest[len(name):].lstrip(" -·"), True
        return consumed and (not rest or rest in _WHOLE_WORDS)


def needs_area_check(incident: Incident) -> bool:
    """Warnings are checked: every CAP alert (one without areas is inside, and the log says so) and any incident
    that carries areas. A citizen's report is about where they are; it is never checked."""
    return incident.source is Source.cap or bool(incident.areas)


def area_draft(incident: Incident, verdict: AreaVerdict, now: datetime) -> ActionDraft:
    """The log entry of the check, either way: inside or outside, and what matched."""
    details: dict[str, object] = {"area": "inside" if verdict.inside else "outside", "reason": verdict.reason}
    if verdict.matched:
        details["matched"] = verdict.matched[:20]
    return ActionDraft(incident_id=incident.id, at=now, actor=ACTOR, kind=ActionKind.area_checked, details=details,
                       idempotency_key=f"area_checked:{incident.id}")

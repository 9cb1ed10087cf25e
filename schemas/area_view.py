"""What `GET /v1/areas`, `GET /v1/areas/{code}`, `pingan areas` and the console's areas pages show of the district's
hierarchy (issue 18, part 5): each area with its parent and children, and one area with its open incidents, its
report and incident counts and its trend series and warnings. The hierarchy itself is `schemas/areas.py`'s
District (read from plans/areas/); this module only shapes it for reading.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from pingan.schemas.areas import District, district_from_geojson
from pingan.schemas.common import Model
from pingan.schemas.incident import Incident

LEVELS = ("district", "town", "community", "grid")  # widest first: the order a listing shows them in


class AreaNode(Model):
    code: str
    level: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    parent: str | None = None
    children: list[str] = Field(default_factory=list, description="The codes of the areas directly inside it")
    officers: list[str] = Field(default_factory=list, description="A grid's officers (网格员): directory ids")
    leaders: list[str] = Field(default_factory=list, description="The area's leaders: directory ids")

    def label(self, lang: str = "zh") -> str:
        first, second = (self.name_zh, self.name_en) if lang == "zh" else (self.name_en, self.name_zh)
        return first or second or self.code


class AreaList(Model):
    district: str
    items: list[AreaNode]


class CategoryCount(Model):
    category: str
    reports: int = 0
    incidents: int = 0


class WindowCounts(Model):
    """Reports (every report triage counted, the trend stage's) and incidents (received in the window, placed in
    the area) of the last 24 hours or 7 days."""

    window: str = Field(description="24h or 7d")
    since: datetime
    reports: int = 0
    incidents: int = 0
    by_category: list[CategoryCount] = Field(default_factory=list)


class SeriesOut(Model):
    """One trend series of the area as `pingan trends` shows it: its recent counts and its detector now."""

    status: str
    level: str
    category: str
    subtype: str = ""
    interval: str
    counts: list[int] = Field(description="Oldest first; the last is the current interval")
    rule: str | None = None
    detector: str | None = None
    baseline_mean: float | None = None
    baseline_sd: float | None = None
    statistic: float | None = None
    threshold: float | None = None
    alarm: bool = False


class AlarmOut(Model):
    """A trend warning raised for the area: the incident it raised and the latest alarm's evidence."""

    status: str
    key: str
    incident_id: str
    raised_at: datetime
    last_alarm_at: datetime
    alarms: int
    evidence: dict[str, Any] = Field(default_factory=dict)


class AreaDetail(Model):
    area: AreaNode
    path: list[AreaNode] = Field(description="Widest first, ending with the area itself")
    children: list[AreaNode]
    exercise: bool = Field(description="Whether exercise incidents and reports are counted in (?exercise=true)")
    open_incidents: list[Incident] = Field(description="Most severe first, then the longest waiting; at most 200")
    open_total: int = Field(ge=0, description="How many open incidents the area holds (the list may be cut)")
    counts: list[WindowCounts]
    series: list[SeriesOut]
    alarms: list[AlarmOut]


def area_nodes(district: District) -> list[AreaNode]:
    """Every area of the district with its children's codes, widest level first, then by code."""
    children: dict[str, list[str]] = {}
    for a in district.areas:
        if a.parent:
            children.setdefault(a.parent, []).append(a.code)
    rank = {level: n for n, level in enumerate(LEVELS)}
    nodes = [AreaNode(code=a.code, level=a.level, name_zh=a.name_zh, name_en=a.name_en, parent=a.parent,
                      children=sorted(children.get(a.code, [])), officers=list(a.officers), leaders=list(a.leaders))
             for a in district.areas]
    return sorted(nodes, key=lambda n: (rank.get(n.level or "", len(LEVELS)), n.code))


def path_to(nodes: dict[str, AreaNode], code: str) -> list[AreaNode]:
    """The area and its ancestors, widest first (a cycle in a bad file stops at the first repeat)."""
    out: list[AreaNode] = []
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current in nodes and current not in seen:
        seen.add(current)
        out.append(nodes[current])
        current = nodes[current].parent
    return out[::-1]


@functools.lru_cache(maxsize=4)
def _nodes_of(path: str, mtime_ns: int) -> tuple[str, tuple[AreaNode, ...]]:
    district = district_from_geojson(Path(path).read_text(encoding="utf-8"), path)
    return district.name, tuple(area_nodes(district))


def district_nodes(path: Path) -> tuple[str, list[AreaNode]]:
    """The district file's name and areas, read once per version of the file (an edited file is read again).
    Raises OSError or schemas.areas.DistrictFileError when it cannot be used."""
    name, nodes = _nodes_of(str(path), path.stat().st_mtime_ns)
    return name, list(nodes)

"""A situation report's counts per area of the district's hierarchy (网格化, issue 18): incidents and their reports
per community, and per grid for the busiest communities, this period against the previous one. Pure.

The area comes from triage's placement path (`location.placement.path`: district → town → community → grid), so a
report placed by coordinates, by a place name or by its caller's registered area counts where it happened, whatever
free text its area name holds. An incident placed in no community (no placement, or only the district or town)
counts in the '-' row. Merged incidents are left out by the caller, as everywhere in the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pingan.schemas.areas import PlacedArea
from pingan.schemas.incident import Incident
from pingan.schemas.sitrep import AreaCount

NO_COMMUNITY = "-"
TOP_COMMUNITIES = 3  # communities whose grids the report lists


@dataclass
class _Tally:
    area: PlacedArea | None
    parent: str | None = None
    incidents: int = 0
    incidents_previous: int = 0
    reports: int = 0
    reports_previous: int = 0

    def add(self, incident: Incident, current: bool) -> None:
        if current:
            self.incidents += 1
            self.reports += incident.report_count
        else:
            self.incidents_previous += 1
            self.reports_previous += incident.report_count

    def model(self, code: str, level: str) -> AreaCount:
        a = self.area
        return AreaCount(code=code, level=level, name_zh=a.name_zh if a else None, name_en=a.name_en if a else None,
                         parent=self.parent, incidents=self.incidents, incidents_previous=self.incidents_previous,
                         reports=self.reports, reports_previous=self.reports_previous)

    def rank(self) -> tuple[int, int, int, int]:
        return (-self.incidents, -self.reports, -self.incidents_previous, -self.reports_previous)


def _placed(incident: Incident, level: str) -> PlacedArea | None:
    placement = incident.location.placement if incident.location else None
    return placement.at(level) if placement is not None else None


def area_counts(current: Iterable[Incident], previous: Iterable[Incident]) -> tuple[list[AreaCount], list[AreaCount]]:
    """(by community, by grid of the top TOP_COMMUNITIES communities)."""
    communities: dict[str, _Tally] = {}
    grids: dict[str, _Tally] = {}
    unplaced = _Tally(None)
    for incidents, is_current in ((current, True), (previous, False)):
        for incident in incidents:
            community = _placed(incident, "community")
            if community is None:
                unplaced.add(incident, is_current)
                continue
            communities.setdefault(community.code, _Tally(community)).add(incident, is_current)
            grid = _placed(incident, "grid")
            if grid is not None:
                grids.setdefault(grid.code, _Tally(grid, community.code)).add(incident, is_current)
    ranked = sorted(communities.items(), key=lambda kv: (*kv[1].rank(), kv[0]))
    by_community = [t.model(code, "community") for code, t in ranked]
    if unplaced.incidents or unplaced.incidents_previous:
        by_community.append(unplaced.model(NO_COMMUNITY, "none"))
    by_grid: list[AreaCount] = []
    for code, _ in ranked[:TOP_COMMUNITIES]:
        mine = sorted(((g, t) for g, t in grids.items() if t.parent == code), key=lambda kv: (*kv[1].rank(), kv[0]))
        by_grid += [t.model(g, "grid") for g, t in mine]
    return by_community, by_grid

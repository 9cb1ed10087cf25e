"""The situation report's counts per community and grid (handlers/sitreps/areas.py), by hand: the placement path
decides (not the area name), a placement that stops above the community counts as unplaced, and only the three
busiest communities list their grids. Pure."""

from datetime import UTC, datetime

from pingan.handlers.sitreps.areas import area_counts
from pingan.handlers.sitreps.render import summary_text
from pingan.schemas.areas import PlacedArea, Placement
from pingan.schemas.incident import Incident, Location

T = datetime(2026, 11, 23, 1, tzinfo=UTC)
TOWN = PlacedArea(code="440402100", level="town", name_zh="唐家湾镇")


def placed(community: str | None, grid: str | None = None, reports: int = 1, name: str = "别处") -> Incident:
    path = [TOWN]
    if community:
        path.append(PlacedArea(code=community, level="community", name_zh=f"社区{community[-1]}",
                               name_en=f"Community {community[-1]}"))
    if grid:
        path.append(PlacedArea(code=grid, level="grid", name_zh=f"网格{grid[-1]}"))
    return Incident(id=f"INC-{id(path)}", dedup_key="k", received_at=T, category="accident_disaster", subtype="fire",
                    grade="IV", title="t", report_count=reports,
                    location=Location(area_name=name, placement=Placement(path=path, method="coordinates")))


def test_counts_per_community_and_grid_of_the_busiest_three() -> None:
    c1, c2, c3, c4 = "440402100001", "440402100002", "440402100003", "440402100004"
    current = [placed(c1, c1 + "001", 3), placed(c1, c1 + "002"), placed(c2, c2 + "001", 2), placed(c3),
               placed(c4, c4 + "001"), placed(None), placed(None, reports=4)]
    previous = [placed(c1, c1 + "001"), placed(c4, c4 + "001"), placed(c4, c4 + "002")]
    by_community, by_grid = area_counts(current, previous)
    # c1: 2 incidents (4 reports) / 1 (1); c2 1 (2) / 0; c4 1 (1) / 2 (2); c3 1 (1) / 0; unplaced 2 (5) / 0
    assert [(a.code, a.incidents, a.incidents_previous, a.reports, a.reports_previous) for a in by_community] == [
        (c1, 2, 1, 4, 1), (c2, 1, 0, 2, 0), (c4, 1, 2, 1, 2), (c3, 1, 0, 1, 0), ("-", 2, 0, 5, 0)]
    # the grids of c1, c2 and c4 (the top three); c3 was placed in no grid anyway
    assert [(a.code, a.parent, a.incidents, a.incidents_previous, a.reports) for a in by_grid] == [
        (c1 + "001", c1, 1, 1, 3), (c1 + "002", c1, 1, 0, 1), (c2 + "001", c2, 1, 0, 2),
        (c4 + "001", c4, 1, 1, 1), (c4 + "002", c4, 0, 1, 0)]
    assert by_community[0].name_zh == "社区1" and by_community[-1].level == "none"


def test_nothing_placed_gives_only_the_unplaced_row_and_nothing_at_all_none() -> None:
    unplaced = Incident(id="INC-X", dedup_key="k", received_at=T, category="other", subtype="general", grade="IV",
                        title="t", location=Location(area_name="唐家湾"))
    assert [a.code for a in area_counts([unplaced], [])[0]] == ["-"]
    assert area_counts([], []) == ([], [])


def test_the_summary_names_the_busiest_community() -> None:
    from zoneinfo import ZoneInfo

    from pingan.handlers.sitreps.figures import SitrepRows, compute
    from pingan.handlers.sitreps.period import period_of

    period = period_of("day", now=datetime(2026, 11, 24, tzinfo=UTC), tz=ZoneInfo("Asia/Shanghai"),
                       since=datetime(2026, 11, 22, 16, tzinfo=UTC))  # local 11-23, with the incident at 09:00
    rows = SitrepRows(incidents=[placed("440402100001", reports=2)], exercise_excluded=0, timelines={}, ledger=[],
                      still_open=[])
    report = compute(period, rows, {}, as_of=datetime(2026, 11, 24, tzinfo=UTC))
    assert "按社区（网格化定位）: 社区1 1 (上期 0)" in summary_text(report, "zh")
    assert "By community (placed by triage): Community 1 1 (Previous 0)" in summary_text(report, "en")

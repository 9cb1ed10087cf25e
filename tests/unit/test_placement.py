"""Placement (handlers/incidents/placement.py) on the shipped district and directory: coordinates, CAP shapes,
Alertmanager labels, codes, place names, the caller's registered area; outside; and triage keeping it."""

from datetime import UTC, datetime, timedelta

import pytest

from pingan.handlers.incidents.correlation import areas_fit, best_fit
from pingan.handlers.incidents.placement import Placer, placed_report
from pingan.handlers.incidents.triage import triage
from pingan.handlers.plans.reader import read_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import District, DistrictArea, district_from_geojson
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport

DISTRICT = district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE))
PLACER = Placer(DISTRICT, read_plans(PLANS_DIR).directory.people)
QIAO, QIAO_5, QIAO_1 = "440402100009", "440402100009005", "440402100009001"
TANGJIA_2 = "440402100001002"


def report(**fields: object) -> IncidentReport:
    return IncidentReport(**{"category": "accident_disaster", "subtype": "fire", "grade": "IV", "title": "着火了",
                             **fields})


def codes(placement: object) -> list[str]:
    return [a.code for a in placement.path]  # type: ignore[attr-defined]


def test_a_json_point_is_placed_in_its_grid_with_the_whole_path() -> None:
    placed = PLACER.place(report(location={"lat": 22.43, "lon": 113.63}))
    assert codes(placed) == ["4404HT", "440402100", QIAO, QIAO_5]
    assert [a.level for a in placed.path] == ["district", "town", "community", "grid"]
    assert placed.method == "coordinates" and not placed.outside
    assert placed.evidence == "point 22.43000,113.63000 is in 淇澳社区第五网格 (440402100009005)"
    assert placed.at("community").name_zh == "淇澳社区" and placed.deepest.name_en == "Qi'ao Community Grid 5"


def test_a_point_outside_the_district_is_kept_with_the_district_only_and_says_so() -> None:
    placed = PLACER.place(report(location={"lat": 22.27, "lon": 113.57}, title="唐家市场着火"))  # Gongbei, not ours
    assert codes(placed) == ["4404HT"] and placed.outside and placed.method == "coordinates"
    assert placed.evidence == "point 22.27000,113.57000 lies outside 珠海高新区 (4404HT): kept with the district only"


def test_a_cap_polygon_inside_one_grid_is_placed_in_it_and_one_over_two_grids_in_their_community() -> None:
    small = [[(22.39, 113.61), (22.39, 113.62), (22.40, 113.62), (22.39, 113.61)]]
    placed = PLACER.place(report(areas=[{"polygons": small}], location={"lat": 22.43, "lon": 113.63}))
    assert codes(placed)[-1] == QIAO_1 and placed.method == "coordinates"  # the shape, not the adapter's centre
    assert placed.evidence == "the CAP polygon's part inside the district is in 淇澳社区第一网格 (440402100009001)"
    island = [[(22.40, 113.61), (22.40, 113.65), (22.44, 113.65), (22.44, 113.61), (22.40, 113.61)]]
    assert codes(PLACER.place(report(areas=[{"polygons": island}])))[-1] == QIAO


def test_a_cap_shape_reaching_outside_is_placed_by_its_part_inside() -> None:
    # From the sea east of Qi'ao island into its north-east grid: the part inside is in one grid.
    ring = [[(22.43, 113.655), (22.43, 113.70), (22.44, 113.70), (22.44, 113.655), (22.43, 113.655)]]
    assert codes(PLACER.place(report(areas=[{"polygons": ring}])))[-1] == "440402100009006"
    far = [[(22.0, 114.0), (22.0, 114.1), (22.1, 114.1), (22.0, 114.0)]]
    placed = PLACER.place(report(areas=[{"polygons": far}], title="淇澳岛"))
    assert codes(placed) == ["4404HT"] and placed.outside and "every CAP shape (1)" in placed.evidence


def test_a_cap_circle_and_a_point_circle() -> None:
    assert codes(PLACER.place(report(areas=[{"circles": [{"lat": 22.43, "lon": 113.63, "radius_km": 0}]}])))[-1] \
        == QIAO_5
    wide = PLACER.place(report(areas=[{"circles": [{"lat": 22.40, "lon": 113.58, "radius_km": 3}]}]))
    assert codes(wide) == ["4404HT", "440402100"]  # over several communities: the town holds it


def test_alertmanager_lat_lon_labels() -> None:
    placed = PLACER.place(report(labels={"latitude": "22.36", "longitude": "113.58"}))
    assert codes(placed)[-1] == "440402100001003" and "labels latitude/longitude" in placed.evidence
    assert PLACER.place(report(labels={"lat": "nan", "lon": "113.58"})).method == "unplaced"


@pytest.mark.parametrize(("title", "deepest", "method"), [
    ("鸡山村这边着火了", "440402100003", "place_name"),  # a community
    ("唐绍仪故居旁边冒烟", TANGJIA_2, "place_name"),  # a landmark of one grid
    ("淇澳社区第五网格有人晕倒", QIAO_5, "place_name"),  # the grid by name
    ("smoke near Beisha market", "440402100006", "place_name"),
    ("唐家湾大道积水", "440402100", "place_name"),  # the town's road, not the community 唐家
])
def test_place_names_in_the_text(title: str, deepest: str, method: str) -> None:
    placed = PLACER.place(report(title=title))
    assert placed.deepest.code == deepest and placed.method == method and not placed.outside


def test_an_area_code_of_ours_unless_the_text_names_a_deeper_place() -> None:
    assert PLACER.place(report(location={"area_code": QIAO})).method == "area_code"
    assert PLACER.place(report(location={"area_code": QIAO}, title="淇澳红树林起火")).deepest.code == QIAO_5
    assert PLACER.place(report(location={"area_code": "440402"})).method == "unplaced"  # Xiangzhou: not ours


def test_the_callers_registered_area_and_never_their_number() -> None:
    officer = next(p for p in read_plans(PLANS_DIR).directory.people if p.area == TANGJIA_2)
    placed = PLACER.place(report(title="有情况", reporter={"phone": officer.contacts.sms}))
    assert placed.method == "caller" and placed.deepest.code == TANGJIA_2
    assert officer.id in placed.evidence and officer.contacts.sms not in placed.evidence
    assert PLACER.place(report(title="有情况", reporter={"phone": "+12025550199"})).method == "unplaced"
    # Naming their own community: their grid, deeper; naming another place: that place.
    own = PLACER.place(report(title="唐家社区有情况", reporter={"phone": officer.contacts.sms}))
    assert own.deepest.code == TANGJIA_2 and own.method == "caller" and "'唐家社区' in the text" in own.evidence
    other = PLACER.place(report(title="鸡山社区有情况", reporter={"phone": officer.contacts.sms}))
    assert other.deepest.code == "440402100003" and other.method == "place_name"


def test_a_point_on_a_shared_edge_is_placed_the_same_way_every_time() -> None:
    boxes = {"A1": (0, 0, 1, 1), "A2": (1, 0, 2, 1)}
    areas = [DistrictArea(code="A", level="community", polygons=[[[(0, 0), (2, 0), (2, 1), (0, 1), (0, 0)]]])] + [
        DistrictArea(code=c, level="grid", parent="A",
                     polygons=[[[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]])
        for c, (x0, y0, x1, y1) in boxes.items()]
    placer = Placer(District(name="t", areas=areas))
    assert placer.point_area(0.5, 1.0) == "A1" and placer.point_area(0.5, 1.5) == "A2"
    assert placer.point_area(5, 5) is None


def test_triage_keeps_the_placement_and_logs_it_without_changing_the_key() -> None:
    at = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    event = RawEvent(event_id="e1", proposed_incident_id="INC-1", received_at=at,
                     report=report(location={"lat": 22.43, "lon": 113.63}))
    decision = triage(event, None, timedelta(hours=1), PLACER)
    assert codes(decision.incident.location.placement)[-1] == QIAO_5
    assert decision.incident.dedup_key == triage(event, None, timedelta(hours=1)).incident.dedup_key
    details = decision.actions[0].details
    assert details["area_code"] == QIAO_5 and details["placed_by"] == "coordinates"
    assert "outside_district" not in details
    # A source cannot place itself: triage's placement replaces what it sent.
    claimed = report(location={"placement": {"path": [{"code": "X"}], "method": "caller"}})
    forged = triage(event.model_copy(update={"report": claimed}), None, timedelta(hours=1), PLACER)
    assert forged.incident.location.placement.method == "unplaced"
    assert triage(event.model_copy(update={"report": claimed}), None, timedelta(hours=1)).incident.location \
        .placement is None  # without a placer too


def test_reports_placed_in_one_grid_fit_one_event_whatever_their_words() -> None:
    at = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    first = triage(RawEvent(event_id="e1", proposed_incident_id="INC-1", received_at=at,
                            report=report(title="仓库着火了", location={"lat": 22.43, "lon": 113.63})),
                   None, timedelta(hours=1), PLACER).incident

    def later(title: str, **location: object) -> IncidentReport:
        return placed_report(report(title=title, location=location), PLACER)

    near = later("好大的烟，消防车来了吗", lat=22.431, lon=113.632)  # the same grid, other words
    assert near.effective_dedup_key() != first.dedup_key
    assert best_fit(near, at + timedelta(minutes=5), [first], timedelta(hours=1)) is first
    assert best_fit(later("淇澳岛那边着火", area_code=QIAO), at, [first], timedelta(hours=1)) is first  # its community
    assert best_fit(later("着火了", lat=22.39, lon=113.61), at, [first], timedelta(hours=1)) is None  # another grid
    assert best_fit(later("着火了", lat=22.27, lon=113.57), at, [first], timedelta(hours=1)) is None  # outside
    assert areas_fit(report(title="着火了"), first) is False  # unplaced: the area codes decide, as before


def test_the_automatic_key_of_a_report_with_a_point_is_its_place_not_its_title() -> None:
    here, there = report(title="仓库起火", location={"lat": 22.43, "lon": 113.63}), \
        report(title="仓库起火", location={"lat": 22.39, "lon": 113.61})
    assert here.effective_dedup_key() != there.effective_dedup_key()  # one title, two places: two events
    assert here.effective_dedup_key() == report(title="冒烟了", location={"lat": 22.4301, "lon": 113.6302}) \
        .effective_dedup_key()  # a few metres apart, other words: one key
    assert report(title="仓库起火").effective_dedup_key() == report(title=" 仓库起火").effective_dedup_key()


def test_an_alertmanager_alert_with_lat_lon_labels_through_the_real_adapter() -> None:
    import json

    from pingan.schemas.adapters.alertmanager import parse_alertmanager

    alert = {"status": "firing", "labels": {"alertname": "WaterLevelHigh", "severity": "critical", "lat": "22.43",
                                            "lon": "113.63"},
             "annotations": {"summary": "淇澳水位站水位超警戒"}, "startsAt": "2026-12-05T08:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.example", "fingerprint": "f1"}
    body = {"version": "4", "groupKey": "g", "status": "firing", "receiver": "pingan", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example", "alerts": [alert]}
    [item] = parse_alertmanager(json.dumps(body).encode())
    placed = PLACER.place(item.report)
    assert placed.deepest.code == QIAO_5 and placed.method == "coordinates" and "labels lat/lon" in placed.evidence

"""The district check (issue #12): does a CAP alert's area meet the sample district, 唐家湾镇? By geocode prefix, by
polygon or circle (shapely), by name or alias, or by an area enclosing the district; an alert with no area is
inside. Real samples from other countries are outside. And the district file's own errors name file and line."""

import pytest

from pingan.handlers.incidents.areas import DistrictCheck, admin_code, area_draft, needs_area_check
from pingan.plans import PLANS_DIR
from pingan.schemas.action import ActionKind
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.areas import AlertArea, Circle, DistrictFileError, Geocode, district_from_geojson
from pingan.schemas.common import utcnow
from pingan.schemas.incident import Incident
from tests.fixtures.cap_chain import CAP_DIR, QIAO_AREA, cap_message

DISTRICT_FILE = PLANS_DIR / "areas" / "tangjiawan.geojson"
CHECK = DistrictCheck(district_from_geojson(DISTRICT_FILE.read_text(encoding="utf-8"), str(DISTRICT_FILE)))
needs_samples = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"CAP samples not found at {CAP_DIR}")


def verdict(**area: object):  # type: ignore[no-untyped-def]
    return CHECK.verdict([AlertArea(**area)])  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "level"), [("440400", "4404"), ("440402000000", "440402"), ("440402100", "440402100"),
                                             ("440000", "44"), ("1000512", "1000512"), ("MTZ009", "MTZ009")])
def test_padded_administrative_codes_are_read_as_their_level(code: str, level: str) -> None:
    assert admin_code(code) == level


@pytest.mark.parametrize("code", ["440402100", "440402100009", "440402", "440400", "4404", "440000",
                                  "440402100009001"])
def test_a_geocode_meets_the_district_by_prefix_either_way(code: str) -> None:
    result = verdict(geocodes=[Geocode(name="行政区划代码", value=code)])
    assert result.inside and "geocode" in result.reason


@pytest.mark.parametrize("code", ["440304", "006109", "044007", "1000512", "MTZ009", "4"])
def test_other_geocodes_do_not(code: str) -> None:
    assert not verdict(geocodes=[Geocode(name="SAME", value=code)]).inside


def test_a_polygon_over_qiao_island_meets_its_community() -> None:
    ring = [(22.40, 113.61), (22.40, 113.65), (22.44, 113.65), (22.44, 113.61), (22.40, 113.61)]
    result = verdict(polygons=[ring])
    assert result.inside and "淇澳社区" in result.reason


def test_a_polygon_elsewhere_does_not() -> None:
    shenzhen = [(22.50, 114.00), (22.50, 114.10), (22.60, 114.10), (22.60, 114.00), (22.50, 114.00)]
    assert not verdict(polygons=[shenzhen]).inside


def test_a_circle_reaching_into_the_district_meets_it_and_one_short_of_it_does_not() -> None:
    # From Zhuhai's city centre (22.27, 113.57), the town's southern edge (22.32) is some 5.5 km north.
    assert verdict(circles=[Circle(lat=22.27, lon=113.57, radius_km=8)]).inside
    assert not verdict(circles=[Circle(lat=22.27, lon=113.57, radius_km=3)]).inside
    assert verdict(circles=[Circle(lat=22.43, lon=113.63, radius_km=0)]).inside  # a point on Qi'ao island


@pytest.mark.parametrize("name", ["唐家湾镇", "珠海高新区唐家湾镇淇澳岛", "Tangjiawan Town", "Qi'ao Island",
                                  "珠海市", "珠海市香洲区", "广东省全境", "珠海市、中山市、江门市",
                                  "Guangdong Province"])
def test_names_and_aliases_and_enclosing_areas_meet_it(name: str) -> None:
    assert verdict(name=name).inside


@pytest.mark.parametrize("name", ["广东省湛江市", "深圳市南山区", "EXTREME NORTH CENTRAL TUOLUMNE COUNTY IN CALIFORNIA",
                                  "Tangjiagou village", "苗栗縣頭屋鄉"])
def test_other_names_do_not(name: str) -> None:
    assert not verdict(name=name).inside


def test_an_alert_with_no_area_counts_as_inside_and_says_so() -> None:
    result = CHECK.verdict([])
    assert result.inside and "names no area" in result.reason and "inside" in result.reason
    assert CHECK.verdict([AlertArea()]).inside


def test_outside_needs_every_area_to_miss() -> None:
    far = AlertArea(name="Essex County", geocodes=[Geocode(name="SAME", value="034013")])
    near = AlertArea(name="淇澳社区")
    assert not CHECK.verdict([far]).inside
    assert CHECK.verdict([far, near]).inside
    assert "Essex County" in CHECK.verdict([far]).reason and "outside our area" in CHECK.verdict([far]).reason


@needs_samples
@pytest.mark.parametrize("sample", ["oasis-cap12-A2-severe-thunderstorm.xml", "tw-wra-reservoir-discharge-zh.cap",
                                    "au-nsw-rfs-fire-circle.cap", "us-nws-blizzard-warning.xml",
                                    "is-imo-wind-is-en.cap", "ca-ec-thunderstorm-update-en-fr.cap"])
def test_real_alerts_from_elsewhere_are_outside(sample: str) -> None:
    [item] = parse_cap((CAP_DIR / sample).read_bytes())
    assert item.report.areas
    result = CHECK.verdict(item.report.areas)
    assert not result.inside, result.reason


@needs_samples
def test_a_real_alert_moved_into_the_district_is_inside_by_all_three() -> None:
    [item] = parse_cap(cap_message(area=QIAO_AREA))
    [area] = item.report.areas
    assert area.polygons and area.geocodes and area.name
    result = CHECK.verdict(item.report.areas)
    assert result.inside
    assert any(m.startswith("geocode") for m in result.matched)
    assert any(m.startswith("polygon") for m in result.matched)
    assert any(m.startswith("area name") for m in result.matched)


def test_the_check_is_logged_either_way_and_only_warnings_are_checked() -> None:
    incident = Incident(id="INC-1", source="cap", category="natural_disaster", subtype="meteorological", grade="III",
                        title="t", dedup_key="cap:x:y", received_at=utcnow())
    assert needs_area_check(incident)
    assert not needs_area_check(incident.model_copy(update={"source": "hotline_sms"}))
    entry = area_draft(incident, CHECK.verdict([AlertArea(name="Essex County")]), utcnow())
    assert entry.kind is ActionKind.area_checked and entry.details["area"] == "outside"
    assert entry.idempotency_key == "area_checked:INC-1"


def test_a_bad_district_file_names_file_line_and_field() -> None:
    with pytest.raises(DistrictFileError) as caught:
        district_from_geojson('{"type": "FeatureCollection",\n "features": [,]}', "d.geojson")
    assert str(caught.value).startswith("d.geojson:2: invalid JSON")
    text = DISTRICT_FILE.read_text(encoding="utf-8")
    second = text.index('"type": "Polygon"', text.index('"type": "Polygon"') + 1)
    text = text[:second] + '"type": "Point"' + text[second + len('"type": "Polygon"'):]
    with pytest.raises(DistrictFileError) as caught:
        district_from_geojson(text, "t.geojson")
    error = caught.value
    assert error.field == "features[1].geometry" and "Point" in str(error)
    assert error.line is not None and str(error).startswith(f"t.geojson:{error.line}: features[1].geometry: ")
    assert text.splitlines()[error.line - 1].strip().startswith('"type": "Feature"')

"""The SMS classifier's behaviours: negation, Cantonese, control characters, places, unclassified texts, facts."""

import pytest

from pingan.schemas.adapters.areas import AREAS_FILE, AreaTable, load_areas
from pingan.schemas.adapters.config import load_intake_config
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.sms_classifier import classify, clean
from pingan.schemas.adapters.sms_facts import zh_number
from pingan.schemas.adapters.sms_lexicon import DEFAULT_LEXICON, Lexicon
from pingan.schemas.adapters.twilio_forms import sms_to_item
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, Subtype

A, N, H, S = Category.accident_disaster, Category.natural_disaster, Category.public_health, Category.social_security


def kind(text: str) -> tuple[Category, Subtype]:
    c = classify(text)
    return c.category, c.subtype


@pytest.mark.parametrize("text", ["没有着火，是邻居在烧烤", "冇火呀，系隔篱屋煲燶饭", "not a fire, just a bbq",
                                  "there is no flooding here", "唔系火烛，系啲烟花", "没有发生火灾", "isn't a fire"])
def test_negated_hazards_are_no_report(text: str) -> None:
    c = classify(text)
    assert c.unclassified and c.negated


def test_negation_stops_at_a_comma_or_a_contrast() -> None:
    assert kind("没有着火，但是漏煤气") == (A, Subtype.hazardous_chemicals)
    assert classify("没有着火，但是漏煤气").hazard == "gas_leak"
    assert kind("没人受伤，但是仓库着火了") == (A, Subtype.fire)


def test_a_retraction_takes_the_report_back() -> None:
    c = classify("刚才报的火警是误会，没有着火")
    assert c.unclassified and c.retracted and "火警" in c.negated


def test_a_fire_put_out_still_happened() -> None:
    c = classify("刚才垃圾站起火，火已经灭了")
    assert (c.category, c.subtype, c.resolved) == (A, Subtype.fire, True)
    assert kind("火已经灭了") == (A, Subtype.fire)


@pytest.mark.parametrize(("text", "expected"), [
    ("上栅村有间铺头火烛呀", (A, Subtype.fire)),
    ("那洲有屋企着咗火", (A, Subtype.fire)),
    ("东岸村水浸到膝头哥", (N, Subtype.flood_drought)),
    ("打紧风，广告牌跌咗落嚟", (N, Subtype.meteorological)),
    ("官塘有栋旧屋塌咗", (A, Subtype.public_facility)),
    ("有人劏人呀", (S, Subtype.criminal_case)),
    ("有个癫佬喺街度斩人", (S, Subtype.criminal_case)),
    ("漏煤气呀", (A, Subtype.hazardous_chemicals)),
    ("食完婚宴成班人屙呕肚痛", (H, Subtype.food_occupational_poisoning)),
    ("一间厂几个女工一齐晕低", (H, Subtype.unexplained_illness)),
    ("情侣北路车撞车", (A, Subtype.transport)),
    ("困𨋢呀，有個細路喺入面", (A, Subtype.public_facility)),  # 𨋢 (lift), traditional script
    ("後山山泥傾瀉", (N, Subtype.geological)),
    ("成班人喺村口打交", (S, Subtype.mass_incident)),
])
def test_cantonese_forms(text: str, expected: tuple[Category, Subtype]) -> None:
    assert kind(text) == expected


def test_typhoon_is_the_event_its_flooding_is_not() -> None:
    c = classify("打风落大雨，下栅条村水浸")
    assert (c.subtype, c.hazard) == (Subtype.meteorological, "typhoon")


@pytest.mark.parametrize("text", ["火锅店边度有得食", "火车几点到", "P2P平台爆雷，投资人围在公司门口"])
def test_words_inside_words_are_not_found(text: str) -> None:
    c = classify(text)
    assert c.subtype is not Subtype.fire and c.entry != "rainstorm"


def test_control_characters_are_stripped_and_a_lone_weak_word_is_only_a_hint() -> None:
    assert clean("\x02\x03火\x04\x1b[31m") == ("火", 8)  # the escape sequence whole: 5 characters
    c = classify("\x02\x03火\x04\x05\x06")
    assert c.unclassified and c.hint == "fire_weak" and c.noise == 5
    assert classify("火").unclassified  # no noise either: a lone 火 is not a confident fire
    only_noise = classify("\x00\x07\x1b[0m\ufffd")
    assert only_noise.unclassified and only_noise.hint is None and only_noise.text == ""
    # A clear phrase survives the noise.
    assert kind("\x02着火了，唐家市场\x03") == (A, Subtype.fire)


def test_control_characters_plus_fire_make_an_unclassified_report() -> None:
    report = sms_to_item({"MessageSid": "SM1", "From": "+8613800000000", "Body": "\x02\x03火\x04\x05\x06"}).item.report
    assert (report.category, report.subtype, report.grade) == (Category.other, Subtype.unclassified, Grade.IV)
    assert report.labels["pingan_unclassified"] == "true" and report.labels["sms_hint"] == "fire_weak"
    assert report.labels["sms_noise"] == "5" and report.title == "火" and "\x02" not in report.description


@pytest.mark.parametrize("text", ["你好", "test", "😀😀😀", "👍", "谢谢你们", "...", "12345", "ok", "早晨",
                                  "【XX贷款】低息贷款，当天到账，回复T退订", "\x01\x02\x03"])
def test_no_report(text: str) -> None:
    c = classify(text)
    assert c.unclassified and (c.category, c.subtype) == (Category.other, Subtype.unclassified)
    assert Subtype.unclassified in SUBTYPES_BY_CATEGORY[Category.other]


@pytest.mark.parametrize(("text", "code"), [
    ("淇澳岛一间民宿着火", "440402100009"),
    ("Fire near Tangjia market", "440402100001"),
    ("Landslide on the road to Qi\u2019ao island", "440402100009"),  # a curly apostrophe as phones type it
    ("something tangled in the wires", None),  # Tangle is a community, not part of "tangled"
    ("outside the software park, people hurt", "440402100"),  # the lexicon's extra alias
    ("中大珠海校区实验室", "440402100012"),
])
def test_places(text: str, code: str | None) -> None:
    c = classify(text)
    assert (c.area.code if c.area else None) == code


def test_facts_and_grade_hint() -> None:
    c = classify("工厂着火，已经有3人死亡，还有人被困")
    assert c.facts == {"deaths": 3, "trapped": 1} and c.grade_hint is Grade.III
    assert classify("淇澳大桥上撞车，三个人死咗").facts["deaths"] == 3
    assert classify("学生集体食物中毒，已经送了十几个去医院").facts["injured"] == 11
    assert classify("House fire, 2 people trapped upstairs").facts["trapped"] == 2
    assert "injured" not in classify("垃圾站起火，没人受伤").facts
    assert classify("养鸡场的鸡一晚死了几百只").facts == {}  # chickens are no deaths
    assert classify("啲车都死火").facts == {}  # 死火: a stalled engine
    report = sms_to_item({"MessageSid": "SM2", "From": "+86138", "Body": "工厂着火，已经有12人死亡"}).item.report
    assert report.labels["deaths"] == report.labels["casualties"] == "12" and report.labels["grade_hint"] == "II"
    assert report.grade is Grade.IV  # unverified: the duty room regrades; the plan's casualty rules read the labels


@pytest.mark.parametrize(("text", "n"), [("3", 3), ("三", 3), ("两", 2), ("十几", 11), ("几十", 20), ("二十几", 21),
                                         ("几百", 200), ("好多", 2), ("一", 1), ("十", 10)])
def test_chinese_numbers(text: str, n: int) -> None:
    assert zh_number(text) == n


def test_areas_come_from_the_district_file(tmp_path) -> None:
    areas = load_areas(AREAS_FILE)
    assert {a.code for a in areas.areas} >= {"440402100", "440402100009"}
    assert load_intake_config(None).areas.match("淇澳岛").code == "440402100009"
    bad = tmp_path / "areas.geojson"
    bad.write_text("{}")
    with pytest.raises(IntakeError):
        load_areas(bad)
    other = tmp_path / "other.geojson"
    other.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "X9", '
                     '"name_zh": "新村", "aliases": ["Newvillage"]}, "geometry": {"type": "Polygon", "coordinates": '
                     '[[[113.5, 22.3], [113.6, 22.3], [113.6, 22.4], [113.5, 22.3]]]}}]}')
    config = load_intake_config(None, other)
    assert isinstance(config.areas, AreaTable) and config.areas.match("fire in Newvillage").code == "X9"


def test_a_config_lexicon_extends_the_shipped_one(tmp_path) -> None:
    path = tmp_path / "intake.yaml"
    path.write_text("sms_keywords:\n  extends_default: true\n  entries:\n  - id: manhole\n"
                    "    category: accident_disaster\n    subtype: public_facility\n    hazard: manhole\n"
                    "    decisive: [沙井]\n")
    lexicon = load_intake_config(path).sms_keywords
    assert isinstance(lexicon, Lexicon) and len(lexicon.entries) == len(DEFAULT_LEXICON.entries) + 1
    assert classify("沙井冒水", lexicon).hazard == "manhole"
    assert classify("着火了", lexicon).subtype is Subtype.fire

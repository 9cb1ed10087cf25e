import xml.etree.ElementTree as ET

import pytest

from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.sms_lexicon import Lexicon, LexiconEntry
from pingan.schemas.adapters.twilio_forms import (
    DEFAULT_AREAS,
    Area,
    AreaTable,
    detect_lang,
    sms_help_reply,
    sms_reply,
    sms_stop_reply,
    sms_to_item,
    voice_choice,
    voice_menu,
    voice_recording,
)
from pingan.schemas.events import RawKind
from pingan.schemas.taxonomy import Category, Grade, Source, Subtype

SMS = {"MessageSid": "SM0123456789abcdef0123456789abcdef", "AccountSid": "AC0123", "From": "+8613800000000",
       "To": "+8675500000000", "NumMedia": "0"}
CALL = {"CallSid": "CA0123456789abcdef0123456789abcdef", "From": "+8613900000000", "To": "+8675500000000"}


def xml(twiml: str) -> ET.Element:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(twiml.encode())
    assert root.tag == "Response"
    return root


def sms(body: str, **extra: str) -> dict[str, str]:
    return {**SMS, "Body": body, **extra}


@pytest.mark.parametrize(("body", "category", "subtype", "hazard", "keyword"), [
    ("唐家社区幸福小区3栋着火了", Category.accident_disaster, Subtype.fire, None, "着火"),
    ("后山起了山火", Category.natural_disaster, Subtype.forest_fire, None, "山火"),
    ("火车站附近发生车祸", Category.accident_disaster, Subtype.transport, None, "车祸"),
    ("小区地下车库被淹了", Category.natural_disaster, Subtype.flood_drought, None, "被淹"),
    ("台风来了，树倒了", Category.natural_disaster, Subtype.meteorological, "typhoon", "台风"),
    ("暴雨一直下", Category.natural_disaster, Subtype.meteorological, "rainstorm", "暴雨"),
    ("工厂有毒气泄漏", Category.accident_disaster, Subtype.hazardous_chemicals, None, "毒气"),
    ("火车着火了", Category.accident_disaster, Subtype.fire, None, "着火"),
    ("食堂很多人食物中毒", Category.public_health, Subtype.food_occupational_poisoning, None, "食物中毒"),
    ("刚才地震了", Category.natural_disaster, Subtype.earthquake, None, "地震"),
    ("广场上有人打架", Category.social_security, Subtype.mass_incident, None, "打架"),
    ("学校很多学生发热", Category.public_health, Subtype.infectious_disease, None, "发热"),
    ("FIRE in the warehouse!", Category.accident_disaster, Subtype.fire, None, "fire"),
    ("Basement flooding on Main St", Category.natural_disaster, Subtype.flood_drought, None, "flood"),
    ("Typhoon warning, windows broken", Category.natural_disaster, Subtype.meteorological, "typhoon", "typhoon"),
    ("Smells like gas in our building", Category.accident_disaster, Subtype.hazardous_chemicals, "gas_leak",
     "smells like gas"),
    ("Bad car crash near the bridge", Category.accident_disaster, Subtype.transport, None, "car crash"),
    ("A riot outside the stadium", Category.social_security, Subtype.mass_incident, None, "riot"),
    ("Fever outbreak at the school", Category.public_health, Subtype.infectious_disease, None, "outbreak"),
])
def test_keywords_zh_and_en(body: str, category: Category, subtype: Subtype, hazard: str | None,
                            keyword: str) -> None:
    report = sms_to_item(sms(body)).item.report
    assert (report.category, report.subtype, report.hazard) == (category, subtype, hazard)
    assert report.labels["sms_keyword"] == keyword and "pingan_unclassified" not in report.labels


def test_latin_keywords_are_whole_words() -> None:
    # "riot" hides in "patriot", "fire" in "firefighters", "gas" in "Vegas": none of them may match there.
    for body in ("the patriot club in Vegas", "thank the firefighters"):
        assert sms_to_item(sms(body)).item.report.labels["pingan_unclassified"] == "true"


def test_no_report_is_unclassified() -> None:
    report = sms_to_item(sms("你好，在吗")).item.report
    assert (report.category, report.subtype, report.grade) == (Category.other, Subtype.unclassified, Grade.IV)
    assert report.labels["pingan_unclassified"] == "true" and "sms_keyword" not in report.labels


def test_custom_tables() -> None:
    lexicon = Lexicon(entries=(LexiconEntry(id="manhole", category=Category.accident_disaster,
                                            subtype=Subtype.public_facility, hazard="manhole", decisive=("井盖",)),))
    areas = AreaTable(areas=(Area(code="X1", name="新区", aliases=("New Town",)),))
    report = sms_to_item(sms("new town: 井盖丢了"), keywords=lexicon, areas=areas).item.report
    assert report.hazard == "manhole" and report.location.area_code == "X1"
    assert sms_to_item(sms("着火了"), keywords=lexicon).item.report.subtype is Subtype.unclassified
    with pytest.raises(ValueError):
        LexiconEntry(id="x", category=Category.public_health, subtype=Subtype.fire, strong=("x",))


@pytest.mark.parametrize(("body", "code"), [
    ("唐家市场旁边着火", "440402100001"),
    ("淇澳岛这边冒烟", "440402100009"),
    ("smoke near Beisha market", "440402100006"),
    ("唐家湾大道积水", "440402100"),  # 唐家 inside 唐家湾 is the town's road, not the community
    ("唐家湾镇鸡山村着火", "440402100003"),  # town and community named: the community, the more precise
    ("香洲那边冒烟", None),  # outside the district
    ("somewhere else", None),
])
def test_area_detection(body: str, code: str | None) -> None:
    location = sms_to_item(sms(body)).item.report.location
    assert location.area_code == code
    if code:
        assert location.area_name == next(a.name for a in DEFAULT_AREAS.areas if a.code == code)


def test_sms_report_fields() -> None:
    body = "唐家社区幸福小区3栋着火了，" + "火势很大" * 30
    media = {"NumMedia": "2", "MediaUrl0": "https://api.twilio.com/m0", "MediaContentType0": "image/jpeg",
             "MediaUrl1": "https://api.twilio.com/m1", "MediaContentType1": "video/mp4"}
    outcome = sms_to_item(sms(body, **media))
    item, report = outcome.item, outcome.item.report
    assert outcome.command is None and outcome.lang == "zh"
    assert item.kind is RawKind.report and item.source_key == "twilio:sms:" + SMS["MessageSid"]
    assert report.source is Source.hotline_sms and report.grade is Grade.IV and report.dedup_key is None
    assert report.reporter.phone == SMS["From"]
    assert report.title == body[:60] + "…" and report.description == body
    assert report.labels["twilio_message_sid"] == SMS["MessageSid"]
    assert [(a.kind, a.url, a.data["content_type"]) for a in report.attachments] == [
        ("media", "https://api.twilio.com/m0", "image/jpeg"), ("media", "https://api.twilio.com/m1", "video/mp4")]
    assert report.effective_dedup_key().startswith("auto:")


def test_language_detection() -> None:
    assert detect_lang("Fire at 东湖") == "zh"
    assert detect_lang("Fire at Donghu") == "en"
    assert sms_to_item(sms("flood here")).lang == "en"


@pytest.mark.parametrize(("body", "command", "lang"), [
    ("STOP", "stop", "en"), (" stop ", "stop", "en"), ("Unsubscribe", "stop", "en"), ("quit", "stop", "en"),
    ("END", "stop", "en"), ("cancel", "stop", "en"), ("STOPALL", "stop", "en"),
    ("HELP", "help", "en"), ("info", "help", "en"), ("帮助", "help", "zh"), ("START", "start", "en"),
    ("", "help", "zh"),
])
def test_commands_are_not_reports(body: str, command: str, lang: str) -> None:
    outcome = sms_to_item(sms(body))
    assert outcome.item is None and outcome.command == command and outcome.lang == lang


def test_command_word_inside_a_report_is_a_report() -> None:
    assert sms_to_item(sms("Please help, fire")).item is not None


@pytest.mark.parametrize("field", ["MessageSid", "From", "Body"])
def test_missing_fields(field: str) -> None:
    form = sms("着火")
    del form[field]
    with pytest.raises(IntakeError) as err:
        sms_to_item(form)
    assert err.value.field == field


def test_bad_num_media() -> None:
    with pytest.raises(IntakeError) as err:
        sms_to_item(sms("着火", NumMedia="two"))
    assert err.value.field == "NumMedia"


def test_sms_replies_are_twiml() -> None:
    zh = xml(sms_reply("zh", "INC-20260701-0001"))
    assert zh.find("Message").text == "【平安】已收到您的报告，编号 INC-20260701-0001。如有危险请立即拨打 119/110/120。"
    en = xml(sms_reply("en", "INC-1"))
    assert "INC-1" in en.find("Message").text and "119" in en.find("Message").text
    assert "STOP" in xml(sms_help_reply("zh")).find("Message").text
    assert "STOP" in xml(sms_help_reply("en")).find("Message").text
    stop = xml(sms_stop_reply("en"))
    assert len(stop) == 0 and not (stop.text or "").strip()


def test_voice_menu() -> None:
    root = xml(voice_menu("https://pingan.example/ivr/choice", None))
    gather, redirect = root
    assert gather.tag == "Gather" and redirect.tag == "Redirect"
    assert gather.get("numDigits") == "1" and gather.get("action") == "https://pingan.example/ivr/choice"
    assert [s.get("language") for s in gather.findall("Say")] == ["zh-CN", "en-US"]
    assert "按1" in gather.findall("Say")[0].text and "Press 1 for fire" in gather.findall("Say")[1].text
    assert redirect.text == "https://pingan.example/ivr/choice"
    only_en = xml(voice_menu("/c", "en")).find("Gather")
    assert [s.get("language") for s in only_en.findall("Say")] == ["en-US"]


@pytest.mark.parametrize(("digit", "category", "subtype", "what"), [
    ("1", Category.accident_disaster, Subtype.fire, "火灾"),
    ("2", Category.natural_disaster, Subtype.flood_drought, "洪水或台风"),
    ("3", Category.accident_disaster, Subtype.hazardous_chemicals, "化学品泄漏"),
    ("4", Category.public_health, Subtype.infectious_disease, "医疗或疫情"),
    ("5", Category.social_security, Subtype.mass_incident, "治安事件"),
])
def test_voice_digits(digit: str, category: Category, subtype: Subtype, what: str) -> None:
    outcome = voice_choice({**CALL, "Digits": digit}, "/ivr/recording")
    item, report = outcome.item, outcome.item.report
    assert item.source_key == "twilio:voice:" + CALL["CallSid"]
    assert (report.category, report.subtype, report.grade) == (category, subtype, Grade.IV)
    assert report.source is Source.hotline_voice and report.reporter.phone == CALL["From"]
    assert report.labels["twilio_call_sid"] == CALL["CallSid"] and report.title.startswith(f"电话报警：{what}")
    root = xml(outcome.twiml)
    assert [e.tag for e in root] == ["Say", "Say", "Hangup"]
    assert what in root[0].text


def test_voice_zero_records() -> None:
    outcome = voice_choice({**CALL, "Digits": "0"}, "/ivr/recording")
    assert outcome.item is None
    record = xml(outcome.twiml).find("Record")
    assert record.get("action") == "/ivr/recording" and record.get("maxLength") == "120"
    assert record.get("playBeep") == "true"


@pytest.mark.parametrize(("digits", "says_invalid"), [("7", True), ("*", True), ("", False), (None, False)])
def test_voice_invalid_or_no_digit_offers_the_menu_again(digits: str | None, says_invalid: bool) -> None:
    form = dict(CALL) if digits is None else {**CALL, "Digits": digits}
    outcome = voice_choice(form, "/ivr/recording")
    assert outcome.item is None
    root = xml(outcome.twiml)
    tags = [e.tag for e in root]
    assert tags.index("Gather") < tags.index("Record")  # silence after the menu leads to a recorded message
    assert (root[0].tag == "Say" and "无效" in root[0].text) is says_invalid
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and gather.get("action") is None  # posts back to this same endpoint


def test_voice_missing_call_sid() -> None:
    with pytest.raises(IntakeError) as err:
        voice_choice({"From": "+86139", "Digits": "1"}, "/r")
    assert err.value.field == "CallSid"


def test_voice_recording_callback() -> None:
    form = {**CALL, "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "RecordingSid": "RE1", "RecordingDuration": "14"}
    outcome = voice_recording(form)
    item, report = outcome.item, outcome.item.report
    assert item.source_key == "twilio:voice:" + CALL["CallSid"] + ":rec" and item.kind is RawKind.report
    assert report.attachments[0].kind == "recording" and report.attachments[0].url == form["RecordingUrl"]
    assert report.reporter.phone == CALL["From"] and report.labels["twilio_recording_sid"] == "RE1"
    assert report.source is Source.hotline_voice and report.grade is Grade.IV
    assert (report.category, report.subtype) == (Category.other, Subtype.unclassified)  # nobody has listened yet
    assert [e.tag for e in xml(outcome.twiml)][-1] == "Hangup"
    with pytest.raises(IntakeError) as err:
        voice_recording({"CallSid": "CA1"})
    assert err.value.field == "RecordingUrl"

"""Weather warnings find their own plan (issue #12, point 3): heat, fog, gale, cold, hail, thunderstorm and tornado
alerts activate severe-weather (气象灾害预警), never rainstorm-waterlogging; rain still activates the rainstorm plan and
typhoons the typhoon plan. And a citizen's text nobody could classify is an unclassified report for the duty room's
console (unclassified-report), not an incident under the catch-all.

The CAP messages are small CAP 1.2 alerts written here, as the city observatory would send them for Tangjiawan, and go
through the real adapter (XSD validation, the mapping tables in schemas/adapters/cap_mapping.py)."""

import pytest

from pingan.handlers.incidents.response import respond
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.matching import match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.twilio_forms import sms_to_item
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.notification import Channel
from pingan.schemas.taxonomy import Category, Grade, Subtype
from tests.unit.test_matching import T0

WEATHER_HAZARDS = ["heat_wave", "fog", "gale", "cold_wave", "hail", "thunderstorm", "tornado"]


@pytest.fixture(scope="module")
def shipped() -> PlanSet:
    return load_plans(PLANS_DIR)


def cap_alert(event: str, headline: str, severity: str = "Moderate", urgency: str = "Expected",
              identifier: str = "ZH-MET-1") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>weather@zhuhai.example</sender>
  <sent>2026-07-20T11:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>{event}</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <headline>{headline}</headline>
    <area>
      <areaDesc>珠海市高新区唐家湾镇</areaDesc>
      <geocode><valueName>行政区划代码</valueName><value>440402100</value></geocode>
    </area>
  </info>
</alert>""".encode()


def report_of(data: bytes) -> IncidentReport:
    [item] = parse_cap(data)
    return item.report


@pytest.mark.parametrize(("event", "headline", "hazard"), [
    ("高温黄色预警", "珠海市气象台发布高温黄色预警信号", "heat_wave"),
    ("大雾黄色预警", "珠海市气象台发布大雾黄色预警信号，淇澳大桥能见度不足500米", "fog"),
    ("大风黄色预警", "珠海市气象台发布大风黄色预警信号，沿海阵风8级", "gale"),
    ("Heat Advisory", "Heat advisory for Tangjiawan", "heat_wave"),
    ("Dense Fog Advisory", "Dense fog over the Pearl River estuary", "fog"),
    ("Gale Warning", "Gale warning for the Tangjiawan coast", "gale"),
    ("寒冷黄色预警", "珠海市气象台发布寒冷黄色预警信号", "cold_wave"),
    ("冰雹橙色预警", "珠海市气象台发布冰雹橙色预警信号", "hail"),
    ("雷雨大风黄色预警", "珠海市气象台发布雷雨大风黄色预警信号", "thunderstorm"),
    ("龙卷风预警", "唐家湾镇可能出现龙卷风", "tornado"),
    # Hong Kong's names across the estuary, and the mapping's English.
    ("酷热天气警告", "天文台发出酷热天气警告", "heat_wave"),
    ("Very Hot Weather Warning", "Very Hot Weather Warning in force", "heat_wave"),
    ("寒冷天气警告", "天文台发出寒冷天气警告", "cold_wave"),
    ("Thunderstorm Warning", "Thunderstorm warning for the estuary", "thunderstorm"),
])
def test_weather_warnings_activate_severe_weather_not_the_rainstorm_plan(shipped: PlanSet, event: str,
                                                                         headline: str, hazard: str) -> None:
    report = report_of(cap_alert(event, headline))
    assert (report.category, report.subtype, report.hazard, report.grade) == (
        Category.natural_disaster, Subtype.meteorological, hazard, Grade.III)
    result = match_plan(shipped, report)
    assert result.plan is not None and result.plan.id == "severe-weather", result.reason
    assert result.candidates == ["severe-weather"] and "by hazard and subtype" in result.reason


@pytest.mark.parametrize(("event", "headline", "expected"), [
    ("暴雨黄色预警", "珠海市气象台发布暴雨黄色预警信号", "rainstorm-waterlogging"),
    ("台风黄色预警", "珠海市气象台发布台风黄色预警信号", "typhoon"),
])
def test_rain_and_typhoon_warnings_keep_their_plans(shipped: PlanSet, event: str, headline: str,
                                                    expected: str) -> None:
    result = match_plan(shipped, report_of(cap_alert(event, headline)))
    assert result.plan is not None and result.plan.id == expected, result.reason


@pytest.mark.parametrize("hazard", WEATHER_HAZARDS)
@pytest.mark.parametrize("grade", ["I", "II", "III", "IV"])
def test_every_weather_hazard_and_grade_is_the_severe_weather_plans(shipped: PlanSet, hazard: str,
                                                                    grade: str) -> None:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", hazard=hazard, grade=grade,
                            title="气象预警")
    result = match_plan(shipped, report)
    assert result.plan is not None and result.plan.id == "severe-weather" and not result.catch_all
    assert result.plan.level(Grade(grade)) is not None


def test_the_plan_names_exactly_the_mappings_hazards(shipped: PlanSet) -> None:
    plan = shipped.get("severe-weather")
    assert plan is not None and sorted(plan.applies_to.hazards) == sorted(WEATHER_HAZARDS)
    # Every name is one the CAP mapping really gives a Met alert: a typo here would match nothing.
    mapped = {report_of(cap_alert(event, event)).hazard for event in (
        "Excessive Heat Warning", "Dense Fog Advisory", "High Wind Warning", "Wind Chill Warning", "Hail",
        "Severe Thunderstorm Warning", "Tornado Warning")}
    assert mapped == set(WEATHER_HAZARDS)


def test_a_red_gale_warning_calls_out_the_sea_and_the_billboards(shipped: PlanSet) -> None:
    report = report_of(cap_alert("大风红色预警", "珠海市气象台发布大风红色预警信号", severity="Extreme",
                                 urgency="Immediate"))
    assert report.grade is Grade.I
    level = match_plan(shipped, report).plan.level(Grade.I)  # type: ignore[union-attr]
    assert level is not None
    tasks = {t.id: t for t in level.tasks}
    assert tasks["fishing-boats"].owner.department == "agriculture"
    assert tasks["secure-billboards"].owner.department == "urban-management"
    assert tasks["fog-road-control"].owner.department == "traffic-police"
    assert tasks["school-suspension"].owner.department == "education"
    assert tasks["heat-health"].owner.department == "health"


# ── a text that is no report: the duty room's console, nothing louder ─────────────────────────────────────────────

def sms(body: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "0" * 32, "From": "+12025550197", "To": "+12025550100", "Body": body,
            "AccountSid": "AC" + "0" * 32}


@pytest.mark.parametrize("body", ["你好，在吗？", "\x02\x03火\x04\x05\x06", "test"])
def test_an_unclassified_text_is_a_console_item_for_the_duty_room_only(shipped: PlanSet, body: str) -> None:
    item = sms_to_item(sms(body)).item
    assert item is not None
    report = item.report
    assert (report.category, report.subtype, report.grade) == (Category.other, Subtype.unclassified, Grade.IV)
    result = match_plan(shipped, report)
    assert result.plan is not None and result.plan.id == "unclassified-report" and not result.catch_all

    incident = Incident(id="INC-1", dedup_key="k", received_at=T0, **report.model_dump(exclude={"dedup_key"}))
    decision = respond(incident, shipped, T0)
    assert decision.plan_id == "unclassified-report"
    assert decision.notifications and {n.channel for n in decision.notifications} == {Channel.console}
    duty_room = set(shipped.directory.rosters["duty-room"].members)
    assert {n.recipient.id for n in decision.notifications} <= duty_room
    assert all("待甄别" in n.text and incident.title in n.text for n in decision.notifications)


def test_the_unclassified_procedure_repeats_on_the_console_and_never_leaves_the_duty_room(shipped: PlanSet
                                                                                          ) -> None:
    plan = shipped.get("unclassified-report")
    assert plan is not None and plan.grades == [Grade.I, Grade.II, Grade.III, Grade.IV] and not plan.escalate_grade
    for level in plan.levels:
        [step] = level.notify
        assert step.channels == [Channel.console.value] and [t.roster for t in step.targets] == ["duty-room"]
        assert step.ack_timeout_min is not None and step.repeat >= 1
        [task] = level.tasks
        assert task.owner.roster == "duty-room" and task.deadline_min <= 30
    assert plan.level(Grade.IV).notify[0].ack_timeout_min == 15  # type: ignore[union-attr]


def test_other_general_still_falls_to_the_catch_all(shipped: PlanSet) -> None:
    report = report_of(cap_alert("Blood stock notice", "O型血库存告急", identifier="ZH-HEALTH-1")
                       .replace(b"<category>Met</category>", b"<category>Health</category>"))
    assert (report.category, report.subtype) == (Category.other, Subtype.general)
    result = match_plan(shipped, report)
    assert result.plan is not None and result.plan.id == "general-incident" and result.catch_all

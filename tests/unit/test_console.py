"""The console's catalogues: both languages have the same keys, every key a template or console module names is in
them, and every value the pages show by name (grades, categories, subtypes, log kinds, channels) has a word."""

import re
from pathlib import Path

import pytest

from pingan.handlers.plans.timeline import EntryKind
from pingan.schemas.action import ActionKind
from pingan.schemas.notification import Channel, DeliveryState
from pingan.schemas.plan import NotifyChannel, PlanStatus
from pingan.schemas.taxonomy import Category, Grade, IncidentState, Source, Subtype
from pingan.web.console import i18n

CONSOLE = Path(i18n.__file__).parent
KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[a-z_.]+)['"]""")
PY_KEY = re.compile(r"""["'](console\.[a-z_]+)["']""")


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = i18n.catalogue("zh"), i18n.catalogue("en")
    assert set(zh) == set(en), set(zh) ^ set(en)


def test_every_key_used_is_in_the_catalogue() -> None:
    used = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        used |= set(KEY.findall(template.read_text(encoding="utf-8")))
    for module in CONSOLE.glob("*.py"):
        used |= set(PY_KEY.findall(module.read_text(encoding="utf-8")))
    assert used, "no keys found: the pattern is wrong"
    missing = sorted(used - set(i18n.catalogue("zh")))
    assert not missing


@pytest.mark.parametrize(("group", "values"), [
    ("grade", Grade), ("category", Category), ("subtype", Subtype), ("kind", ActionKind), ("state", IncidentState),
    ("channel", Channel), ("delivery", DeliveryState), ("source", Source), ("plan_status", PlanStatus),
    ("notify_channel", NotifyChannel), ("entry", EntryKind)])
def test_every_value_shown_by_name_has_a_word(group: str, values: type) -> None:
    for lang in i18n.LANGS:
        missing = [v.value for v in values if f"{group}.{v.value}" not in i18n.catalogue(lang)]
        assert not missing, (lang, group, missing)


def test_language_fallbacks() -> None:
    assert i18n.normal_lang("en-GB") == "en" and i18n.normal_lang("zh-CN") == "zh" and i18n.normal_lang(None) == "zh"
    assert i18n.translate("en", "board.level", grade="II") == "II response"
    assert i18n.translate("zh", "no.such.key") == "no.such.key"


def test_on_call_segments_for_seven_days_with_an_override() -> None:
    from datetime import date, datetime, time
    from zoneinfo import ZoneInfo

    from pingan.schemas.directory import Override, Roster, Rotation
    from pingan.web.console.duty import duty_segments

    bj = ZoneInfo("Asia/Shanghai")
    cover = Override(person="li", covers="zhao", start=datetime(2026, 3, 2, 20, tzinfo=bj),
                     end=datetime(2026, 3, 3, 8, tzinfo=bj))
    roster = Roster(id="t", name={"zh": "测试"}, members=["wang", "zhao"], overrides=[cover],
                    rotation=Rotation(handoff=time(8, 0), start=date(2026, 3, 1)))
    segments = duty_segments(roster, datetime(2026, 3, 1, 12, tzinfo=bj), days=3)
    shown = [(a.astimezone(bj).strftime("%d %H"), b.astimezone(bj).strftime("%d %H"), p) for a, b, p in segments]
    assert shown == [("01 12", "02 08", "wang"), ("02 08", "02 20", "zhao"), ("02 20", "03 08", "li"),
                     ("03 08", "04 08", "wang"), ("04 08", "04 12", "zhao")]

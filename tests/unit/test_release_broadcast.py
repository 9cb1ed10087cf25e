"""Issue 17, public SMS: subscription keywords and who a release's broadcast reaches (pure)."""

from datetime import UTC, datetime

import pytest

from pingan.handlers.incidents.broadcast import (
    Subscriber,
    broadcast_key,
    participant_intents,
    reached,
    release_area_codes,
    sms_text,
    subscriber_intents,
)
from pingan.handlers.incidents.subscriptions import find_area, is_subscription, parse_keyword, subscribe_reply
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import AlertArea, Geocode, district_from_geojson
from pingan.schemas.common import LocalizedText
from pingan.schemas.directory import Contacts, Person
from pingan.schemas.release import Release, ReleaseChannel, ReleaseState, ReleaseTexts
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype

DISTRICT = district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE))
TOWN, TANGJIA, JISHAN = "440402100", "440402100001", "440402100003"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def release(areas: list[AlertArea] | None = None, status: IncidentStatus = IncidentStatus.actual,
            channels: list[ReleaseChannel] | None = None, rid: str = "REL-1") -> Release:
    return Release(
        id=rid, incident_id="INC-1", kind="alert", state=ReleaseState.published, status=status,
        category=Category.natural_disaster, subtype=Subtype.meteorological, grade=Grade.II,
        texts=ReleaseTexts(headline=LocalizedText(zh="台风橙色预警", en="Typhoon orange warning"),
                           description=LocalizedText(zh="台风将于今晚登陆。", en="The typhoon lands tonight."),
                           instruction=LocalizedText(zh="请留在室内。", en="Stay indoors.")),
        areas=areas or [], channels=channels or [ReleaseChannel.cap, ReleaseChannel.sms_broadcast],
        drafted_by="pio", drafted_at=NOW)


@pytest.mark.parametrize("body,action,query", [
    ("订阅 唐家湾", "subscribe", "唐家湾"), ("订阅唐家湾", "subscribe", "唐家湾"),
    ("SUB Tangjiawan", "subscribe", "Tangjiawan"), ("subscribe  Jishan ", "subscribe", "Jishan"),
    ("订阅", "subscribe", ""), ("退订", "unsubscribe", ""), ("TD", "unsubscribe", ""), ("td。", "unsubscribe", ""),
    ("STOP", "unsubscribe", ""), ("Unsub", "unsubscribe", ""), ("取消订阅", "unsubscribe", ""),
    ("退订 唐家湾", "unsubscribe", ""), ("\u3000退订\u3000", "unsubscribe", ""), ("TD 唐家湾", "unsubscribe", ""),
    ("退订所有短信，谢谢，以后不要再发给我了", "unsubscribe", ""),
])
def test_keywords(body: str, action: str, query: str) -> None:
    keyword = parse_keyword(body)
    assert keyword is not None and (keyword.action, keyword.area_query) == (action, query)


@pytest.mark.parametrize("body", ["唐家湾大道起火", "subway flooded at Tangjia", "stop the fire at Jishan",
                                  "INC-ABC 1", "1", "help", "订阅号说唐家湾明天停水",
                                  "TD Bank on Jishan Road is on fire now",
                                  "订阅了天气预警但是鸡山村这边已经开始淹水了请派人来"])
def test_reports_and_commands_are_not_keywords(body: str) -> None:
    assert parse_keyword(body) is None


def test_english_sub_before_words_that_name_no_area_is_a_report() -> None:
    assert not is_subscription(DISTRICT, parse_keyword("Sub station on fire"))
    assert is_subscription(DISTRICT, parse_keyword("SUB Tangjiawan Town"))
    assert is_subscription(DISTRICT, parse_keyword("SUB Beijing"))  # one word: answered with the known areas
    assert is_subscription(DISTRICT, parse_keyword("订阅 北京 朝阳"))  # 订阅 is never a report's first word


def test_areas_by_name_alias_code_and_suffix() -> None:
    assert find_area(DISTRICT, "唐家湾").code == TOWN
    assert find_area(DISTRICT, "tangjiawan town").code == TOWN
    assert find_area(DISTRICT, "鸡山").code == JISHAN
    assert find_area(DISTRICT, "鸡山社区").code == JISHAN
    assert find_area(DISTRICT, "qi’ao").code == "440402100009"
    assert find_area(DISTRICT, TANGJIA).code == TANGJIA
    assert find_area(DISTRICT, "北京") is None


def test_unknown_area_reply_lists_known_names_in_the_senders_language() -> None:
    area, zh = subscribe_reply(DISTRICT, parse_keyword("订阅 北京"), "zh")
    assert area is None and "北京" in zh and "唐家湾镇" in zh and "唐家社区" in zh
    area, en = subscribe_reply(DISTRICT, parse_keyword("SUB Beijing"), "en")
    assert area is None and "Beijing" in en and "Tangjiawan Town" in en


def test_parent_subscription_covers_children_and_a_town_release_reaches_communities() -> None:
    assert reached(frozenset({JISHAN}), {TOWN}, DISTRICT)  # subscribed to the town, release for Jishan
    assert reached(frozenset({TOWN}), {JISHAN}, DISTRICT)  # release for the town, subscribed to Jishan
    assert not reached(frozenset({JISHAN}), {TANGJIA}, DISTRICT)  # a sibling community
    assert reached(None, {TANGJIA}, DISTRICT)  # district-wide
    assert not reached(None, set(), DISTRICT)


def test_release_areas_by_geocode_name_and_enclosing() -> None:
    assert release_area_codes(release([AlertArea(geocodes=[Geocode(value=JISHAN)])]), DISTRICT) == {JISHAN}
    assert release_area_codes(release([AlertArea(name="鸡山社区、唐家社区")]), DISTRICT) == {JISHAN, TANGJIA}
    assert release_area_codes(release([AlertArea(name="珠海市")]), DISTRICT) is None
    assert release_area_codes(release([AlertArea(geocodes=[Geocode(value="440402")])]), DISTRICT) is None
    assert release_area_codes(release(), DISTRICT) is None


def test_one_intent_per_subscriber_reached_in_their_language() -> None:
    subs = [Subscriber("+8613800000001", frozenset({JISHAN}), "zh"),
            Subscriber("+8613800000002", frozenset({TOWN}), "en"),
            Subscriber("+8613800000003", frozenset({TANGJIA}), "zh"),
            Subscriber("+8613800000001", frozenset({JISHAN}), "zh")]
    intents = subscriber_intents(release([AlertArea(name="鸡山")]), DISTRICT, subs, NOW)
    assert [n.recipient.address for n in intents] == ["+8613800000001", "+8613800000002"]
    assert intents[0].idempotency_key == "release:REL-1:sms:+8613800000001"
    assert intents[0].text.startswith("【平安】台风橙色预警") and "回复TD退订" in intents[0].text
    assert intents[1].text.startswith("[Pingan] Typhoon orange warning") and "STOP" in intents[1].text
    assert subscriber_intents(release(channels=[ReleaseChannel.cap]), DISTRICT, subs, NOW) == []


def test_exercise_release_reaches_only_live_participants_never_subscribers() -> None:
    drill = release(status=IncidentStatus.exercise)
    subs = [Subscriber("+8613800000001", frozenset({TOWN}), "zh")]
    assert subscriber_intents(drill, DISTRICT, subs, NOW) == []
    people = [Person(id="li", name="李", contacts=Contacts(sms="+8613900000001")),
              Person(id="wang", name="王", contacts=Contacts(sms="+8613900000002"))]
    [n] = participant_intents(drill, people, frozenset({"li"}), "RUN-1", NOW)
    assert (n.recipient.id, n.drill_run, n.incident_status) == ("li", "RUN-1", IncidentStatus.exercise)
    assert n.text.startswith("【平安】【演练】")
    assert participant_intents(drill, people, None, "RUN-1", NOW) == []


def test_long_release_ids_and_texts_fit_the_ledger() -> None:
    key = broadcast_key("R" * 96, "+8613800000001")
    assert len(key) <= 64 and key.endswith(":sms:+8613800000001")
    long = release()
    long = long.model_copy(update={"texts": ReleaseTexts(headline=LocalizedText(zh="长"),
                                                         description=LocalizedText(zh="字" * 3000))})
    assert len(sms_text(long, "zh")) <= 1600

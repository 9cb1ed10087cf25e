"""The trend stage's pure parts (handlers/trends/series.py, warning.py): intervals, series, a rule's verdict and the
warning report with its evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pingan.handlers.trends.series import AreaRef, SeriesKey, evaluate, rule_for, series_of, slot_of, slot_start
from pingan.handlers.trends.warning import warning_report
from pingan.schemas.trends import Interval, TrendRule


def test_days_start_at_beijing_midnight_and_a_clock_compresses_them() -> None:
    before = datetime(2026, 12, 4, 15, 59, 59, tzinfo=UTC)  # 23:59:59 +08:00
    after = datetime(2026, 12, 4, 16, 0, 0, tzinfo=UTC)  # 00:00 +08:00, 5 December
    assert slot_of(after, Interval.daily) == slot_of(before, Interval.daily) + 1
    assert slot_start(slot_of(after, Interval.daily), Interval.daily) == after
    assert slot_of(after, Interval.hourly) - slot_of(before, Interval.hourly) == 1
    # at 1440 a day lasts one real minute
    assert slot_start(10, Interval.daily, 1440) - slot_start(9, Interval.daily, 1440) == timedelta(minutes=1)
    assert slot_start(10, Interval.hourly, 1440) - slot_start(9, Interval.hourly, 1440) == timedelta(seconds=2.5)


def test_a_report_counts_in_every_area_of_its_path_for_its_category_and_subtype() -> None:
    path = [AreaRef("4404HT", "district"), AreaRef("440402100", "town"), AreaRef("440402100001", "community")]
    keys = series_of("actual", "public_health", "food_occupational_poisoning", path)
    assert len(keys) == 3 * 2 * 2
    assert SeriesKey("actual", "community", "440402100001", "public_health", "", "daily") in keys
    assert SeriesKey("actual", "town", "440402100", "public_health", "food_occupational_poisoning",
                     "hourly") in keys
    # one warning per area and kind: the interval is not in the key
    daily, hourly = (SeriesKey("actual", "community", "440402100001", "public_health", "", iv)
                     for iv in ("daily", "hourly"))
    assert daily.dedup_key() == hourly.dedup_key() == "trend:community:440402100001:public_health:*"


RULE = TrendRule(id="ph", level="community", category="public_health", detector="C2", min_count=5)


def test_a_rule_watches_its_own_series_and_min_count_holds_an_alarm_back() -> None:
    key = SeriesKey("actual", "community", "440402100001", "public_health", "", "daily")
    assert rule_for([RULE], key) is RULE
    assert rule_for([RULE], SeriesKey("actual", "town", "440402100", "public_health", "", "daily")) is None
    assert rule_for([RULE], SeriesKey("actual", "community", "x", "public_health", "infectious_disease",
                                      "daily")) is None
    four = evaluate(RULE, [0] * 9 + [4])  # C2 = 4 > 3, but 4 reports < min_count 5
    five = evaluate(RULE, [0] * 9 + [5])
    assert four is not None and four.statistic == 4.0 and not four.alarm
    assert five is not None and five.alarm and five.limit == 3.0
    assert evaluate(RULE, [0] * 9) is None  # C2 needs 10 intervals


def test_the_warning_carries_its_evidence() -> None:
    key = SeriesKey("actual", "community", "440402100001", "public_health", "", "daily")
    counts = [0] * 9 + [6]
    verdict = evaluate(RULE, counts)
    assert verdict is not None
    starts = [slot_start(s, Interval.daily) for s in range(100, 110)]
    report = warning_report(RULE, key, verdict, counts, starts, "唐家社区", [("e1", "INC-1"), ("e2", None)])
    assert (report.source.value, report.category.value, report.subtype.value, report.grade.value) == \
        ("trend", "other", "trend_warning", "IV")
    assert report.dedup_key == key.dedup_key() and report.location.area_code == "440402100001"
    assert report.title.startswith("public_health/* 报告激增：唐家社区今日6 件报告，基线均值 0.0（C2 6.00 > 3）")
    data = report.attachments[0].data
    assert data["series"]["area_name"] == "唐家社区" and data["count"] == 6 and data["limit"] == 3.0
    assert data["baseline"] == {"mean": 0.0, "sd": 0.0, "sigma": 1.0,
                                "intervals": [starts[0].isoformat(), starts[6].isoformat()]}
    assert data["reports"] == [{"event_id": "e1", "incident_id": "INC-1"}, {"event_id": "e2", "incident_id": None}]
    assert report.labels["trend_statistic"] == "6.00" and report.labels["trend_rule"] == "ph"


def test_a_warning_never_joins_another_incident_by_fit() -> None:
    from pingan.handlers.incidents.correlation import joinable

    key = SeriesKey("actual", "community", "440402100001", "public_health", "", "daily")
    verdict = evaluate(RULE, [0] * 9 + [6])
    assert verdict is not None
    report = warning_report(RULE, key, verdict, [0] * 9 + [6], [slot_start(s, Interval.daily) for s in range(10)],
                            None, [])
    assert not joinable(report)  # only its own open warning, by its dedup key

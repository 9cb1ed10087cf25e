"""The trend early-warning stage (streams/trends.py, store/trends.py) on real SQLite and PostgreSQL: reports counted
per series in the triage batch's transaction, the detector run on each new count, one warning per series' area and
kind raised through the outbox, exercise reports counted apart, a replay counted once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pingan.commands import run_command
from pingan.handlers.incidents.escalation import Command
from pingan.handlers.incidents.placement import Placer
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.areas import district_from_geojson
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport, Location
from pingan.schemas.taxonomy import IncidentStatus, Source
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.store.trends import TrendStore
from pingan.streams.batches import triage_batch
from pingan.streams.trends import TrendWatch

WINDOW = timedelta(minutes=30)
RULES, _ = read_trend_rules(PLANS_DIR)
PLANS = load_plans(PLANS_DIR)
PLACER = Placer(district_from_geojson((PLANS_DIR / "areas" / "tangjiawan.geojson").read_text(), "tangjiawan"))
COMMUNITIES = [f"4404021000{n:02d}" for n in range(1, 13)]
TANGJIA = COMMUNITIES[0]  # 唐家社区
# A quiet Wednesday at noon, Beijing time (04:00 UTC), well inside one daily interval.
NOON = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
RAW = "pingan.incidents.raw"


def watch() -> TrendWatch:
    return TrendWatch(RULES, RAW, PLACER)


def diarrhoea(area: str, at: datetime, n: int, status: IncidentStatus = IncidentStatus.actual) -> RawEvent:
    report = IncidentReport(source=Source.hotline_sms, status=status, category="public_health",
                            subtype="food_occupational_poisoning", grade="IV", title=f"拉肚子 {n}",
                            location=Location(area_code=area), dedup_key=f"sms:{uuid.uuid4().hex}")
    return RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(), received_at=at,
                    report=report)


def run(store: Store, events: Sequence[RawEvent], w: TrendWatch | None = None) -> list[str]:
    """The triage agent's batch (streams/batches.py) with the stage; the warnings it raised."""
    before = {e.proposed_incident_id for e in warnings(store)}
    triage_batch(store, events, WINDOW, {}, None, PLACER, w or watch())
    return [e.proposed_incident_id for e in warnings(store) if e.proposed_incident_id not in before]


def warnings(store: Store) -> list[RawEvent]:
    found = [RawEvent.model_validate_json(r.payload) for r in store.unpublished()]
    return [e for e in found if e.report.source is Source.trend]


def over_a_day(areas: Sequence[str], n: int = 25) -> list[RawEvent]:
    """n reports spread over one simulated day (08:00 to 20:00 Beijing time), cycling through `areas`."""
    start = NOON - timedelta(hours=4)
    return [diarrhoea(areas[i % len(areas)], start + timedelta(minutes=29 * i), i) for i in range(n)]


def test_25_reports_from_one_community_raise_one_warning(store: Store) -> None:
    raised = run(store, over_a_day([TANGJIA]))
    assert len(raised) == 1
    [warning] = warnings(store)
    report = warning.report
    assert warning.proposed_incident_id == raised[0]
    assert (report.category.value, report.subtype.value, report.grade.value) == ("other", "trend_warning", "IV")
    assert report.location.area_code == TANGJIA and report.location.area_name == "唐家社区"
    assert report.dedup_key == f"trend:community:{TANGJIA}:public_health:*"
    assert report.labels["trend_rule"] == "public-health-community-daily"
    evidence = report.attachments[0].data
    # C2 with an empty baseline (sd floored at 1): the 4th report of the day is 4 > 3, and min_count 3 is met
    assert evidence["count"] == 4 and evidence["statistic"] == 4.0 and evidence["threshold"] == 3.0
    assert evidence["baseline"]["mean"] == 0.0 and evidence["limit"] == 3.0
    assert evidence["reports_total"] == 4 and len(evidence["reports"]) == 4
    assert [c["count"] for c in evidence["counts"]][-1] == 4 and len(evidence["counts"]) == 28
    assert "唐家社区今日4 件报告" in report.title
    # every later report alarmed again (daily from the 5th, hourly once an hour held 5): folded into that warning
    alarm = TrendStore(store).alarm("actual", report.dedup_key)
    assert alarm is not None and alarm.incident_id == raised[0] and alarm.alarms > 20
    assert alarm.last_evidence["count"] == 25


def test_the_same_count_spread_over_the_district_raises_none(store: Store) -> None:
    assert run(store, over_a_day(COMMUNITIES)) == []
    assert warnings(store) == []
    trends = TrendStore(store)
    daily = {k.area: n for k, n in trends.series("actual", {"daily": -10**6}) if k.subtype == ""}
    assert daily["4404HT"] == 25 and daily["440402100"] == 25  # the district and the town saw them all
    assert max(daily[c] for c in COMMUNITIES) == 3  # no community more than 3: never above C2's 3


def test_a_usual_level_does_not_alarm_and_a_surge_over_it_does(store: Store) -> None:
    history = [5, 6, 4, 5, 7, 5, 4, 6, 5, 5]  # ten ordinary days before today
    events = [diarrhoea(TANGJIA, NOON - timedelta(days=len(history) - d) + timedelta(minutes=50 * i), i)
              for d, n in enumerate(history) for i in range(n)]
    # A new series starts from an empty baseline (no reports counted is 0 reports): its first busy day alarms.
    [first] = run(store, events)
    [day_one] = [w.report.attachments[0].data for w in warnings(store)]
    assert day_one["count"] == 4 and day_one["counts"][-1]["start"] == "2026-11-21T16:00:00+00:00"  # 00:00 +08:00
    run(store, warnings(store))
    run_command(store, PLANS, first, Command.close, "xu-jing", reason="a new series: its first days")
    # Today: C2's baseline is days t-9..t-3 = 6,4,5,7,5,4,6 (mean 37/7 = 5.2857, sd 1.1127):
    # 8 reports is (8 - 5.2857) / 1.1127 = 2.44, no alarm; the 9th is 3.7143 / 1.1127 = 3.3381 > 3, an alarm.
    # (spread over the day, one report every 50 minutes: the hourly rule's 5 in an hour never happens)
    assert run(store, [diarrhoea(TANGJIA, NOON - timedelta(hours=3) + timedelta(minutes=50 * i), i)
                       for i in range(8)]) == []
    raised = run(store, [diarrhoea(TANGJIA, NOON + timedelta(hours=4, minutes=50 * i), i) for i in range(3)])
    assert len(raised) == 1 and raised[0] != first
    evidence = [w for w in warnings(store) if w.proposed_incident_id == raised[0]][0].report.attachments[0].data
    assert evidence["baseline"]["mean"] == pytest.approx(37 / 7, abs=1e-4)
    assert evidence["baseline"]["sd"] == pytest.approx(1.1127, abs=1e-4)
    assert evidence["count"] == 9 and evidence["statistic"] == pytest.approx(3.3381, abs=1e-4)


def test_one_open_warning_per_series_until_it_is_closed(store: Store) -> None:
    [first] = run(store, over_a_day([TANGJIA], 6))
    # the warning goes through triage like any report: an incident of its own, not counted itself
    [event] = warnings(store)
    assert run(store, [event]) == []
    incident = store.get_incident(first)
    assert incident is not None and incident.source is Source.trend
    assert run(store, [diarrhoea(TANGJIA, NOON + timedelta(hours=1), 99)]) == []  # still open: folded
    run_command(store, PLANS, first, Command.close, "xu-jing", reason="checked: one family's party")
    again = run(store, [diarrhoea(TANGJIA, NOON + timedelta(hours=2), 100)])
    assert len(again) == 1 and again[0] != first


def test_exercise_reports_are_counted_apart_and_a_replay_once(store: Store) -> None:
    drill = [diarrhoea(TANGJIA, NOON + timedelta(minutes=i), i, IncidentStatus.exercise) for i in range(6)]
    raised = run(store, drill)
    assert len(raised) == 1
    assert [w.report.status.value for w in warnings(store)] == ["exercise"]
    trends = TrendStore(store)
    assert trends.series("actual", {"daily": -10**6}) == []
    assert run(store, drill[:3]) == []  # replayed events: triage re-emits, the stage counts nothing again
    [(_, total)] = [(k, n) for k, n in trends.series("exercise", {"daily": -10**6})
                    if k.level == "community" and k.subtype == ""]
    assert total == 6


def test_rules_are_reloaded_when_their_file_changes_and_a_broken_one_is_refused(store: Store, tmp_path: Path) -> None:
    (tmp_path / "trends").mkdir()
    rules_file = tmp_path / "trends" / "rules.yaml"
    w = TrendWatch(None, RAW, PLACER, plans_dir=tmp_path, reload_interval_s=0)
    assert run(store, over_a_day([TANGJIA], 6), w) == []  # no rules: counted, no warning
    rules_file.write_text((PLANS_DIR / "trends" / "rules.yaml").read_text())
    assert len(run(store, over_a_day([COMMUNITIES[1]], 6), w)) == 1  # the shipped rules now watch
    rules_file.write_text("version: 1\nrules:\n  - id: broken\n    level: estate\n    category: public_health\n")
    assert len(run(store, over_a_day([COMMUNITIES[2]], 6), w)) == 1  # refused: the last good rules serve
    rules_file.unlink()
    assert run(store, over_a_day([COMMUNITIES[3]], 6), w) == []  # removed: no rules
    trends = TrendStore(store)
    daily = {k.area: n for k, n in trends.series("actual", {"daily": -10**6})
             if k.level == "community" and k.subtype == ""}
    assert [daily[c] for c in COMMUNITIES[:4]] == [6, 6, 6, 6]  # every report counted all along

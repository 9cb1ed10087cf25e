"""Trend early warning's store (issue 18): reports counted per series and interval, and the warnings raised.

`TrendStore(store)` works on whatever connection the store is bound to: in the triage batch (streams/trends.py via
streams/batches.py) every count and alarm commits with the triage decisions of its batch, so a crash replays the
batch and a report is still counted exactly once (`trend_reports` is keyed by its triage event id).
Counts are upserted per (status, level, area, category, subtype, interval, slot); SQLite and PostgreSQL both take
`INSERT … ON CONFLICT DO UPDATE`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pingan.handlers.trends.series import INTERVALS, AreaRef, SeriesKey, Verdict, evaluate, rule_for, series_of, slot_of
from pingan.schemas.trends import Interval, TrendRule
from pingan.store.repository import Store
from pingan.store.tables import trend_alarms, trend_counts, trend_reports

SERIES_COLUMNS = ("status", "level", "area", "category", "subtype", "interval")


@dataclass(frozen=True)
class AlarmRow:
    status: str
    dedup_key: str
    incident_id: str
    event_id: str
    raised_at: datetime
    last_alarm_at: datetime
    alarms: int
    last_evidence: dict[str, Any]


_UPSERTS: dict[str, Any] = {}


def _upsert(conn: Connection, values: list[dict[str, Any]]) -> None:
    """Add each row's count to its slot: one statement, compiled once per dialect and run as an executemany (a
    multi-VALUES statement was compiled anew for every report: 7 ms a report on SQLite)."""
    stmt = _UPSERTS.get(conn.dialect.name)
    if stmt is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(trend_counts)
        stmt = _UPSERTS[conn.dialect.name] = insert.on_conflict_do_update(
            index_elements=[*SERIES_COLUMNS, "slot"], set_={"count": trend_counts.c.count + insert.excluded.count})
    conn.execute(stmt, values)


class TrendStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def record(self, event_id: str, incident_id: str | None, status: str, category: str, subtype: str,
               path: Sequence[AreaRef], at: datetime, scale: float = 1.0) -> list[tuple[SeriesKey, int]]:
        """Count one report in every series of its path. The caller counts a triage decision once, when it is made
        (a replayed event is not offered again); the event id's primary key makes a second count fail the batch
        rather than count twice."""
        slots = {iv.value: slot_of(at, iv, scale) for iv in INTERVALS}
        with self.engine.begin() as conn:
            conn.execute(trend_reports.insert().values(
                event_id=event_id, incident_id=incident_id, status=status, category=category, subtype=subtype,
                areas=" " + " ".join(a.code for a in path) + " ", hourly_slot=slots["hourly"],
                daily_slot=slots["daily"], at=at))
            keys = [(k, slots[k.interval]) for k in series_of(status, category, subtype, path)]
            if keys:
                _upsert(conn, [{**{c: getattr(k, c) for c in SERIES_COLUMNS}, "slot": s, "count": 1}
                               for k, s in keys])
        return keys

    def counts(self, key: SeriesKey, last_slot: int, n: int) -> list[int]:
        """The series' counts of slots last_slot-n+1 … last_slot, oldest first; a slot without a row is 0."""
        first = last_slot - n + 1
        with self.engine.connect() as conn:
            rows = conn.execute(select(trend_counts.c.slot, trend_counts.c.count).where(
                and_(*[getattr(trend_counts.c, c) == getattr(key, c) for c in SERIES_COLUMNS],
                     trend_counts.c.slot >= first, trend_counts.c.slot <= last_slot))).all()
        found = {r.slot: r.count for r in rows}
        return [found.get(s, 0) for s in range(first, last_slot + 1)]

    def counts_many(self, wanted: Sequence[tuple[SeriesKey, int, int]]) -> list[list[int]]:
        """counts() of several (key, last_slot, n) in one query: a report's watched series are read together."""
        if not wanted:
            return []
        clauses = [and_(*[getattr(trend_counts.c, c) == getattr(key, c) for c in SERIES_COLUMNS],
                        trend_counts.c.slot >= last - n + 1, trend_counts.c.slot <= last) for key, last, n in wanted]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*[getattr(trend_counts.c, c) for c in SERIES_COLUMNS], trend_counts.c.slot,
                                       trend_counts.c.count).where(or_(*clauses))).all()
        found = {(SeriesKey(*[getattr(r, c) for c in SERIES_COLUMNS]), r.slot): r.count for r in rows}
        return [[found.get((key, s), 0) for s in range(last - n + 1, last + 1)] for key, last, n in wanted]

    def reports_in(self, key: SeriesKey, slot: int) -> list[tuple[str, str | None]]:
        """(event id, incident id) of the reports counted in the series' slot, oldest first."""
        column = trend_reports.c.hourly_slot if key.interval == Interval.hourly.value else trend_reports.c.daily_slot
        conditions = [trend_reports.c.status == key.status, column == slot,
                      trend_reports.c.category == key.category, trend_reports.c.areas.like(f"% {key.area} %")]
        if key.subtype:
            conditions.append(trend_reports.c.subtype == key.subtype)
        with self.engine.connect() as conn:
            rows = conn.execute(select(trend_reports.c.event_id, trend_reports.c.incident_id)
                                .where(and_(*conditions)).order_by(trend_reports.c.at)).all()
        return [(r.event_id, r.incident_id) for r in rows]

    def alarm(self, status: str, dedup_key: str) -> AlarmRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(trend_alarms).where(and_(trend_alarms.c.status == status,
                                                               trend_alarms.c.dedup_key == dedup_key))).first()
        return _alarm_row(row) if row is not None else None

    def raised(self, status: str, dedup_key: str, incident_id: str, event_id: str, at: datetime,
               evidence: dict[str, Any]) -> None:
        """A new warning for this key: replaces the row of an earlier, closed one."""
        with self.engine.begin() as conn:
            conn.execute(trend_alarms.delete().where(and_(trend_alarms.c.status == status,
                                                          trend_alarms.c.dedup_key == dedup_key)))
            conn.execute(trend_alarms.insert().values(status=status, dedup_key=dedup_key, incident_id=incident_id,
                                                      event_id=event_id, raised_at=at, last_alarm_at=at, alarms=1,
                                                      last_evidence=json.dumps(evidence, ensure_ascii=False)))

    def alarmed_again(self, status: str, dedup_key: str, at: datetime, evidence: dict[str, Any]) -> None:
        """The open warning's series alarmed again: counted and its evidence kept, no second incident."""
        with self.engine.begin() as conn:
            conn.execute(update(trend_alarms).where(and_(trend_alarms.c.status == status,
                                                         trend_alarms.c.dedup_key == dedup_key))
                         .values(alarms=trend_alarms.c.alarms + 1, last_alarm_at=at,
                                 last_evidence=json.dumps(evidence, ensure_ascii=False)))

    def alarms(self, status: str) -> list[AlarmRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(trend_alarms).where(trend_alarms.c.status == status)
                                .order_by(trend_alarms.c.last_alarm_at.desc())).all()
        return [_alarm_row(r) for r in rows]

    def series(self, status: str, since_slot: dict[str, int], *, area: str | None = None,
               category: str | None = None) -> list[tuple[SeriesKey, int]]:
        """Every series with a count since the given slot of its interval, with its total there."""
        out: list[tuple[SeriesKey, int]] = []
        with self.engine.connect() as conn:
            for interval, first in since_slot.items():
                conditions = [trend_counts.c.status == status, trend_counts.c.interval == interval,
                              trend_counts.c.slot >= first]
                if area:
                    conditions.append(trend_counts.c.area == area)
                if category:
                    conditions.append(trend_counts.c.category == category)
                rows = conn.execute(select(*[getattr(trend_counts.c, c) for c in SERIES_COLUMNS],
                                           func.sum(trend_counts.c.count).label("total"))
                                    .where(and_(*conditions))
                                    .group_by(*[getattr(trend_counts.c, c) for c in SERIES_COLUMNS])).all()
                out += [(SeriesKey(*[getattr(r, c) for c in SERIES_COLUMNS]), int(r.total)) for r in rows]
        return sorted(out)


def _alarm_row(row: Any) -> AlarmRow:
    return AlarmRow(row.status, row.dedup_key, row.incident_id, row.event_id, row.raised_at, row.last_alarm_at,
                    row.alarms, json.loads(row.last_evidence))


@dataclass(frozen=True)
class SeriesView:
    """One series as `pingan trends` shows it: its recent counts, its rule and what the rule says now."""

    key: SeriesKey
    counts: list[int]  # oldest first; the last is the current interval
    rule: TrendRule | None
    verdict: Verdict | None


def current_series(store: Store, rules: Sequence[TrendRule], now: datetime, *, status: str = "actual",
                   area: str | None = None, category: str | None = None, watched_only: bool = False,
                   scale: float = 1.0, shown: int = 14) -> list[SeriesView]:
    """Every series with a report in the last 28 days (48 hours for hourly ones), with its detector's verdict now."""
    trends = TrendStore(store)
    current = {iv.value: slot_of(now, iv, scale) for iv in INTERVALS}
    since = {"daily": current["daily"] - 27, "hourly": current["hourly"] - 47}
    views: list[SeriesView] = []
    for key, _ in trends.series(status, since, area=area, category=category):
        rule = rule_for(rules, key)
        if watched_only and rule is None:
            continue
        history = trends.counts(key, current[key.interval], max(rule.history if rule else 0, shown))
        verdict = evaluate(rule, history) if rule is not None else None
        views.append(SeriesView(key, history[-shown:], rule, verdict))
    return views

"""Reading one area of the district (issue 18, part 5): its open incidents, its report and incident counts of the
last 24 hours and 7 days by category, and its trend series and warnings. Read-only; `GET /v1/areas/{code}`,
`pingan areas CODE` and the console's area page all call `area_detail`.

- An incident is in an area when triage's placement path (`location.placement.path`) names the area's code: a
  community holds its grids' incidents. The incidents table has no area column (the path lives in the body), so the
  open incidents and the window's incidents are read and filtered here; both are bounded by state or time.
- Reports are the trend stage's count (`trend_reports`: every triaged report with the codes of its path), so 25
  texts joined to one incident are 25 reports and one incident.
- `only`: the incident ids a department liaison may see (store/access.py). They then see only those incidents, the
  reports behind them, no trend series (district-wide counts of other departments' events) and only the warnings
  that are theirs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, select

from pingan.schemas.area_view import AlarmOut, AreaDetail, AreaNode, CategoryCount, SeriesOut, WindowCounts, path_to
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import IncidentState, IncidentStatus
from pingan.schemas.trends import TrendRule
from pingan.store.repository import Store
from pingan.store.tables import incidents, trend_reports
from pingan.store.trends import TrendStore, current_series

WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)))
OPEN_SHOWN = 200  # the area's open incidents listed, most severe first; the counts count them all


def statuses(exercise: bool) -> list[str]:
    return [IncidentStatus.actual.value, IncidentStatus.exercise.value] if exercise else [IncidentStatus.actual.value]


def placed_in(incident: Incident, code: str) -> bool:
    placement = incident.location.placement if incident.location else None
    return placement is not None and any(a.code == code for a in placement.path)


def open_incidents_in(engine: Engine, code: str, status: Sequence[str],
                      only: Collection[str] | None = None) -> list[Incident]:
    """The area's open incidents, most severe grade first, then the longest waiting."""
    with engine.connect() as conn:
        bodies = conn.scalars(select(incidents.c.body).where(and_(
            incidents.c.status.in_(status), incidents.c.state != IncidentState.closed.value))).all()
    found = [i for i in (Incident.model_validate_json(b) for b in bodies)
             if placed_in(i, code) and (only is None or i.id in only)]
    grade_rank = {"I": 1, "II": 2, "III": 3, "IV": 4}
    return sorted(found, key=lambda i: (grade_rank.get(str(getattr(i.grade, "value", i.grade)), 5), i.received_at))


def window_counts(engine: Engine, code: str, now: datetime, status: Sequence[str],
                  only: Collection[str] | None = None) -> list[WindowCounts]:
    widest = now - max(d for _, d in WINDOWS)
    with engine.connect() as conn:
        report_rows = conn.execute(select(trend_reports.c.incident_id, trend_reports.c.category, trend_reports.c.at)
                                   .where(and_(trend_reports.c.status.in_(status), trend_reports.c.at >= widest,
                                               trend_reports.c.at <= now,
                                               trend_reports.c.areas.like(f"% {code} %")))).all()
        bodies = conn.scalars(select(incidents.c.body).where(and_(
            incidents.c.status.in_(status), incidents.c.received_at >= widest,
            incidents.c.received_at <= now))).all()
    placed = [i for i in (Incident.model_validate_json(b) for b in bodies)
              if placed_in(i, code) and (only is None or i.id in only)]
    out: list[WindowCounts] = []
    for name, span in WINDOWS:
        since = now - span
        reports = Counter(r.category for r in report_rows
                          if r.at >= since and (only is None or r.incident_id in only))
        made = Counter(str(getattr(i.category, "value", i.category)) for i in placed if i.received_at >= since)
        out.append(WindowCounts(
            window=name, since=since, reports=sum(reports.values()), incidents=sum(made.values()),
            by_category=[CategoryCount(category=c, reports=reports[c], incidents=made[c])
                         for c in sorted(reports.keys() | made.keys())]))
    return out


def area_series(store: Store, rules: Sequence[TrendRule], code: str, now: datetime, status: Sequence[str],
                scale: float = 1.0) -> list[SeriesOut]:
    out: list[SeriesOut] = []
    for s in status:
        for v in current_series(store, rules, now, status=s, area=code, scale=scale):
            verdict = v.verdict
            out.append(SeriesOut(
                status=v.key.status, level=v.key.level, category=v.key.category, subtype=v.key.subtype,
                interval=v.key.interval, counts=v.counts, rule=v.rule.id if v.rule else None,
                detector=verdict.detector if verdict else None,
                baseline_mean=verdict.baseline.mean if verdict else None,
                baseline_sd=verdict.baseline.sd if verdict else None,
                statistic=verdict.statistic if verdict else None, threshold=verdict.threshold if verdict else None,
                alarm=bool(verdict and verdict.alarm)))
    return out


def area_alarms(store: Store, code: str, status: Sequence[str], only: Collection[str] | None = None) -> list[AlarmOut]:
    trends = TrendStore(store)
    return [AlarmOut(status=a.status, key=a.dedup_key, incident_id=a.incident_id, raised_at=a.raised_at,
                     last_alarm_at=a.last_alarm_at, alarms=a.alarms, evidence=a.last_evidence)
            for s in status for a in trends.alarms(s)
            if a.dedup_key.split(":")[2:3] == [code] and (only is None or a.incident_id in only)]


def area_detail(store: Store, nodes: dict[str, AreaNode], code: str, now: datetime, rules: Sequence[TrendRule], *,
                exercise: bool = False, only: Collection[str] | None = None, scale: float = 1.0) -> AreaDetail:
    """One area as read now. `nodes`: the district's areas by code (schemas/area_view.area_nodes); the caller
    answers an unknown code (404) before calling."""
    area = nodes[code]
    status = statuses(exercise)
    opened = open_incidents_in(store.engine, code, status, only)
    return AreaDetail(
        area=area, path=path_to(nodes, code), children=[nodes[c] for c in area.children if c in nodes],
        exercise=exercise, open_incidents=opened[:OPEN_SHOWN], open_total=len(opened),
        counts=window_counts(store.engine, code, now, status, only),
        series=[] if only is not None else area_series(store, rules, code, now, status, scale),
        alarms=area_alarms(store, code, status, only))


def open_counts_by_area(engine: Engine, codes: Collection[str], status: Sequence[str],
                        only: Collection[str] | None = None) -> dict[str, int]:
    """How many open incidents each of these areas holds (the console's list of communities)."""
    wanted = set(codes)
    with engine.connect() as conn:
        bodies = conn.scalars(select(incidents.c.body).where(and_(
            incidents.c.status.in_(status), incidents.c.state != IncidentState.closed.value))).all()
    counts: Counter[str] = Counter()
    for body in bodies:
        incident = Incident.model_validate_json(body)
        placement = incident.location.placement if incident.location else None
        if placement is None or (only is not None and incident.id not in only):
            continue
        counts.update({a.code for a in placement.path} & wanted)
    return dict(counts)


def report_counts_by_area(engine: Engine, codes: Collection[str], since: datetime,
                          status: Sequence[str]) -> dict[str, int]:
    """Reports counted in each of these areas since a time (one query per area: the list is a town's communities)."""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for code in codes:
            out[code] = int(conn.scalar(select(func.count()).select_from(trend_reports).where(and_(
                trend_reports.c.status.in_(status), trend_reports.c.at >= since,
                trend_reports.c.areas.like(f"% {code} %")))) or 0)
    return out

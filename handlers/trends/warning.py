"""The trend-warning report a series' alarm becomes: other/trend_warning, grade IV, with its evidence.

It goes through intake's outbox like any report (streams/trends.py), so triage, the plan (plans/trend-warning.yaml),
notification and the log treat it as every other incident. Its dedup key is the series' area and kind
(SeriesKey.dedup_key), and the stage raises one only when no warning of that key is open, so a surge that alarms
interval after interval stays one incident; the later alarms are kept with the series (`pingan trends`).

The evidence is in the report three ways: a one-line title for the duty room, labels for filters and plans
(`trend_*`), and an attachment `trend_evidence` with the whole series, the baseline, the threshold and the reports
behind the alarm (their event and incident ids, up to MAX_REPORTS).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pingan.handlers.trends.series import SeriesKey, Verdict
from pingan.schemas.incident import Attachment, IncidentReport, Location
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source, Subtype
from pingan.schemas.trends import TrendRule

MAX_REPORTS = 200
INTERVAL_WORDS = {"daily": ("今日", "today"), "hourly": ("本小时", "this hour")}


def warning_report(rule: TrendRule, key: SeriesKey, verdict: Verdict, counts: Sequence[int],
                   slot_starts: Sequence[datetime], area_name: str | None,
                   reports: Sequence[tuple[str, str | None]]) -> IncidentReport:
    """`counts` and `slot_starts`: the series read back, oldest first, the last the current interval; `reports`:
    (event id, incident id) of the reports counted in the current interval."""
    where = area_name or key.area
    when_zh, when_en = INTERVAL_WORDS.get(key.interval, (key.interval, key.interval))
    name_zh = rule.name.zh if rule.name else f"{key.category}/{key.subtype or '*'} 报告激增"
    name_en = (rule.name.en if rule.name and rule.name.en else None) or f"{key.category}/{key.subtype or '*'} surge"
    base = verdict.baseline
    test = f"{verdict.detector} {verdict.statistic:.2f} > {verdict.threshold:g}"
    title = (f"{name_zh}：{where}{when_zh}{verdict.count} 件报告，基线均值 {base.mean:.1f}（{test}）")
    description = (
        f"{name_zh}。{where}（{key.level} {key.area}）{when_zh}收到 {verdict.count} 件 {key.category}"
        f"{'/' + key.subtype if key.subtype else ''} 报告；基线（第 {base.first + 1}–{base.last + 1} 个时段）均值 "
        f"{base.mean:.2f}、标准差 {base.sd:.2f}（下限 {rule.min_sigma:g}），检测器 {test}，单独超过 "
        f"{verdict.limit:.1f} 件即预警。\n"
        f"{name_en}. {where} ({key.level} {key.area}) has {verdict.count} {key.category}"
        f"{'/' + key.subtype if key.subtype else ''} reports {when_en}; baseline mean {base.mean:.2f}, sd "
        f"{base.sd:.2f} (floor {rule.min_sigma:g}); {test}; alone, more than {verdict.limit:.1f} reports alarm.")
    evidence = {
        "series": {"status": key.status, "level": key.level, "area": key.area, "area_name": area_name,
                   "category": key.category, "subtype": key.subtype or None, "interval": key.interval},
        "rule": rule.id, "detector": verdict.detector, "statistic": round(verdict.statistic, 4),
        "threshold": verdict.threshold, "min_count": verdict.min_count, "count": verdict.count,
        "baseline": {"mean": round(base.mean, 4), "sd": round(base.sd, 4), "sigma": round(base.sigma, 4),
                     "intervals": [slot_starts[i].isoformat() for i in (base.first, base.last)]},
        "limit": round(verdict.limit, 4),
        "counts": [{"start": s.isoformat(), "count": c} for s, c in zip(slot_starts, counts, strict=True)],
        "reports": [{"event_id": e, "incident_id": i} for e, i in reports[:MAX_REPORTS]],
        "reports_total": len(reports),
    }
    labels = {"trend_rule": rule.id, "trend_level": key.level, "trend_area": key.area,
              "trend_category": key.category, "trend_subtype": key.subtype or "*", "trend_interval": key.interval,
              "trend_detector": verdict.detector, "trend_statistic": f"{verdict.statistic:.2f}",
              "trend_threshold": f"{verdict.threshold:g}", "trend_count": str(verdict.count),
              "trend_baseline_mean": f"{base.mean:.2f}"}
    return IncidentReport(
        source=Source.trend, status=IncidentStatus(key.status), category=Category.other,
        subtype=Subtype.trend_warning, grade=Grade.IV, title=title[:500], description=description,
        location=Location(area_code=key.area, area_name=area_name), dedup_key=key.dedup_key(), labels=labels,
        attachments=[Attachment(kind="trend_evidence", title=key.label(), data=evidence)])

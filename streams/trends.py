"""The trend early-warning stage (趋势预警, issue 18): count every triaged report, run each watched series' detector
on its new count, and raise a trend-warning incident through the outbox when one alarms.

It runs inside the triage batch (streams/batches.py), on the batch's one transaction, right after each event's
triage: the count, the detector's read-back and an alarm's outbox row commit with the triage decision or not at all,
and a replayed event is not counted again (store/trends.py keys counts by the triage event id). The pure parts are
pingan.handlers.trends (series, detectors, the warning's text and evidence); the rules are plans/trends/rules.yaml.

- What counts: reports (kind `report`) that triage created an incident from or joined to one, of every source but
  the trend stage itself; exercise and test reports in series of their own status. Reports, not incidents: 25
  texts that join one food-poisoning incident are 25 in the count.
- Where: the report's placement in the district's hierarchy (handlers/incidents/placement.py: district, town,
  community, grid), else its area code (its level read from the code's length, 6/9/12/15 digits), else the
  district only.
- When: the report's intake time, on the report's clock (a drill's speed, else PINGAN_ESCALATION_TIME_SCALE), so a
  compressed stack or drill compresses the intervals too.
- One warning per series' area and kind: an alarm whose key has a warning still open (or not yet triaged) is added
  to that warning's row (`pingan trends` shows how many and the latest evidence), never a second incident; once the
  duty officer closes it, the next alarm raises a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pingan.bootstrap import Services
from pingan.handlers.incidents.placement import Placer
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.handlers.plans.problems import Severity
from pingan.handlers.trends.series import AreaRef, SeriesKey, Verdict, evaluate, rule_for, slot_start
from pingan.handlers.trends.warning import warning_report
from pingan.schemas.areas import Placement
from pingan.schemas.events import IntakeItem, RawEvent, RawKind, TriageOutcome
from pingan.schemas.incident import IncidentReport
from pingan.schemas.taxonomy import IncidentState, Source
from pingan.schemas.trends import TREND_RULES_FILE, Interval, TrendRule, TrendRules
from pingan.store.drills import DrillStore
from pingan.store.repository import Store
from pingan.store.trends import TrendStore
from pingan.streams import topics
from pingan.streams.stages import StageOutput

log = logging.getLogger(__name__)

LEVEL_BY_CODE_LENGTH = {6: "district", 9: "town", 12: "community", 15: "grid"}  # GB/T 2260 and 统计用区划代码


@dataclass(frozen=True)
class Place:
    path: list[AreaRef]
    names: dict[str, str]  # code -> name (zh first)


def place_of(report: IncidentReport, placer: Placer | None, placed: Placement | None = None) -> Place:
    """The areas a report counts in, widest first. `placed`: where triage already placed it (a new incident's
    placement is its first report's), else the placer places it now."""
    placement = placed or report.location.placement or (placer.place(report) if placer is not None else None)
    if placement is not None and placement.path:
        areas = [a for a in placement.path if a.level]
        return Place([AreaRef(a.code, a.level or "") for a in areas],
                     {a.code: a.name_zh or a.name_en or a.code for a in areas})
    code = report.location.area_code
    if code and len(code) in LEVEL_BY_CODE_LENGTH:
        path = [AreaRef(code[:n], level) for n, level in sorted(LEVEL_BY_CODE_LENGTH.items()) if n <= len(code)]
        return Place(path, {code: report.location.area_name or code})
    if placer is not None:
        root = placer.root
        return Place([AreaRef(root.code, root.level or "district")], {root.code: root.name_zh or root.code})
    return Place([], {})


class TrendWatch:
    """The stage, with what it was started with: the rules, the district's hierarchy and the stack's clock.

    With `plans_dir`, the rules file is looked at again at most every `reload_interval_s` (its mtime and size) and
    reloaded when it changed, as the plans are: a file with errors is refused (logged) and the last good rules go on
    serving; a removed file is no rules. Reports are counted with or without rules, so a rule added later starts
    from the history."""

    def __init__(self, rules: TrendRules | None, raw_topic: str, placer: Placer | None = None,
                 time_scale: float = 1.0, plans_dir: Path | None = None, reload_interval_s: float = 1.0) -> None:
        """`raw_topic`: intake's topic with the stack's prefix (settings.topic(topics.RAW))."""
        self.rules: Sequence[TrendRule] = rules.rules if rules is not None else ()
        self.placer = placer
        self.time_scale = time_scale
        self.raw_topic = raw_topic
        self.plans_dir = plans_dir
        self.reload_interval_s = reload_interval_s
        self._seen = self._stamp()
        self._checked = time.monotonic()

    def _stamp(self) -> tuple[int, int] | None:
        if self.plans_dir is None:
            return None
        try:
            stat = (self.plans_dir / TREND_RULES_FILE).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def refresh(self) -> None:
        """Reload the rules if their file changed since it was last read (at most every reload_interval_s)."""
        if self.plans_dir is None or time.monotonic() - self._checked < self.reload_interval_s:
            return
        self._checked = time.monotonic()
        stamp = self._stamp()
        if stamp == self._seen:
            return
        self._seen = stamp
        rules, problems = read_trend_rules(self.plans_dir)
        errors = [p for p in problems if p.severity is Severity.error]
        if errors:
            log.error("trend rules not reloaded, the last good ones serve: %s", "; ".join(str(p) for p in errors))
            return
        self.rules = rules.rules if rules is not None else ()
        log.info("trend rules reloaded: %d rules", len(self.rules))

    def observe(self, store: Store, event: RawEvent, out: StageOutput) -> list[str]:
        """Count one triaged event and run the detectors it moved; the ids of warnings raised."""
        self.refresh()
        if event.kind is not RawKind.report or event.report.source is Source.trend or not out.incident_events:
            return []
        if not out.actions:  # a replay: triage re-emitted its earlier decision, which was counted with it
            return []
        emitted = out.incident_events[0]
        if emitted.outcome not in (TriageOutcome.created, TriageOutcome.correlated):
            return []
        report = event.report
        created = emitted.outcome is TriageOutcome.created
        place = place_of(report, self.placer, emitted.incident.location.placement if created else None)
        if not place.path:
            return []
        scale = DrillStore(store).clock_of(report, self.time_scale)
        trends = TrendStore(store)
        moved = trends.record(event.event_id, emitted.incident.id, report.status.value, report.category.value,
                              report.subtype.value, place.path, event.received_at, scale)
        raised: list[str] = []
        watched = [(key, slot, rule) for key, slot in moved if (rule := rule_for(self.rules, key)) is not None]
        histories = trends.counts_many([(key, slot, rule.history) for key, slot, rule in watched])
        for (key, slot, rule), counts in zip(watched, histories, strict=True):
            verdict = evaluate(rule, counts)
            if verdict is None or not verdict.alarm:
                continue
            incident_id = self._alarm(store, trends, rule, key, slot, counts, verdict, scale,
                                      place.names.get(key.area), event)
            if incident_id:
                raised.append(incident_id)
        return raised

    def _alarm(self, store: Store, trends: TrendStore, rule: TrendRule, key: SeriesKey, slot: int,
               counts: list[int], verdict: Verdict, scale: float, area_name: str | None,
               event: RawEvent) -> str | None:
        dedup = key.dedup_key()
        evidence = {"series": key.label(), "rule": rule.id, "detector": verdict.detector,
                    "statistic": round(verdict.statistic, 4), "threshold": verdict.threshold,
                    "count": verdict.count, "baseline_mean": round(verdict.baseline.mean, 4),
                    "limit": round(verdict.limit, 4), "event_id": event.event_id}
        open_one = trends.alarm(key.status, dedup)
        if open_one is not None:
            incident = store.get_incident(open_one.incident_id)
            if incident is None or incident.state is not IncidentState.closed:  # open, or not triaged yet
                trends.alarmed_again(key.status, dedup, event.received_at, evidence)
                return None
        interval = Interval(key.interval)
        starts = [slot_start(s, interval, scale) for s in range(slot - len(counts) + 1, slot + 1)]
        report = warning_report(rule, key, verdict, counts, starts, area_name, trends.reports_in(key, slot))
        report = report.model_copy(update={"labels": {**report.labels, **_drill_labels(event.report)}})
        accepted = store.accept(IntakeItem(report=report), self.raw_topic)
        trends.raised(key.status, dedup, accepted.incident_id, accepted.event_id, event.received_at, evidence)
        log.info("trend warning %s: %s alarmed (%s %.2f > %g, %d reports)", accepted.incident_id, key.label(),
                 verdict.detector, verdict.statistic, verdict.threshold, verdict.count)
        return accepted.incident_id


def _drill_labels(report: IncidentReport) -> dict[str, str]:
    """An exercise warning stays with its drill run (its clock, its sandbox)."""
    return {k: v for k, v in report.labels.items() if k == "drill_run"}


class TrendRulesError(ValueError):
    """The rules file has errors: the worker does not start, as with a broken plan or district file."""


def trend_watch(services: Services) -> TrendWatch:
    """The stage as the worker runs it: the plans directory's trends/rules.yaml (none: counting only, no warnings),
    reloaded when it changes; the placer bootstrap built; the stack's clock. Warnings in the file are logged; errors
    stop the start with file:line:col."""
    settings = services.settings
    rules, problems = read_trend_rules(settings.plans_dir)
    errors = [p for p in problems if p.severity is Severity.error]
    if errors:
        raise TrendRulesError("trend rules: " + "; ".join(str(p) for p in errors))
    for problem in problems:
        log.warning("trend rules: %s", problem)
    if rules is None or not rules.rules:
        log.info("trend early warning: no rules in %s (reports are counted, no warning is raised)",
                 settings.plans_dir / TREND_RULES_FILE)
    else:
        log.info("trend early warning: %d rules", len(rules.rules))
    return TrendWatch(rules, settings.topic(topics.RAW), services.placer, settings.escalation_time_scale,
                      settings.plans_dir, settings.plan_reload_interval_s)

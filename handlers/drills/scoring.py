"""Scoring a drill (演练评分): what the plan said would happen by when, against what the command-chain log shows. Pure.

Inputs are the plan set, one incident's GET /v1/incidents/{id} body (incident + timeline) and the drill's speed,
which its incidents' clocks ran at (real seconds x scale / 60 = plan minutes). Per level the incident ran at (each
`plan_activated` starts one; a grade change re-plans), per notify step:

- notification: target minute = the step's worst-case run time from handlers.timeline.step_schedule (its
  delay_min, or earlier when the step before it went unacknowledged: an escalation), or delay_min when the step
  before was acknowledged in time; actual = the first `notified` entry of that step. met when actual <= target +
  tolerance, late after, missed when it never came although it was due; not_due when the level ended (grade
  change, end of the drill) before the target.
- acknowledgement (steps with ack_timeout_min, roll calls excluded): met when one of the step's recipients
  acknowledged within the first window, late within the last repeat window, missed otherwise, with the
  escalations and repeats that followed listed; n/a when the incident was already acknowledged before the step ran.

Figures: time to first notification and to first acknowledgement (from the first activation), escalations taken,
roll-call completion, tasks done by their deadline (a `task_done` entry: `pingan task`, POST …/task, or a scenario
command; met by the deadline + tolerance, late after, missed when never done though due). Failures: wrong plan (vs the
scenario's expectation), wrong final grade, a grade rule (correlated_reports within within_min) that held but the
grade was not raised, a notification to someone the plan's targets do not reach.

Score = 100 x met checks / scored checks - 10 x failures, clamped to 0..100 (SCORE_FORMULA).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pingan.handlers.plans.directory import DirectoryIndex, resolve
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.timeline import step_schedule
from pingan.schemas.areas import Placement
from pingan.schemas.plan import Level, Plan
from pingan.schemas.taxonomy import Grade

SCORE_FORMULA = {
    "zh": "得分 = 100 × 达标检查项 / 计分检查项 − 10 × 失误数，取值 0–100。检查项：各步骤通知是否按时、"
          "设有确认时限的步骤是否在首个时限内确认、已到期限的任务是否按时完成。",
    "en": "score = 100 × checks met / checks scored − 10 × failures, clamped to 0–100. Checks: each notify step "
          "on time; each step with an acknowledgement window acknowledged within its first window; each task due "
          "done by its deadline.",
}
FAILURE_PENALTY = 10
GRADE_RANK = {Grade.I: 4, Grade.II: 3, Grade.III: 2, Grade.IV: 1}
Locate = Callable[[str, tuple[str | int, ...]], str | None]


def _at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Clock:
    """Plan minutes between two log times, at the drill's speed (its incidents' clock)."""

    scale: float

    def minutes(self, start: datetime, end: datetime) -> float:
        return round((end - start).total_seconds() * self.scale / 60.0, 2)


def _epochs(timeline: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Each plan_activated entry with its index: one epoch per level the incident ran at."""
    return [(a, i) for i, a in enumerate(timeline) if a["kind"] == "plan_activated"]


def _level_loc(plan: Plan, level: Level) -> int:
    return next(i for i, lv in enumerate(plan.levels) if lv.grade == level.grade)


def score_incident(inject_id: str, body: dict[str, Any], plans: PlanSet, *, time_scale: float,
                   ended_at: datetime, drill_started_at: datetime, expect_plan: str | None = None,
                   expect_grade: Grade | None = None, tolerance_min: float = 1.0,
                   locate: Locate | None = None) -> dict[str, Any]:
    clock = Clock(time_scale)
    incident = body.get("incident") or {}
    timeline: list[dict[str, Any]] = body.get("timeline") or []
    failures: list[dict[str, Any]] = []
    notes: list[str] = []
    out: dict[str, Any] = {
        "inject": inject_id, "incident_id": incident.get("id"), "title": incident.get("title"),
        "status": incident.get("status"), "grade": incident.get("grade"), "state": incident.get("state"),
        "report_count": incident.get("report_count"), "plan_id": None, "levels": [], "failures": failures,
        "notes": notes, "checks": {"scored": 0, "met": 0},
    }
    epochs = _epochs(timeline)
    no_plan = next((a for a in timeline if a["kind"] == "no_plan"), None)
    if not epochs:
        if no_plan is not None:
            notes.append("no plan matched: " + str(no_plan["details"].get("reason", "")))
        if expect_plan and expect_plan != "auto":
            failures.append({"kind": "wrong_plan", "expected": expect_plan, "actual": None,
                             "message": f"expected plan {expect_plan}, no plan was activated", "where": None})
        out["figures"] = _figures(timeline, None, clock, [])
        return out
    plan_id = epochs[0][0].get("plan_id") or epochs[0][0]["details"].get("plan")
    out["plan_id"] = plan_id
    out["plan_file"] = plans.sources.get(plan_id or "")
    if expect_plan and expect_plan != "auto" and plan_id != expect_plan:
        failures.append({"kind": "wrong_plan", "expected": expect_plan, "actual": plan_id,
                         "message": f"expected plan {expect_plan}, {plan_id} was activated",
                         "where": plans.sources.get(expect_plan)})
    final_grade = incident.get("grade")
    if expect_grade is not None and final_grade != expect_grade.value:
        failures.append({"kind": "wrong_grade", "expected": expect_grade.value, "actual": final_grade,
                         "message": f"expected to end at grade {expect_grade.value}, ended at {final_grade}",
                         "where": None})
    plan = plans.get(plan_id or "")
    first_activation = _at(epochs[0][0]["at"])
    all_escalations: list[dict[str, Any]] = []
    for n, (activation, index) in enumerate(epochs):
        start = _at(activation["at"])
        end_index = epochs[n + 1][1] if n + 1 < len(epochs) else len(timeline)
        end = _at(epochs[n + 1][0]["at"]) if n + 1 < len(epochs) else ended_at
        entries = timeline[index + 1:end_index]
        grade = activation["details"].get("level")
        level = plan.level(Grade(grade)) if plan and grade else None
        if plan is None or level is None:
            notes.append(f"plan {plan_id} level {grade} is not in the loaded plan set; not scored")
            continue
        scored = _score_level(plan, level, start, end, entries, timeline[:end_index], clock, tolerance_min,
                              plans.directory, locate, _placement(incident))
        scored["drill_start_min"] = clock.minutes(drill_started_at, start)
        scored["drill_end_min"] = clock.minutes(drill_started_at, end)
        scored["level_start_min"] = clock.minutes(first_activation, start)
        out["levels"].append(scored)
        failures.extend(scored.pop("failures"))
        all_escalations.extend(scored["escalations"])
        results = [check[key]["result"] for check in scored["steps"] for key in ("notify", "ack") if check.get(key)]
        for result in results + [t["result"] for t in scored["tasks"]]:
            if result in ("met", "late", "missed"):
                out["checks"]["scored"] += 1
                out["checks"]["met"] += result == "met"
    if plan is not None:
        failures.extend(_grade_rules(plan, timeline, final_grade, clock))
    out["figures"] = _figures(timeline, first_activation, clock, all_escalations)
    out["figures"]["roll_call"] = _sum_roll_calls(out["levels"])
    every_task = [t for lv in out["levels"] for t in lv["tasks"]]
    out["figures"]["tasks"] = {"total": len(every_task),
                               "done": sum(1 for t in every_task if t["actual_min"] is not None),
                               "done_by_deadline": sum(1 for t in every_task if t["result"] == "met"),
                               "due": sum(1 for t in every_task if t["result"] != "not_due")}
    out["score"] = overall([out])
    return out


def _placement(incident: dict[str, Any]) -> Placement | None:
    """Where triage placed the incident, for the plan's area targets (a grid's officer is in the plan there)."""
    raw = (incident.get("location") or {}).get("placement")
    try:
        return Placement.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _score_level(plan: Plan, level: Level, start: datetime, end: datetime, entries: list[dict[str, Any]],
                 upto: list[dict[str, Any]], clock: Clock, tolerance: float, directory: DirectoryIndex,
                 locate: Locate | None, placement: Placement | None = None) -> dict[str, Any]:
    li = _level_loc(plan, level)
    span = clock.minutes(start, end)
    rel = {id(a): clock.minutes(start, _at(a["at"])) for a in entries}
    notified = [a for a in entries if a["kind"] == "notified"]
    acks = [a for a in entries if a["kind"] == "acknowledged"]
    acked_before = [a for a in upto if a["kind"] == "acknowledged" and _at(a["at"]) <= start]
    escalated = [a for a in entries if a["kind"] == "escalated"]
    failures: list[dict[str, Any]] = []
    holders = {a["details"].get("to") for a in upto if a["kind"] == "handed_over"}
    steps: list[dict[str, Any]] = []
    fired: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    for sched in step_schedule(level):
        step = sched.step
        where = locate(plan.id, ("levels", li, "notify", sched.index)) if locate else None
        mine = [a for a in notified if a["details"].get("step") == step.id]
        recipients = sorted({a["details"].get("recipient") for a in mine if a["details"].get("recipient")})
        target = sched.fires
        if sched.escalated_from is not None:
            prev_ack = acked_at.get(sched.escalated_from)
            if prev_ack is not None and prev_ack <= target:
                target = step.delay_min  # acknowledged in time: the step runs at its own delay
        actual = rel[id(mine[0])] if mine else None
        if actual is None:
            result = "not_due" if target > span - tolerance else "missed"  # superseded or not reached
        else:
            result = "met" if actual <= target + tolerance else "late"
        check: dict[str, Any] = {
            "step": step.id, "where": where, "channels": [c.value for c in step.channels],
            "recipients": recipients, "roll_call": step.roll_call,
            "notify": {"target_min": target, "actual_min": actual, "result": result,
                       "escalated_from": sched.escalated_from},
            "ack": None,
        }
        if actual is not None:
            fired[step.id] = actual
        if result in ("missed", "late"):
            failures_for = "missed" if result == "missed" else "late"
            check["notify"]["message"] = f"step {step.id}: notification {failures_for} (target t+{target:g})"
        # Who the plan's targets reach at the moment of each notification.
        for a in mine:
            at = _at(a["at"])
            allowed = {p.id for t in step.targets for p in resolve(t, level, directory, at, placement=placement)} \
                | holders
            who = a["details"].get("recipient")
            if directory.people and who not in allowed:
                failures.append({"kind": "not_in_plan", "message": f"step {step.id} notified {who}, whom the "
                                 f"plan's targets do not reach", "where": where, "recipient": who})
        # Acknowledgement of this step.
        if step.ack_timeout_min is not None and not step.roll_call:
            check["ack"] = _ack_check(step.id, step.ack_timeout_min, sched.window_end, actual, recipients, acks,
                                      acked_before, escalated, rel, span, tolerance)
            if check["ack"].get("actual_min") is not None:
                acked_at[step.id] = check["ack"]["actual_min"]
        steps.append(check)
    roll_calls = []
    for sched in step_schedule(level):
        if not sched.step.roll_call:
            continue
        told = sorted({a["details"].get("recipient") for a in notified
                       if a["details"].get("step") == sched.step.id and a["details"].get("recipient")})
        confirmed = sorted({a["actor"] for a in entries if a["kind"] == "confirmed"
                            and a["details"].get("step") == sched.step.id})
        roll_calls.append({"step": sched.step.id, "notified": told, "confirmed": confirmed,
                           "missing": [p for p in told if p not in confirmed],
                           "check_min": sched.window_end if sched.window_end is not None else sched.fires})
    tasks = []
    for k, t in enumerate(level.tasks):
        # This level's own report of the task (one done at another level is that level's); an entry without a
        # level is the level it was logged under, i.e. this epoch's.
        done = next((a for a in entries if a["kind"] == "task_done" and a["details"].get("task") == t.id
                     and a["details"].get("level", level.grade.value) == level.grade.value), None)
        actual = rel[id(done)] if done else None
        if actual is not None:
            result = "met" if actual <= t.deadline_min + tolerance else "late"
        else:
            result = "missed" if span >= t.deadline_min + tolerance else "not_due"
        tasks.append({"task": t.id, "title": t.title.model_dump(), "deadline_min": t.deadline_min,
                      "owner": t.owner.key(), "target_min": t.deadline_min, "actual_min": actual, "result": result,
                      "by": done["actor"] if done else None,
                      "where": locate(plan.id, ("levels", li, "tasks", k)) if locate else None})
    escalations = [{"at_min": rel[id(a)], "step": a["details"].get("step"), "deadline": a["details"].get("deadline"),
                    "attempt": a["details"].get("attempt"), "by": a["actor"],
                    "recipients": a["details"].get("recipients", [])} for a in escalated]
    return {"grade": level.grade.value, "response_level": level.response_level, "activated_at": start.isoformat(),
            "span_min": span, "where": locate(plan.id, ("levels", li)) if locate else None, "steps": steps,
            "roll_calls": roll_calls, "tasks": tasks, "escalations": escalations, "failures": failures,
            "acknowledgements": [{"at_min": rel[id(a)], "by": a["actor"]} for a in acks]}


def _ack_check(step_id: str, timeout: float, window_end: float | None, fired: float | None, recipients: list[str],
               acks: list[dict[str, Any]], acked_before: list[dict[str, Any]], escalated: list[dict[str, Any]],
               rel: dict[int, float], span: float, tolerance: float) -> dict[str, Any]:
    if fired is None:
        return {"window_min": timeout, "target_min": None, "actual_min": None, "result": "not_due"}
    target = fired + timeout
    earlier = [a for a in acked_before] + [a for a in acks if rel[id(a)] < fired]
    if earlier:
        return {"window_min": timeout, "target_min": target, "actual_min": None, "result": "n/a",
                "by": earlier[0]["actor"], "message": f"already acknowledged by {earlier[0]['actor']}"}
    own = [a for a in acks if a["actor"] in recipients]
    last = (fired - timeout + (window_end or 0)) if window_end is not None else target
    followed = [{"at_min": rel[id(a)], "step": a["details"].get("step"), "deadline": a["details"].get("deadline"),
                 "attempt": a["details"].get("attempt"), "recipients": a["details"].get("recipients", [])}
                for a in escalated if rel[id(a)] >= target - tolerance]
    if own:
        at = rel[id(own[0])]
        result = "met" if at <= target + tolerance else ("late" if at <= last + tolerance else "missed")
        check = {"window_min": timeout, "target_min": target, "actual_min": at, "by": own[0]["actor"],
                 "result": result}
        if result != "met":
            check["escalations_after"] = [e for e in followed if e["at_min"] <= at]
        return check
    if target > span:
        return {"window_min": timeout, "target_min": target, "actual_min": None, "result": "not_due"}
    others = [a for a in acks if rel[id(a)] >= fired]
    return {"window_min": timeout, "target_min": target, "actual_min": None, "result": "missed",
            "message": f"step {step_id}: no recipient ({', '.join(recipients) or 'nobody'}) acknowledged within "
                       f"{timeout:g} min",
            "acknowledged_later_by": [{"by": a["actor"], "at_min": rel[id(a)]} for a in others],
            "escalations_after": followed}


def _grade_rules(plan: Plan, timeline: list[dict[str, Any]], final_grade: str | None,
                 clock: Clock) -> list[dict[str, Any]]:
    """A `correlated_reports` rule that held (n reports within within_min) while the grade stayed below raise_to."""
    reports = [_at(a["at"]) for a in timeline if a["kind"] in ("created", "correlated")]
    out = []
    for rule in plan.escalate_grade:
        if rule.correlated_reports is None or rule.within_min is None or final_grade is None:
            continue
        held = any(sum(0 <= clock.minutes(t, u) <= rule.within_min for u in reports) >= rule.correlated_reports
                   for t in reports)
        if held and GRADE_RANK[Grade(final_grade)] < GRADE_RANK[rule.raise_to]:
            out.append({"kind": "grade_not_raised", "rule": rule.id, "where": None,
                        "message": f"rule {rule.id}: {rule.correlated_reports} reports within {rule.within_min:g} "
                                   f"min held, but the grade stayed {final_grade} (rule says {rule.raise_to.value})"})
    return out


def _figures(timeline: list[dict[str, Any]], first: datetime | None, clock: Clock,
             escalations: list[dict[str, Any]]) -> dict[str, Any]:
    def first_of(kind: str) -> float | None:
        found = next((a for a in timeline if a["kind"] == kind), None)
        return clock.minutes(first, _at(found["at"])) if found and first else None

    return {"time_to_first_notification_min": first_of("notified"),
            "time_to_first_ack_min": first_of("acknowledged"),
            "escalations": len([e for e in escalations if e["deadline"] == "escalate" or
                                not str(e["by"]).startswith("system:")]),
            "repeats": len([e for e in escalations if e["deadline"] == "repeat"])}


def _sum_roll_calls(levels: Iterable[dict[str, Any]]) -> dict[str, int]:
    told = confirmed = 0
    for level in levels:
        for rc in level["roll_calls"]:
            told += len(rc["notified"])
            confirmed += len(set(rc["confirmed"]) & set(rc["notified"]))
    return {"confirmed": confirmed, "notified": told}


def overall(incidents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    items = list(incidents)
    scored = sum(i["checks"]["scored"] for i in items)
    met = sum(i["checks"]["met"] for i in items)
    failures = sum(len(i["failures"]) for i in items)
    base = 100.0 * met / scored if scored else 100.0
    value = max(0.0, min(100.0, base - FAILURE_PENALTY * failures))
    return {"value": round(value, 1), "checks_met": met, "checks_scored": scored, "failures": failures,
            "formula": SCORE_FORMULA}

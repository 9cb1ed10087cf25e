"""Scoring a drill from a synthetic command-chain timeline: met, missed, never acknowledged. Pure."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pingan.handlers.drills.report import render_html
from pingan.handlers.drills.scoring import overall, score_incident
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.taxonomy import Grade

PLANS = load_plans(Path(PLANS_DIR))
T0 = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # a Wednesday night
SCALE = 60.0  # a plan minute is a second


def at(minute: float) -> str:
    return (T0 + timedelta(seconds=minute * 60 / SCALE)).isoformat()


def entry(minute: float, kind: str, actor: str = "system:x", **details: Any) -> dict[str, Any]:
    return {"at": at(minute), "kind": kind, "actor": actor, "details": details, "plan_id": "hazchem-leak"}


def body(timeline: list[dict[str, Any]], grade: str = "II") -> dict[str, Any]:
    return {"incident": {"id": "INC-TEST000001", "title": "leak", "status": "exercise", "grade": grade,
                         "state": "open", "report_count": 1}, "timeline": timeline}


def officer() -> str:
    from pingan.handlers.plans.directory import on_duty

    return on_duty(PLANS.directory.rosters["duty-officer"], T0)


def night_timeline(ack_by_officer_at: float | None) -> list[dict[str, Any]]:
    duty = officer()
    tl = [entry(0, "created"), entry(0, "plan_activated", level="II"),
          entry(0.1, "notified", step="duty-officer-sms", recipient=duty),
          entry(5.0, "escalated", step="duty-officer-sms", deadline="repeat", attempt=2, recipients=[duty]),
          entry(5.1, "notified", step="duty-officer-sms", recipient=duty),
          entry(8.0, "notified", step="commander-voice", recipient="huang-liping")]
    if ack_by_officer_at is not None:
        tl.append(entry(ack_by_officer_at, "acknowledged", actor=duty))
    tl.append(entry(16, "acknowledged", actor="huang-liping"))
    return sorted(tl, key=lambda a: a["at"])


def score(timeline: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return score_incident("leak", body(timeline), PLANS, time_scale=SCALE, ended_at=T0 + timedelta(seconds=30),
                          drill_started_at=T0, **kw)


def step(result: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in result["levels"][0]["steps"] if s["step"] == step_id)


def test_met_and_late_steps_with_target_and_actual_minutes() -> None:
    result = score(night_timeline(ack_by_officer_at=2), expect_plan="hazchem-leak", expect_grade=Grade.II)
    sms = step(result, "duty-officer-sms")
    assert sms["notify"] == {"target_min": 0, "actual_min": 0.1, "result": "met", "escalated_from": None}
    assert sms["ack"]["result"] == "met" and sms["ack"]["actual_min"] == 2.0
    assert result["plan_file"].endswith("hazchem-leak.yaml")
    voice = step(result, "commander-voice")
    assert voice["notify"]["target_min"] == 5 and voice["notify"]["actual_min"] == 8.0
    assert voice["notify"]["result"] == "late"
    assert voice["ack"]["result"] == "n/a"  # the officer had acknowledged before the call
    assert step(result, "departments-sms")["notify"]["result"] == "missed"  # due at t+0, never sent
    assert result["figures"]["time_to_first_notification_min"] == 0.1
    assert result["figures"]["time_to_first_ack_min"] == 2.0
    assert result["failures"] == []


def test_duty_officer_never_answering_misses_the_ack_and_lists_the_escalation() -> None:
    result = score(night_timeline(ack_by_officer_at=None))
    ack = step(result, "duty-officer-sms")["ack"]
    assert ack["result"] == "missed" and ack["actual_min"] is None
    assert [e["deadline"] for e in ack["escalations_after"]] == ["repeat"]
    assert ack["acknowledged_later_by"] == [{"by": "huang-liping", "at_min": 16.0}]
    voice = step(result, "commander-voice")
    assert voice["notify"]["target_min"] == 5  # not brought forward: its delay comes first
    assert voice["ack"]["result"] == "late"  # the commander answered after the first window
    html = render_html({"scenario": "s", "run_id": "r", "started_at": at(0), "speed": SCALE, "duration_min": 30,
                        "injects": [], "incidents": [result], "score": overall([result])}, lang="en")
    assert "<svg" in html and "duty-officer-sms" in html and "missed" in html


def test_wrong_plan_and_someone_not_in_the_plan_are_failures() -> None:
    tl = night_timeline(ack_by_officer_at=1)
    tl.append(entry(0.2, "notified", step="duty-officer-sms", recipient="wu-min"))
    result = score(sorted(tl, key=lambda a: a["at"]), expect_plan="building-fire")
    kinds = sorted(f["kind"] for f in result["failures"])
    assert kinds == ["not_in_plan", "wrong_plan"]
    assert result["score"]["value"] <= 100 - 20


def test_overall_formula() -> None:
    a = {"checks": {"scored": 4, "met": 3}, "failures": [{}]}
    assert overall([a])["value"] == 65.0
    assert overall([])["value"] == 100.0


def test_tasks_are_scored_against_their_deadlines() -> None:
    tl = night_timeline(ack_by_officer_at=1) + [entry(34, "task_done", actor="xu-jing", task="report-city"),
                                                 entry(20, "task_done", actor="police-duty", task="cordon-downwind")]
    result = score_incident("leak", body(sorted(tl, key=lambda a: a["at"])), PLANS, time_scale=SCALE,
                            ended_at=T0 + timedelta(seconds=60), drill_started_at=T0)
    tasks = {t["task"]: t for t in result["levels"][0]["tasks"]}
    assert tasks["report-city"]["target_min"] == 30 and tasks["report-city"]["result"] == "late"
    assert tasks["report-city"]["actual_min"] == 34 and tasks["report-city"]["by"] == "xu-jing"
    assert tasks["cordon-downwind"]["result"] == "met"
    undone = [t for t in tasks.values() if t["actual_min"] is None]
    assert all(t["result"] == ("missed" if t["deadline_min"] + 1 <= 60 else "not_due") for t in undone)
    figures = result["figures"]["tasks"]
    assert figures["done"] == 2 and figures["done_by_deadline"] == 1 and figures["total"] == len(tasks)
    html = render_html({"scenario": "s", "run_id": "r", "started_at": at(0), "speed": SCALE, "duration_min": 60,
                        "injects": [], "incidents": [result], "score": overall([result])}, lang="en")
    assert 'class="task-table"' in html and "report-city" in html and "Tasks done by deadline" in html

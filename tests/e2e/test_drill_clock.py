"""Drill time is per drill (issue 14, findings 10 and 12): `pingan drill run --speed N` against a plain `pingan up`
(no PINGAN_ESCALATION_TIME_SCALE). The drill's incidents run on the drill's clock, a real incident beside them on
real time; deadlines fire on time, and every time rule (deadlines, grade-raise windows, correlation windows) reads
the incident's own clock.
"""

import json
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, pingan_argv, wait_for

FIRE = {"category": "accident_disaster", "subtype": "fire", "grade": "III",
        "location": {"area_code": "440402100001", "area_name": "唐家社区"}}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _drill(stack: Stack, tmp_path: Path, scenario: str, speed: int) -> dict[str, Any]:
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario, encoding="utf-8")
    out = tmp_path / "r.json"
    run = subprocess.run(pingan_argv("drill", "run", str(path), "--speed", str(speed), "--json", str(out),
                                     "--url", stack.url), env=stack.drill_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text())
    results["stderr"] = run.stderr
    return results


def _db_time(value: object) -> datetime:
    """A time as SQLite returns it in a raw query (naive UTC text)."""
    return _at(str(value).replace(" ", "T") + ("" if "+" in str(value) else "+00:00"))


def _steps(incident: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s["notify"] for lv in incident["levels"] for s in lv["steps"]}


X120 = """
title: 时钟演练 ×120
participants: [roster:duty-officer, roster:duty-room]
watch_min: 6
tolerance_min: 0.2
injects:
  - id: fire
    at_min: 0
    report: {category: accident_disaster, subtype: fire, grade: III, title: 演练：仓库起火,
             location: {area_code: "440402100001", area_name: 唐家社区}}
responders:
  - {roster: duty-officer, acknowledges_after_min: 0.2}
expect:
  - {incident: fire, plan: building-fire, grade: III}
"""


def test_a_x120_drill_beside_a_real_incident_keeps_it_on_real_time(tmp_path: Path) -> None:
    # The shipped plans, but the grade III commander call at t+0.5 instead of t+10, so that the real incident's
    # escalation happens within the test: 30 s of real time, 0.25 s for the drill at x120.
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    fire = plans / "building-fire.yaml"
    text_ = fire.read_text(encoding="utf-8")
    level_iii = text_.index("- grade: III")
    voice = text_.index("- id: commander-voice", level_iii)
    delay = text_.index("delay_min: 10", voice)
    fire.write_text(text_[:delay] + "delay_min: 0.5" + text_[delay + len("delay_min: 10"):], encoding="utf-8")
    stack = Stack(tmp_path, PINGAN_PLANS_DIR=str(plans))
    stack.up()
    try:
        response = stack.post("/v1/incidents", json={**FIRE, "title": "仓库起火（真实）"})
        assert response.status_code == 202
        real_id = response.json()["id"]
        real = wait_for(lambda: (b := stack.incident(real_id)) and any(
            a["kind"] == "plan_activated" for a in b["timeline"]) and b, 30, 0.1, "the real incident's plan")
        activated = _at(next(a["at"] for a in real["timeline"] if a["kind"] == "plan_activated"))

        results = _drill(stack, tmp_path, X120, 120)
        drilled = (datetime.now(activated.tzinfo) - activated).total_seconds()
        assert drilled < 28, f"the drill ended {drilled:.0f} s after the real activation: too late to tell"

        # The drill's delayed step came at t+0.5 of its own clock, within 0.2 plan minutes (0.1 s at x120).
        incident = {i["inject"]: i for i in results["incidents"]}["fire"]
        assert incident["plan_id"] == "building-fire" and incident["status"] == "exercise"
        voice_check = _steps(incident)["commander-voice"]
        print("x120 drill steps (target, actual plan minutes):",
              {k: (v["target_min"], v["actual_min"]) for k, v in _steps(incident).items()})
        assert voice_check["actual_min"] is not None and voice_check["result"] == "met", voice_check
        assert abs(voice_check["actual_min"] - 0.5) <= 0.2, voice_check

        # The real incident: nothing of its call yet (at x120 it would have gone 0.25 s after activation)…
        body = stack.incident(real_id)
        assert body is not None
        assert not [a for a in body["timeline"] if a["details"].get("step") == "commander-voice"], body["timeline"]
        # …its deadlines are stored at real plan minutes…
        engine = create_engine(f"sqlite:///{stack.env['PINGAN_DATA_DIR']}/pingan.db")
        with engine.connect() as conn:
            rows = conn.execute(text("select step_id, kind, attempt, due_at from escalations "
                                     "where incident_id = :i and step_id = 'commander-voice' and kind = 'step'"),
                                {"i": real_id}).all()
        assert len(rows) == 1
        due = _db_time(rows[0].due_at)
        assert abs((due - activated).total_seconds() - 30) < 0.05, (due, activated)
        # …and the call goes at 30 real seconds after activation.
        called = wait_for(lambda: next((a for a in (stack.incident(real_id) or {"timeline": []})["timeline"]
                                        if a["details"].get("step") == "commander-voice"), None), 40, 0.1,
                          "the real incident's commander call")
        late = (_at(called["at"]) - activated).total_seconds() - 30
        print(f"real incident: commander call {late:.3f} s after its due time (t+30 s real)")
        assert 0 <= late <= 0.5, f"the real call came {late:.3f} s after its due time"
        # Nothing to match on the stack any more: the drill does not ask for PINGAN_ESCALATION_TIME_SCALE.
        assert "PINGAN_ESCALATION_TIME_SCALE" not in results["stderr"], results["stderr"]
    finally:
        stack.stop()


# tolerance_min 2: at x600 a plan minute is 100 ms, and the notifier's path alone (the consumer's 20 ms fetch wait,
# the 20 ms batch window, claim, send) took 70-180 ms from a deadline's firing to its send under a load average of 9
# on 2 cores (about 40 ms quiet); the scheduler's own share is asserted below, from the store: within 100 ms.
X600 = """
title: 时钟演练 ×600
participants: [roster:duty-officer, roster:duty-room]
watch_min: 16
tolerance_min: 2
injects:
  - id: fire
    at_min: 0
    report: {category: accident_disaster, subtype: fire, grade: III, title: 演练：仓库起火,
             location: {area_code: "440402100001", area_name: 唐家社区}}
  # Canteen A: five reports 20 minutes apart. No 30-minute window holds more than two: the food-poisoning plan's
  # "5 reports within 30 minutes" must not raise it (80 plan minutes are 8 real seconds at x600). They start two
  # minutes (0.2 s) after the fire, so that the fire's t+0 orders are not queued behind two other activations'.
  - {id: slow-1, at_min: 2, report: &slow {category: public_health, subtype: food_occupational_poisoning, grade: IV,
                                          title: 演练：甲食堂多人腹泻, dedup_key: canteen-a,
                                          location: {area_code: "440402100002", area_name: 唐乐社区}}}
  - {id: slow-2, at_min: 22, report: *slow}
  - {id: slow-3, at_min: 42, report: *slow}
  - {id: slow-4, at_min: 62, report: *slow}
  - {id: slow-5, at_min: 82, report: *slow}
  # Canteen B: five reports within eight minutes: the rule holds and raises it to III.
  - {id: fast-1, at_min: 3, report: &fast {category: public_health, subtype: food_occupational_poisoning, grade: IV,
                                          title: 演练：乙食堂多人呕吐, dedup_key: canteen-b,
                                          location: {area_code: "440402100003", area_name: 鸡山社区}}}
  - {id: fast-2, at_min: 5, report: *fast}
  - {id: fast-3, at_min: 7, report: *fast}
  - {id: fast-4, at_min: 9, report: *fast}
  - {id: fast-5, at_min: 11, report: *fast}
responders:
  - {roster: duty-officer, acknowledges_after_min: 2}
expect:
  - {incident: fire, plan: building-fire, grade: III}
  - {incident: slow-1, plan: food-poisoning, grade: IV}
  - {incident: fast-1, plan: food-poisoning, grade: III}
"""


def test_a_x600_drill_meets_its_delayed_steps_and_grade_windows_read_drill_minutes(tmp_path: Path) -> None:
    # A 3-hour correlation window (18 real seconds at x600): the reports join their canteen's incident even when a
    # loaded machine delays an inject by seconds; the grade rule's 30 minutes are what this test is about.
    stack = Stack(tmp_path, PINGAN_CORRELATION_WINDOW_S="10800")
    stack.up()
    try:
        started = time.monotonic()
        results = _drill(stack, tmp_path, X600, 600)
        assert time.monotonic() - started < 60
    finally:
        stack.stop()
    # Every deadline that fired did so within 100 ms of its due time (its intents are written as it fires).
    engine = create_engine(f"sqlite:///{stack.env['PINGAN_DATA_DIR']}/pingan.db")
    with engine.connect() as conn:
        fired = conn.execute(text(
            "select e.step_id, e.kind, e.attempt, e.due_at, min(n.created_at) as fired_at from escalations e "
            "join notifications n on n.incident_id = e.incident_id and json_extract(n.body, '$.step') = e.step_id "
            "and json_extract(n.body, '$.attempt') = e.attempt and n.created_at >= e.due_at "
            "where e.state = 'fired' and e.kind != 'roll_call' group by e.id")).all()
    late_ms = {f"{r.step_id}/{r.kind}/{r.attempt}": round((_db_time(r.fired_at) - _db_time(r.due_at))
                                                          .total_seconds() * 1000) for r in fired}
    print("x600 deadlines fired, ms after due:", late_ms)
    assert late_ms and all(0 <= ms <= 100 for ms in late_ms.values()), late_ms
    by_inject = {i["inject"]: i for i in results["incidents"]}
    assert set(by_inject) == {"fire", "slow-1", "fast-1"}, sorted(by_inject)  # the others joined these
    fire = by_inject["fire"]
    # The building fire's commander call is a plain delayed step (t+10 = 1 real second): it fires on the drill's
    # clock and reaches the notifier on its first publish (before: 2 s later, 20 plan minutes, with the re-publish
    # of lost intents). The t+0 steps' lateness is the pipeline's (response -> notifier), printed, not asserted:
    # at x600 a plan minute is 100 ms, which a loaded 2-core machine does not always give the first sends.
    steps = _steps(fire)
    lateness = {name: round(s["actual_min"] - s["target_min"], 2) for name, s in steps.items()
                if s["actual_min"] is not None}
    print("x600 lateness of the fire's steps (plan minutes):", lateness)
    assert steps["commander-voice"]["actual_min"] is not None, steps
    assert steps["commander-voice"]["result"] == "met", lateness
    # The grade rule counts drill minutes: canteen A stays IV, canteen B is raised to III by its surge.
    sent = [(e["what"], e.get("inject"), e["at_min"]) for e in results["log"]]
    print("x600 drill log (what, inject, drill minute):", sent)
    slow = by_inject["slow-1"]
    assert slow["grade"] == "IV" and slow["report_count"] == 5, (sent, slow)
    assert by_inject["fast-1"]["grade"] == "III" and by_inject["fast-1"]["report_count"] == 5, by_inject["fast-1"]
    for name in ("slow-1", "fast-1", "fire"):
        assert by_inject[name]["failures"] == [], (name, by_inject[name]["failures"])
    # Every delayed notify step (the scheduler's) of every drill incident that ran was on time, at every level.
    for name, incident in by_inject.items():
        for level in incident["levels"]:
            for step in level["steps"]:
                check = step["notify"]
                if check["actual_min"] is not None and check["target_min"] > 0:
                    assert check["result"] == "met", (name, level["grade"], step["step"], check)
    assert "PINGAN_ESCALATION_TIME_SCALE" not in results["stderr"], results["stderr"]

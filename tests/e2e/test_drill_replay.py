"""`pingan drill replay`: a recorded incident re-run against a plan set whose escalation timeout is shorter shows the
earlier escalation in its diff. Real stacks both times (the recorded one, and the private one the replay starts)."""

import json
import shutil
import subprocess
from pathlib import Path

from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, pingan_argv, wait_for

REPEAT = "duty-officer-sms repeat #2"  # typhoon level II: the on-duty officer's SMS again when nobody acknowledges


def shorter_timeout(tmp_path: Path) -> Path:
    plans = tmp_path / "plans-changed"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    text = (plans / "typhoon.yaml").read_text(encoding="utf-8")
    level_ii = text.index("  - grade: II")
    step = text.index("      - id: duty-officer-sms", level_ii)
    timeout = text.index("ack_timeout_min: 5", step)
    changed = text[:timeout] + "ack_timeout_min: 2" + text[timeout + len("ack_timeout_min: 5"):]
    (plans / "typhoon.yaml").write_text(changed, encoding="utf-8")
    return plans


def test_replay_against_a_shorter_timeout_shows_the_earlier_escalation(tmp_path: Path) -> None:
    (tmp_path / "recorded").mkdir()
    stack = Stack(tmp_path / "recorded", PINGAN_ESCALATION_TIME_SCALE="60")
    stack.up()
    try:
        response = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "title": "台风“海葵”登陆", "location": {"area_name": "东湖街道"}})
        assert response.status_code == 202
        incident_id = response.json()["id"]
        # Nobody acknowledges: at plan minute 5 the officer's SMS repeats (an `escalated` entry).
        wait_for(lambda: any(a["kind"] == "escalated" and a["details"].get("step") == "duty-officer-sms"
                             for a in (stack.incident(incident_id) or {"timeline": []})["timeline"]), 60, 0.2,
                 "the recorded escalation")
    finally:
        stack.stop()

    out = tmp_path / "diff.json"
    run = subprocess.run(pingan_argv("drill", "replay", "--from-log", incident_id, "--plans",
                                     str(shorter_timeout(tmp_path)), "--speed", "60", "--recorded-speed", "60",
                                     "--json", str(out)),
                         env=stack.env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["incident_id"] == incident_id and result["replay_incident_id"] != incident_id
    rows = {(r["kind"], r["key"]): r for r in result["diff"]}
    repeat = rows[("escalated", REPEAT)]
    assert repeat["change"] == "earlier", result["diff"]
    activated = rows[("plan_activated", "typhoon level II")]
    # Minutes count from each incident's creation; the repeat is due ack_timeout_min after the plan activated.
    assert 4.0 <= repeat["original_min"] - activated["original_min"] <= 6.5
    assert 1.0 <= repeat["replay_min"] - activated["replay_min"] <= 3.5
    assert "EARLIER" in run.stdout and REPEAT in run.stdout

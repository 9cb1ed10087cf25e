"""Plan tasks reported done (任务完成) by the drill's scripted commands, the CLI and HTTP, scored against deadlines."""

import json
import signal
import subprocess
import time
from pathlib import Path

from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, cli, pingan_argv


def test_school_drill_scores_the_tasks_done_and_the_task_command_refuses_nonsense(tmp_path: Path) -> None:
    stack = Stack(tmp_path, PINGAN_ESCALATION_TIME_SCALE="120")
    stack.up()
    data = tmp_path / "r.json"
    try:
        run = subprocess.run(pingan_argv("drill", "run", str(Path(PLANS_DIR) / "drills" / "school-food-poisoning.yaml"),
                                         "--speed", "120", "--json", str(data), "--url", stack.url),
                             env=stack.drill_env(), capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        results = json.loads(data.read_text())
        school = next(i for i in results["incidents"] if i["inject"] == "school")
        tasks = {t["task"]: t for level in school["levels"] for t in level["tasks"]}
        assert tasks["medical-care"]["result"] == "met" and tasks["medical-care"]["by"] == "li-meifang"
        assert 24 <= tasks["medical-care"]["actual_min"] <= 30  # scripted at 25 minutes after activation
        assert tasks["seal-canteen"]["result"] == "met"
        assert tasks["report-city"]["result"] == "not_due"  # 60 minutes: past the drill's end
        assert school["figures"]["tasks"]["done_by_deadline"] == 2

        incident_id = school["incident_id"]
        ruan = {"person": "ruan-lihua", "roles": ("duty_officer",)}  # her own token: the actor is the caller
        refused = stack.post(f"/v1/incidents/{incident_id}/task", json={"task": "no-such-task"}, **ruan)
        assert refused.status_code == 409 and "report-city" in refused.json()["detail"]
        again = stack.post(f"/v1/incidents/{incident_id}/task", json={"task": "seal-canteen"}, **ruan)
        assert again.status_code == 409 and "already done" in again.json()["detail"]
        done = cli(stack.env, "task", incident_id, "report-city", "--by", "ruan-lihua", "--note", "已电话报告")
        assert done.returncode == 0, done.stderr
        timeline = stack.incident(incident_id)["timeline"]  # type: ignore[index]
        assert [a["details"]["task"] for a in timeline if a["kind"] == "task_done"] == [
            "medical-care", "seal-canteen", "report-city"]

        # Ctrl-C stops a drill cleanly and still writes the partial report, and ends the run (no longer live).
        partial = tmp_path / "partial.json"
        proc = subprocess.Popen(pingan_argv("drill", "run", str(Path(PLANS_DIR) / "drills" / "typhoon.yaml"),
                                            "--speed", "120", "--json", str(partial), "--url", stack.url),
                                env=stack.drill_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_interruptible)
        time.sleep(8)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert "interrupted" in out + err
        cut = json.loads(partial.read_text())
        assert cut["interrupted"] and cut["incidents"] and cut["duration_min"] < 60
        ended = stack.get(f"/v1/drills/{cut['run_id']}")
        assert ended.status_code == 200 and ended.json()["ended_at"]
    finally:
        stack.stop()


def _interruptible() -> None:
    """Ctrl-C reaches the drill as it reaches one started from a shell. A signal mask and an ignored SIGINT are
    inherited through exec: in the full suite under pytest-xdist the drill started with SIGINT not delivered (it ran
    to its end, twice), which this test's own run alone never showed."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)

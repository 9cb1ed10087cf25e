"""The daily situation report in a real `pingan up` (issue 17 part 3): with PINGAN_SITREP_DAILY_AT already past, the
worker issues yesterday's report as it starts and posts it, signed, to the configured webhook; `GET /v1/sitreps`
lists it; a restart issues nothing again and posts nothing again. `pingan sitrep` reads the same running store."""

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.fixtures.stack import Stack, cli, wait_for
from tests.integration.test_webhook_channel import SECRET, Receiver, receiver  # noqa: F401 - the fixture

TZ = ZoneInfo("Asia/Shanghai")


def test_pingan_up_issues_the_daily_report_once_across_a_restart(tmp_path: Path,
                                                                 receiver: Receiver) -> None:  # noqa: F811
    stack = Stack(tmp_path, PINGAN_SITREP_DAILY_AT="00:00", PINGAN_SITREP_DAILY_TO=receiver.url,
                  PINGAN_WEBHOOK_SECRET=SECRET, PINGAN_TIMEZONE="Asia/Shanghai")
    yesterday = (datetime.now(TZ) - timedelta(days=1)).date().isoformat()
    day_id = f"sitrep-day-{yesterday}"
    stack.up()
    try:
        wait_for(lambda: receiver.received, 60, 0.2, "the daily report's webhook")
        [post] = receiver.received
        assert post["valid"] and post["headers"]["Idempotency-Key"]
        body = json.loads(post["body"])
        assert body["incident_id"] == f"sitrep:{day_id}" and "态势研判报告" in body["text"]
        listed = wait_for(lambda: [i for i in stack.get("/v1/sitreps").json()["items"] if i["state"] == "delivered"],
                          30, 0.2, "the report delivered")
        assert [i["id"] for i in listed] == [day_id]
        accepted = stack.post("/v1/incidents", json={"category": "accident_disaster", "subtype": "fire",
                                                     "grade": "III", "title": "仓库起火"})
        assert accepted.status_code == 202
        incident_id = accepted.json()["id"]
        wait_for(lambda: stack.incident(incident_id), 60, 0.2, "the fire triaged")
        today = datetime.now(TZ).date().isoformat()
        done = cli(stack.env, "sitrep", "--period", "day", "--since", today, "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["incidents"] == 1 and [r["key"] for r in report["by"]["subtype"]] == ["fire"]
    finally:
        stack.stop()
    stack.up()
    try:
        timeline = stack.get(f"/v1/sitreps/{day_id}")
        assert timeline.status_code == 200 and timeline.json()["state"] == "delivered"
        wait_for(lambda: cli(stack.env, "log", "verify").returncode == 0, 30, 0.5, "the log verified")
        # The worker starts its daily job before its agents: once it triages a report, the job has looked.
        again = stack.post("/v1/incidents", json={"category": "accident_disaster", "subtype": "fire",
                                                  "grade": "IV", "title": "垃圾桶起火"})
        wait_for(lambda: stack.incident(again.json()["id"]), 60, 0.2, "a fire triaged after the restart")
        time.sleep(3)
        assert len(stack.get("/v1/sitreps").json()["items"]) == 1
        assert len(receiver.received) == 1  # the restarted worker found the day's report and sent nothing
    finally:
        stack.stop()

"""Trend early warning end to end (issue 18): `pingan up` with the shipped plans and rules, a real broker, the fake
Twilio, and citizens' diarrhoea texts through the signed SMS intake and the classifier.

Time is compressed with the stack's clock: PINGAN_ESCALATION_TIME_SCALE=1440 makes one simulated day one real
minute for the trend intervals (handlers/trends/series.py) as for the plans' deadlines, so 25 texts two seconds apart
span about 20 simulated hours (maybe across a simulated midnight: the warning is one incident per area and kind,
whichever day's count alarms).

- The same 25 texts spread evenly over the town's 12 communities raise no warning (2 or 3 a community a day is not
  above C2's threshold of 3 standard deviations, floored at 1 report).
- 25 texts from one community (唐家社区) raise exactly one trend-warning incident for it, other/trend_warning at
  grade IV with its evidence, whose plan (trend-warning) puts it on the duty room's console and texts every grid
  officer of the community ({grid_officer: incident}: an incident placed at a community reaches all its grids'
  officers), its leader (郑秀英, {area_leader: community}) and the Community Affairs Office (曾美玲).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from tests.e2e.test_sms_commands import send_sms, twiml_message
from tests.fixtures.stack import Stack, cli, wait_for

COMMUNITIES = [f["properties"] for f in json.loads((PLANS_DIR / "areas" / "tangjiawan.geojson").read_text())[
    "features"] if f["properties"].get("level") == "community"]
TANGJIA = "440402100001"
OFFICE_PHONE = "+12025550171"  # zeng-meiling, Community Affairs Office
LEADER_PHONE = "+447700900150"  # zheng-xiuying, 唐家社区's leader in plans/directory/people_grid_officers.yaml
REFERENCE = re.compile(r"INC-[0-9A-Z]+")
# 唐家社区's grid officers, as the area file names them, and their phones from the directory.
GRID_OFFICERS = [o for f in json.loads((PLANS_DIR / "areas" / "tangjiawan.geojson").read_text())["features"]
                 if f["properties"].get("level") == "grid" and f["properties"].get("parent") == "440402100001"
                 for o in f["properties"].get("officers", [])]
OFFICER_PHONES = {load_plans(PLANS_DIR).directory.people[o].contacts.sms for o in GRID_OFFICERS}
SPACING_S = 2.0  # 2 real seconds = 48 simulated minutes at 1440


def texts(stack: Stack, twilio: Any, areas: list[dict[str, Any]], first_phone: int) -> list[str]:
    """25 citizens (their own phones) text about diarrhoea from `areas`, in turn; the incidents they were told."""
    told: list[str] = []
    for i in range(25):
        area = areas[i % len(areas)]
        reply = twiml_message(send_sms(stack, twilio, f"+1202555{first_phone + i:04d}",
                                       f"{area['name_zh']}好多人拉肚子，呕吐，{i + 1}"))
        found = REFERENCE.search(reply)
        assert found, reply
        told.append(found.group(0))
        time.sleep(SPACING_S)
    for incident_id in set(told):  # every text triaged (so counted) before we look for warnings
        wait_for(lambda i=incident_id: stack.incident(i), 60, 0.2, f"{incident_id} triaged")
    return told


def trend_incidents(stack: Stack) -> list[dict[str, Any]]:
    response = stack.get("/v1/incidents", params={"source": "trend", "limit": 50})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_community_surge_warns_once_and_the_same_count_spread_over_the_district_does_not(
        tmp_path: Path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE="1440")
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        texts(stack, twilio_server, COMMUNITIES, 1000)
        time.sleep(3)  # a warning would be in the outbox with its report's batch; give the relay and triage time
        assert trend_incidents(stack) == []

        tangjia = [c for c in COMMUNITIES if c["code"] == TANGJIA]
        texts(stack, twilio_server, tangjia, 2000)
        [warning] = wait_for(lambda: trend_incidents(stack) or None, 60, 0.2, "the trend warning")
        time.sleep(3)
        assert len(trend_incidents(stack)) == 1  # one incident for the series' area, not one per alarm
        body = wait_for(lambda: (b := stack.incident(warning["id"])) and any(
            a["kind"] == "plan_activated" for a in b["timeline"]) and b, 60, 0.2, "the warning's plan")
        incident = body["incident"]
        assert (incident["category"], incident["subtype"], incident["grade"]) == ("other", "trend_warning", "IV")
        assert incident["location"]["area_code"] == TANGJIA and incident["labels"]["trend_level"] == "community"
        assert incident["dedup_key"] == f"trend:community:{TANGJIA}:public_health:*"
        evidence = incident["attachments"][0]["data"]
        assert evidence["count"] >= 4 and evidence["threshold"] == 3.0 and len(evidence["reports"]) >= 4
        activated = next(a for a in body["timeline"] if a["kind"] == "plan_activated")
        assert activated["plan_id"] == "trend-warning"
        office = wait_for(lambda: [m for m in twilio_server.messages
                                   if m["to"] == OFFICE_PHONE and warning["id"] in m["body"]] or None,
                          60, 0.2, "the Community Affairs Office's SMS")
        assert "趋势预警" in office[0]["body"] and "唐家社区" in office[0]["body"]
        leader = wait_for(lambda: [m for m in twilio_server.messages
                                   if m["to"] == LEADER_PHONE and warning["id"] in m["body"]] or None,
                          60, 0.2, "the community leader's SMS")
        assert "网格员" in leader[0]["body"]
        assert len(OFFICER_PHONES) >= 4 and None not in OFFICER_PHONES
        officers = wait_for(lambda: (got := {m["to"] for m in twilio_server.messages if m["to"] in OFFICER_PHONES
                                             and warning["id"] in m["body"]}) == OFFICER_PHONES and got, 60, 0.2,
                            "the SMS to every grid officer of 唐家社区")
        assert officers == OFFICER_PHONES
        assert incident["location"]["placement"]["path"][-1]["code"] == TANGJIA  # placed at its community
        shown = cli(stack.env, "trends", "--area", TANGJIA)
        assert shown.returncode == 0, shown.stderr
        assert "ALARM" in shown.stdout or warning["id"] in shown.stdout
        assert warning["id"] in shown.stdout
    finally:
        stack.stop()

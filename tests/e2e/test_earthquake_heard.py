"""No incident goes unheard (issue 12): an earthquake CAP alert for the district reaches the duty room's console with
its plan and reason (there was no earthquake plan; 63 real earthquake alerts notified nobody), and the same kind of
alert for a place abroad is recorded as outside the district and tells nobody."""

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pingan.handlers.channels.console import read_sink
from tests.fixtures.stack import Stack, wait_for

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "cap"


def quake(area: str, identifier: str) -> bytes:
    sent = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0).isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>quake@gdeq.example.cn</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Geo</category>
    <event>地震</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <headline>珠海近海发生 5.1 级地震</headline>
    <description>震中距唐家湾镇约 20 公里，震源深度 10 公里，全镇有明显震感。</description>
    <area><areaDesc>{area}</areaDesc></area>
  </info>
</alert>""".encode()


def post_cap(stack: Stack, body: bytes) -> str:
    response = stack.post("/v1/intake/cap", source="cap", content=body)
    assert response.status_code == 202, response.text
    return str(response.json()["accepted"][0]["id"])


def kinds(body: dict[str, Any]) -> list[str]:
    return [a["kind"] for a in body["timeline"]]


def test_an_earthquake_in_the_district_reaches_the_duty_room_and_one_abroad_is_recorded(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack.up()
    try:
        inside = post_cap(stack, quake("珠海市唐家湾镇", "GD-EQ-0001"))
        body = wait_for(lambda: stack.delivered(inside), 60, 0.2, "the earthquake delivered to the console")
        activated = next(a for a in body["timeline"] if a["kind"] == "plan_activated")
        assert activated["plan_id"] == "earthquake" and activated["details"]["reason"]
        lines = [r["text"] for r in read_sink(stack.sink) if r["incident_id"] == body["incident"]["id"]]
        assert any("地震" in line and "唐家湾镇地震应急预案" in line for line in lines), lines

        abroad = post_cap(stack, (SAMPLES / "us-usgs-earthquake-iso8859-1.cap").read_bytes())
        recorded = wait_for(lambda: (b := stack.incident(abroad)) and "area_checked" in kinds(b) and b, 60, 0.2,
                            "the foreign earthquake's area check")
        checked = next(a for a in recorded["timeline"] if a["kind"] == "area_checked")
        assert checked["details"]["area"] == "outside", checked
        assert "plan_activated" not in kinds(recorded) and "notified" not in kinds(recorded)
    finally:
        stack.stop()

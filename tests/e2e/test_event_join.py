"""One event, one incident (issue 12), end to end: a real CAP typhoon warning from the observatory, then residents'
signed Twilio SMS about fallen trees and flooding in Tangjiawan, read by the SMS classifier, join the warning's
incident: one plan activation, no second set of department messages; a joining text that reports 3 deaths raises
the incident's grade by the typhoon plan's casualties rule.

The two halves use two warnings: the typhoon plan also raises the grade when 10 reports come within 15 minutes, so
ten texts under a grade III warning would raise it by that rule before the deaths could."""

import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.fixtures.stack import Stack, wait_for
from tests.fixtures.twilio_server import FakeTwilio

SMS_PATH = "/v1/intake/twilio/sms"
CAP_GRADES = {"II": ("Severe", "Immediate", "Likely"), "III": ("Moderate", "Expected", "Likely")}
TEXTS = [
    "唐家社区大树倒了压住车", "官塘那边打风吹倒好多树", "北沙村口棵大树冧咗，拦住条路", "上栅社区广告牌被风吹倒了",
    "鸡山村好多树倒了", "淇澳村水浸街，车都开不动", "东岸社区水浸到膝头", "唐乐社区积水好深，车开不过",
    "下栅村水浸入屋", "那洲村好多地方水浸",
]


@pytest.fixture
def stack(tmp_path: Path, twilio_server: FakeTwilio):  # type: ignore[no-untyped-def]
    s = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
              PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token, PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
              PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)
    s.env["PINGAN_PUBLIC_URL"] = s.url
    s.up()
    yield s
    s.stop()


def typhoon_cap(grade: str, identifier: str) -> bytes:
    severity, urgency, certainty = CAP_GRADES[grade]
    sent = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0).isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>zhuhai-observatory@example.cn</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>台风预警</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>{certainty}</certainty>
    <headline>珠海市气象台发布台风预警信号（唐家湾镇）</headline>
    <description>台风“海燕”预计 12 小时内影响唐家湾镇，沿海风力 8–10 级，伴有暴雨。</description>
    <area><areaDesc>珠海市唐家湾镇</areaDesc></area>
  </info>
</alert>""".encode()


def send_sms(stack: Stack, twilio: FakeTwilio, sender: str, text: str) -> str:
    url = stack.env["PINGAN_PUBLIC_URL"] + SMS_PATH
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": twilio.account_sid, "From": sender,
            "To": twilio.from_number, "Body": text, "NumMedia": "0", "NumSegments": "1"}
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    response = httpx.post(stack.url + SMS_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def open_warning(stack: Stack, grade: str) -> dict[str, Any]:
    response = stack.post("/v1/intake/cap", source="cap", content=typhoon_cap(grade, f"ZH-TY-{secrets.token_hex(4)}"))
    assert response.status_code == 202, response.text
    accepted = response.json()["accepted"][0]["id"]

    def activated() -> dict[str, Any] | None:
        body = stack.incident(accepted)
        return body if body and any(a["kind"] == "plan_activated" for a in body["timeline"]) else None

    return wait_for(activated, 60, 0.2, "the warning's plan activated")


def kinds(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in body["timeline"] if a["kind"] == kind]


def test_ten_texts_join_the_warning_once(stack: Stack, twilio_server: FakeTwilio) -> None:
    warning = open_warning(stack, "II")
    incident_id = warning["incident"]["id"]
    assert warning["incident"]["grade"] == "II" and warning["incident"]["category"] == "natural_disaster"
    assert kinds(warning, "plan_activated")[0]["plan_id"] == "typhoon"
    wait_for(lambda: len(kinds(stack.incident(incident_id) or {"timeline": []}, "notified")) > 0, 30, 0.2, "notified")
    for n, text in enumerate(TEXTS):
        send_sms(stack, twilio_server, f"+861390000{n:04d}", text)
    try:
        joined = wait_for(lambda: (b := stack.incident(incident_id)) and len(kinds(b, "correlated")) == 10 and b, 60,
                          0.2, "ten texts joined the warning")
    except AssertionError:
        for item in stack.get("/v1/incidents", params={"limit": 50}).json()["items"]:
            print(item["id"], item["source"], item["category"], item["subtype"], item.get("hazard"), item["location"],
                  item["title"])
        print(warning["incident"])
        raise
    assert joined["incident"]["report_count"] == 11
    assert {a["details"]["source"] for a in kinds(joined, "correlated")} == {"hotline_sms"}
    assert len(kinds(joined, "plan_activated")) == 1  # one activation
    listed = stack.get("/v1/incidents", params={"status": "actual"}).json()
    assert listed["total"] == 1, [i["title"] for i in listed["items"]]  # no incident of their own
    reports = stack.get(f"/v1/incidents/{incident_id}/reports").json()
    places = {r["report"]["location"]["area_name"] for r in reports[1:]}
    assert len(reports) == 11 and places >= {"唐家社区", "淇澳社区"}
    notified = len(kinds(joined, "notified"))
    time.sleep(3)  # the response stage has seen every joined report by now: still no second round of messages
    again = stack.incident(incident_id)
    assert again is not None and len(kinds(again, "notified")) == notified
    assert not kinds(again, "grade_changed")


def test_a_joining_text_of_three_deaths_raises_the_warning(stack: Stack, twilio_server: FakeTwilio) -> None:
    second = open_warning(stack, "III")
    second_id = second["incident"]["id"]
    send_sms(stack, twilio_server, "+8613900009999", "台风把唐家社区的铁皮屋吹塌了，压死了3个人")
    raised = wait_for(lambda: (b := stack.incident(second_id)) and b["incident"]["grade"] == "II" and b, 60, 0.2,
                      "the casualties rule raised the grade")
    assert raised["incident"]["labels"]["casualties"] == "3"
    changed = kinds(raised, "grade_changed")
    assert changed[-1]["details"] == {"from": "III", "to": "II", "rule": "casualties-ii"}

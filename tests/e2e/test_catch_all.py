"""No incident goes unheard, end to end: `pingan up` with the shipped plans, a real broker, the fake Twilio, and a
fast-forwarded clock (1 plan minute = 0.5 s).

An incident in a cell no specific plan covers (accident_disaster/public_facility without a hazard, grade IV) and an
Alertmanager alert without category labels both activate the catch-all plan (通用突发事件): the duty room's console
line says there is no plan for this category and grade, the plan_activated entry carries the reason, and when
nobody acknowledges, the duty leader's SMS repeats and the escalation reaches the emergency office's director.
"""

from pathlib import Path
from typing import Any

from pingan.handlers.channels.console import read_sink
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from tests.fixtures.stack import Stack, cli, wait_for

DIRECTOR = load_plans(PLANS_DIR).directory.people["zhou-haibo"]  # the catch-all's grade IV escalation (deputy)
REASON = "no plan for this category and grade"

MANHOLE = {"category": "accident_disaster", "subtype": "public_facility", "grade": "IV", "title": "唐家市场旁井盖缺失",
           "location": {"area_code": "440402100001", "area_name": "唐家社区"}}

# Alertmanager webhook v4 with the labels a plain infrastructure rule has: none of Pingan's category labels. Its area
# (Qi'ao, another community than the manhole's) keeps the two from joining as one event.
ALERT = {
    "version": "4", "groupKey": "{}:{alertname=\"PumpStationDown\"}", "status": "firing", "receiver": "pingan",
    "groupLabels": {"alertname": "PumpStationDown"}, "commonLabels": {"alertname": "PumpStationDown"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager.tangjiawan.example:9093",
    "alerts": [{"status": "firing", "labels": {"alertname": "PumpStationDown", "instance": "pump-7:9100",
                                               "severity": "warning", "area_code": "440402100009", "area": "淇澳社区"},
                "annotations": {"summary": "淇澳加压泵站离线"}, "startsAt": "2026-11-25T08:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.tangjiawan.example/graph",
                "fingerprint": "5f0e9c1d2b3a4c5d"}],
}


def timeline(stack: Stack, incident_id: str) -> list[dict[str, Any]]:
    body = stack.incident(incident_id)
    return body["timeline"] if body else []


def activation(stack: Stack, incident_id: str) -> dict[str, Any]:
    return next(a for a in timeline(stack, incident_id) if a["kind"] == "plan_activated")


def console_lines(stack: Stack, incident_id: str) -> list[str]:
    return [r["text"] for r in read_sink(stack.sink) if r["incident_id"] == incident_id]


def test_unplanned_incidents_reach_the_duty_room_with_the_reason_and_escalate(tmp_path: Path,
                                                                              twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE="120")
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        reported = stack.post("/v1/incidents", json=MANHOLE)
        assert reported.status_code == 202, reported.text
        manhole = reported.json()["id"]
        alerted = stack.post("/v1/intake/alertmanager", source="alertmanager", json=ALERT)
        assert alerted.status_code == 202, alerted.text
        alert = alerted.json()["accepted"][0]["id"]

        for incident_id in (manhole, alert):
            # The duty room's console gets the line, within the usual latency, saying why this plan.
            lines = wait_for(lambda i=incident_id: console_lines(stack, i), 60, 0.2, f"console line of {incident_id}")
            assert len(lines) == 1 and "无对应预案" in lines[0] and "没有可用的专项预案" in lines[0], lines
            activated = activation(stack, incident_id)
            assert activated["plan_id"] == "general-incident" and activated["details"]["catch_all"] is True
            assert activated["details"]["reason"].startswith(REASON), activated["details"]["reason"]
            assert "no_plan" not in [a["kind"] for a in timeline(stack, incident_id)]
        assert len({stack.incident(i)["incident"]["id"] for i in (manhole, alert)}) == 2  # type: ignore[index]
        assert "accident_disaster/public_facility IV级" in console_lines(stack, manhole)[0]
        assert "唐家社区" in console_lines(stack, manhole)[0]
        # `pingan timeline` shows the duty officer the same reason.
        shown = cli(stack.env, "timeline", manhole).stdout
        assert "plan=general-incident@v1" in shown and REASON in shown

        # Nobody acknowledges: the duty leader's SMS repeats at t+15 and the director is told at t+30 (two windows).
        def escalated(step: str, deadline: str) -> dict[str, Any] | None:
            return next((a for a in timeline(stack, manhole) if a["kind"] == "escalated"
                         and a["details"]["step"] == step and a["details"]["deadline"] == deadline), None)

        repeat = wait_for(lambda: escalated("duty-officer-sms", "repeat"), 60, 0.2, "the duty leader's repeat")
        director = wait_for(lambda: escalated("director-sms", "escalate"), 60, 0.2, "the escalation to the director")
        assert director["details"]["recipients"] == ["zhou-haibo"] and repeat["seq"] < director["seq"]
        texts = wait_for(lambda: [m["body"] for m in twilio_server.messages
                                  if m["to"] == DIRECTOR.contacts.sms and "尚未确认或仍未归类" in m["body"]],
                         30, 0.2, "the director's SMS")
        assert all("无对应预案" in t and manhole in t for t in texts)
    finally:
        stack.stop()

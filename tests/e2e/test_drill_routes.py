"""An exercise incident may reach only its drill's listed participants, by every route a message can take: the plan's
own targets, a handover to someone else, a manual escalation. Real broker, worker, twilio library and a local
Twilio-compatible server; the run is registered live, so a leak would really reach the server.
"""

from pathlib import Path
from typing import Any

from pingan.handlers.plans.directory import DirectoryIndex, on_duty
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.common import utcnow
from tests.fixtures.stack import READER, Stack, wait_for

PEOPLE: DirectoryIndex = load_plans(PLANS_DIR).directory
COMMANDER = PEOPLE.people["huang-liping"]  # typhoon level II commander
OUTSIDER = PEOPLE.people["xu-jing"]  # not a participant: the handover goes to her


def refusals(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in body["timeline"] if a["kind"] == "failed" and "not a listed participant" in
            str(a["details"].get("reason") or a["details"].get("detail") or a["details"])]


def test_an_exercise_reaches_only_listed_participants_by_every_route(tmp_path: Path, twilio_server) -> None:  # type: ignore[no-untyped-def]
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url, PINGAN_ESCALATION_TIME_SCALE="30")
    stack.up()
    try:
        officer = PEOPLE.people[on_duty(PEOPLE.rosters["duty-officer"], utcnow())]
        assert officer.id not in (COMMANDER.id, OUTSIDER.id)
        # Unknown participants are refused at registration, naming the field.
        coordinator = {"person": READER, "roles": ("drill_coordinator",)}
        bad = stack.post("/v1/drills", json={"run_id": "routes0", "title": "x", "participants": ["nobody-here"]},
                         **coordinator)
        assert bad.status_code == 422 and bad.json()["field"] == "participants" and "nobody-here" in bad.text
        registered = stack.post("/v1/drills", json={"run_id": "routes1", "title": "台风演练（渠道检查）", "live": True,
                                                    "participants": [officer.id]}, **coordinator)
        assert registered.status_code == 201 and registered.json()["participants"] == [officer.id]

        response = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "status": "exercise", "source": "drill", "title": "【演练】台风“海葵”登陆",
            "location": {"area_name": "东湖街道"}, "labels": {"drill_run": "routes1"}})
        assert response.status_code == 202
        incident_id = response.json()["id"]

        # Route 1, the plan's own targets: the listed officer's SMS really goes out; the 13 departments are refused.
        wait_for(lambda: any(m["to"] == officer.contacts.sms for m in twilio_server.messages), 60, 0.2,
                 "the participant's SMS")
        body = wait_for(lambda: (b := stack.incident(incident_id)) and
                        any(r["details"]["step"] == "departments-sms" for r in refusals(b)) and b, 30, 0.2,
                        "the departments refused")

        # Route 2, a manual escalation: it fires the commander's call now, to a non-participant: refused.
        commander = {"person": COMMANDER.id, "roles": ("commander",)}  # the commander's own token: the actor
        escalated = stack.post(f"/v1/incidents/{incident_id}/escalate", json={"reason": "演练：手动升级"}, **commander)
        assert escalated.status_code == 200, escalated.text
        wait_for(lambda: any(r["details"]["recipient"] == COMMANDER.id and r["details"]["step"] == "commander-voice"
                             for r in refusals(stack.incident(incident_id) or {"timeline": []})), 30, 0.2,
                 "the escalated call to the commander refused")

        # Route 3, a handover: the commander role goes to someone not listed; her call (the repeat) is refused.
        handed = stack.post(f"/v1/incidents/{incident_id}/handover", json={"to": OUTSIDER.id, "role": "commander",
                                                                            "reason": "演练"}, **commander)
        assert handed.status_code == 200, handed.text
        wait_for(lambda: any(r["details"]["recipient"] == OUTSIDER.id
                             for r in refusals(stack.incident(incident_id) or {"timeline": []})), 60, 0.3,
                 "the new commander's call refused")

        body = stack.incident(incident_id)
        assert body is not None
        # Nothing but the participant's own SMS ever reached the provider: no call, no other number.
        assert {m["to"] for m in twilio_server.messages} == {officer.contacts.sms}
        assert twilio_server.calls == []
        assert all(m["body"].startswith("【演练】") or m["body"].startswith("[DRILL]") for m in twilio_server.messages)
        refused_people = {r["details"]["recipient"] for r in refusals(body)}
        assert {COMMANDER.id, OUTSIDER.id} <= refused_people and officer.id not in refused_people
        kinds = [a["kind"] for a in body["timeline"]]
        assert "escalated" in kinds and "handed_over" in kinds

        # Ending the run closes the live window: the officer's next repeat goes to the sandbox, not to Twilio.
        sent = len(twilio_server.messages)
        assert stack.post("/v1/drills/routes1/end", **coordinator).status_code == 200
        assert stack.get("/v1/drills/routes1").json()["ended_at"]
        wait_for(lambda: sum(1 for a in (stack.incident(incident_id) or {"timeline": []})["timeline"]
                             if a["kind"] == "notified" and a["details"]["recipient"] == officer.id) > sent, 60, 0.3,
                 "another repeat to the officer, sandboxed")
        assert len(twilio_server.messages) == sent
    finally:
        stack.stop()

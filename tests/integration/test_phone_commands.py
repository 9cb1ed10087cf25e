"""Issue 14, finding 3, in-process on a real store: a voice keypress posted again with its CallSid runs once, and who
may command an incident by SMS (a number the incident reached, or the person on duty on one of its rosters).
The SMS cases against a real stack are in tests/e2e/test_sms_commands.py."""

import secrets
from pathlib import Path

from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from pingan.handlers.channels.twilio_voice import ack_url
from pingan.schemas.common import utcnow
from pingan.schemas.notification import DeliveryState
from pingan.settings import Settings
from pingan.store.ledger import ledger_row
from pingan.store.repository import Store
from pingan.store.tables import notifications
from pingan.web.app import create_api
from tests.integration.access_rig import PLANS, report

TWILIO_TOKEN = "t-twilio-" + "y" * 16
BASE = "http://testserver"


def fire(tmp_path: Path, db_url: str) -> tuple[TestClient, Store, str]:
    """The API on a store holding a grade III building fire, planned: t+0 SMS intents, later steps pending."""
    store = Store(db_url)
    app = create_api(Settings(data_dir=tmp_path, heartbeat_interval_s=0, twilio_auth_token=TWILIO_TOKEN), store,
                     tokens={"api": "a", "alertmanager": "b", "cap": "c", "metrics": "d"})
    return TestClient(app), store, report(store, f"仓库起火 {secrets.token_hex(3)}", "accident_disaster", "fire", "III")


def post_signed(client: TestClient, url: str, form: dict[str, str]) -> str:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    response = client.post(url.removeprefix(BASE), data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response.text


def test_a_keypress_posted_again_with_its_callsid_escalates_once(tmp_path: Path, sqlite_url: str) -> None:
    client, store, incident_id = fire(tmp_path, sqlite_url)
    sms = next(e.notification for e in store.ledger_for(incident_id) if e.notification.step == "duty-officer-sms")
    call = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "Digits": "5",
            "From": "+15005550006", "To": sms.recipient.address}
    url = ack_url(BASE, sms.idempotency_key)
    answers = [post_signed(client, url, call) for _ in range(3)]
    assert "Received" in answers[0] and answers[1] == answers[0] == answers[2]
    escalated = [a for a in store.timeline(incident_id) if a.kind.value == "escalated"]
    assert len(escalated) == 1 and escalated[0].actor == sms.recipient.id
    # Another call is another command.
    post_signed(client, url, {**call, "CallSid": "CA" + secrets.token_hex(16)})
    assert len([a for a in store.timeline(incident_id) if a.kind.value == "escalated"]) == 2


def sms(client: TestClient, sender: str, text: str) -> str:
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15005550006", "Body": text, "NumMedia": "0"}
    return post_signed(client, BASE + "/v1/intake/twilio/sms", form)


def test_who_may_command_by_sms(tmp_path: Path, sqlite_url: str) -> None:
    client, store, incident_id = fire(tmp_path, sqlite_url)
    officer = next(e.notification for e in store.ledger_for(incident_id) if e.notification.step == "duty-officer-sms")
    # Nothing has been sent yet (the intents are still `intended`): the officer may command all the same, being on
    # duty now on the duty-officer roster this level names.
    assert store.ledger_entry(officer.idempotency_key).state is DeliveryState.intended  # type: ignore[union-attr]
    assert "Acknowledged" in sms(client, officer.recipient.address, f"{incident_id} 1")

    # Someone the level reaches on no roster: a notification that failed gives no right to command; a sent one does.
    outsider = PLANS.directory.people["ke-weiming"]
    assert outsider.contacts.sms
    failed = officer.model_copy(update={
        "idempotency_key": secrets.token_hex(16), "recipient": officer.recipient.model_copy(update={
            "id": outsider.id, "address": outsider.contacts.sms})})
    with store.engine.begin() as conn:
        conn.execute(notifications.insert().values(**{**ledger_row(failed, utcnow()), "state": "failed"}))
    refused = sms(client, outsider.contacts.sms, f"{incident_id} 2")
    assert "Sorry" in refused and "not carried out" in refused, refused
    entry = [a for a in store.timeline(incident_id) if a.kind.value == "refused"][-1]
    assert "was not reached" in entry.details["reason"] and "failed" in entry.details["reason"]
    store.record_result(failed.idempotency_key, DeliveryState.sent, "SM-x", "", [])
    assert "Escalated" in sms(client, outsider.contacts.sms, f"{incident_id} 2")

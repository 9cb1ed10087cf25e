"""Issue 14, finding 4: "A CAP Cancel from another sender closed someone else's incident: all CAP senders share one
token and <sender> is whatever the message says."

CAP senders and Alertmanager sources are bound to intake tokens (web/intake_tokens.py), and a follow-up applies only
to its own sender's incident, decided in triage (handlers/incidents/triage.py), so every way in is covered. Through
the HTTP app on a real store (SQLite and PostgreSQL); triage runs on exactly what the relay would publish (the stage
decides, so no broker is needed). The CAP messages are the OASIS thunderstorm sample (../shared/samples/cap), the
Alertmanager ones the prom2teams samples (../shared/samples/alertmanager), read where they are.
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.stages import triage_stage
from pingan.web.app import create_api
from tests.fixtures.cap_chain import CAP_DIR, QIAO_AREA, SENDER, cap_message, chain_message, reference
from tests.fixtures.stack import pingan_env, wait_for

AM_DIR = CAP_DIR.parent / "alertmanager"
pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir() or not AM_DIR.is_dir(),
                                reason=f"samples not found at {CAP_DIR.parent}")
WINDOW = timedelta(hours=1)
OTHER = "warnings@other-agency.example.org"
ALERT = ("TJW-B-1", "2026-08-01T08:00:00+08:00")
CANCEL = ("TJW-B-2", "2026-08-01T09:00:00+08:00")


def app(tmp_path: Path, store: Store, tokens: dict[str, str] | None = None, **settings: Any) -> TestClient:
    return TestClient(create_api(Settings(data_dir=tmp_path, **settings), store, tokens=tokens))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def triage_all(store: Store) -> None:
    """What the worker does next: triage every event the relay would publish, in order."""
    for row in store.unpublished():
        store.mark_published([row.event_id])
        triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW)


def state(store: Store, incident_id: str) -> str:
    incident = store.get_incident(incident_id)
    assert incident is not None, incident_id
    return incident.state.value


def forged_cancel(alert: IntakeItem) -> IntakeItem:
    """The other sender's own Cancel, pointed at `alert` after parsing (what the CAP route no longer lets through,
    and what a feed, or an event accepted before the rule, can still carry to triage)."""
    [own] = parse_cap(cap_message(identifier=CANCEL[0], sent=CANCEL[1], msgType="Cancel", sender=OTHER,
                                  references=reference("TJW-B-0", ALERT[1], sender=OTHER), area=QIAO_AREA))
    return own.model_copy(update={"references": [alert.message_key],
                                  "report": own.report.model_copy(update={"dedup_key": alert.message_key})})


def other_senders_cancel() -> bytes:
    """A Cancel from another agency naming the thunderstorm Alert of KSTO@NWS.NOAA.GOV."""
    return cap_message(identifier=CANCEL[0], sent=CANCEL[1], msgType="Cancel", references=reference(*ALERT),
                       sender=OTHER, area=QIAO_AREA)


# ── CAP: a follow-up applies only to its own sender's messages ───────────────────────────────────────────────────

def test_a_cancel_from_another_sender_is_refused_and_leaves_the_incident_open(tmp_path: Path, store: Store) -> None:
    # One token for every CAP sender, as before (a plain mapping: any sender), which is how the finding happened.
    client = app(tmp_path, store, tokens={"api": "t-api", "cap": "t-cap", "alertmanager": "t-am"})
    opened = client.post("/v1/intake/cap", content=chain_message(*ALERT), headers=bearer("t-cap"))
    assert opened.status_code == 202, opened.text
    incident_id = opened.json()["accepted"][0]["id"]
    triage_all(store)
    assert state(store, incident_id) != "closed"

    cancel = client.post("/v1/intake/cap", content=other_senders_cancel(), headers=bearer("t-cap"))
    triage_all(store)
    assert state(store, incident_id) != "closed", "another sender's Cancel closed KSTO's incident"
    assert cancel.status_code == 409, cancel.text
    error = cancel.json()
    assert error["field"] == "alert.references" and OTHER in error["error"] and SENDER in error["error"]
    assert incident_id not in error["error"]  # the other agency may not read KSTO's incident
    assert [a.kind.value for a in store.timeline(incident_id)] == ["created"]


def test_triage_refuses_another_senders_follow_up_however_it_came_in(tmp_path: Path, store: Store) -> None:
    """The decision is triage's: a message that never met the HTTP check (a feed, an event accepted before this
    rule, an API close naming a CAP key) is refused there, logged as `refused`, and the incident is untouched."""
    [alert] = parse_cap(chain_message(*ALERT))
    incident_id = store.accept(alert, "incidents.raw").incident_id
    forged = forged_cancel(alert)
    cancel_id = store.accept(forged, "incidents.raw").incident_id
    client = app(tmp_path, store, tokens={"api": "t-api", "cap": "t-cap", "alertmanager": "t-am"})
    close = client.post("/v1/incidents?kind=close", headers=bearer("t-api"), json={
        "category": "natural_disaster", "subtype": "meteorological", "grade": "IV", "title": "close it",
        "dedup_key": alert.message_key})
    assert close.status_code == 202
    triage_all(store)

    assert state(store, incident_id) != "closed"
    assert [a.kind.value for a in store.timeline(incident_id)] == ["created"]
    refused = store.timeline(cancel_id)
    assert [a.kind.value for a in refused] == ["refused"]
    assert refused[0].details["field"] == "references" and refused[0].details["incident"] == incident_id
    assert OTHER in refused[0].details["reason"] and SENDER in refused[0].details["reason"]
    api_refused = store.timeline(close.json()["id"])
    assert [a.kind.value for a in api_refused] == ["refused"], "the api token closed a CAP sender's incident"
    assert (store.ignored_reason(cancel_id) or "").startswith("refused")


def test_on_the_real_pipeline_another_senders_cancel_is_refused(tmp_path: Path, broker_bootstrap: str, db_url: str,
                                                                worker_factory: Any) -> None:
    """The same through the outbox, the relay, a real tansu broker and a worker's triage agent."""
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_HEARTBEAT_INTERVAL_S="0")
    store, topic = Store(db_url), env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
    worker = worker_factory(env)

    def kinds(some_id: str) -> list[str]:
        return [a.kind.value for a in store.timeline(some_id)]

    def until(predicate: Any, what: str) -> None:
        try:
            wait_for(predicate, 90, 0.1, what)
        except AssertionError:
            raise AssertionError(f"{what}\n{worker.log_tail()}") from None

    try:
        [alert] = parse_cap(chain_message(*ALERT))
        incident_id = store.accept(alert, topic).incident_id
        until(lambda: "plan_activated" in kinds(incident_id), "KSTO's Alert planned")
        cancel_id = store.accept(forged_cancel(alert), topic).incident_id
        until(lambda: kinds(cancel_id) == ["refused"], "the other sender's Cancel refused by the worker's triage")
        assert state(store, incident_id) != "closed" and "closed" not in kinds(incident_id)
        assert (store.ignored_reason(cancel_id) or "").startswith("refused")
    finally:
        store.close()


def test_the_same_senders_cancel_still_closes(tmp_path: Path, store: Store) -> None:
    client = app(tmp_path, store, intake_tokens=f"cap:nws=t-nws|{SENDER}")
    incident_id = client.post("/v1/intake/cap", content=chain_message(*ALERT), headers=bearer("t-nws")
                              ).json()["accepted"][0]["id"]
    cancel = chain_message(*CANCEL, msg_type="Cancel", refs=(reference(*ALERT),))
    assert client.post("/v1/intake/cap", content=cancel, headers=bearer("t-nws")).status_code == 202
    triage_all(store)
    assert state(store, incident_id) == "closed"


# ── CAP: a token may use only the <sender> values it lists ───────────────────────────────────────────────────────

def test_a_cap_token_may_use_only_its_own_senders(tmp_path: Path, store: Store) -> None:
    client = app(tmp_path, store, intake_tokens=f"cap:nws=t-nws|{SENDER},cap:other=t-other|{OTHER}")
    assert client.post("/v1/intake/cap", content=chain_message(*ALERT), headers=bearer("t-nws")).status_code == 202
    # The other agency's token claiming KSTO's sender: 403 naming the field and the value, and nothing is stored.
    before = len(store.unpublished())
    claimed = client.post("/v1/intake/cap", content=chain_message("TJW-B-9", ALERT[1]), headers=bearer("t-other"))
    assert claimed.status_code == 403, claimed.text
    assert claimed.json()["field"] == "alert.sender" and claimed.json()["value"] == SENDER
    assert "other" in claimed.json()["error"]  # the token's name, so the operator knows which binding to fix
    assert len(store.unpublished()) == before
    # Its own sender goes through.
    own = cap_message(identifier="TJW-O-1", sent=ALERT[1], sender=OTHER, area=QIAO_AREA)
    assert client.post("/v1/intake/cap", content=own, headers=bearer("t-other")).status_code == 202
    # A named token is still only an intake token: a person's route answers it 403, not 401.
    assert client.get("/v1/incidents", headers=bearer("t-other")).status_code == 403


def test_a_legacy_cap_token_may_use_no_sender_unless_it_says_star(tmp_path: Path, store: Store) -> None:
    legacy = app(tmp_path, store, intake_tokens="cap=t-cap")
    refused = legacy.post("/v1/intake/cap", content=chain_message(*ALERT), headers=bearer("t-cap"))
    assert refused.status_code == 403 and refused.json()["field"] == "alert.sender", refused.text
    assert "PINGAN_INTAKE_TOKENS" in refused.json()["error"]  # says how to bind it
    anyone = app(tmp_path, store, intake_tokens="cap=t-cap|*")
    assert anyone.post("/v1/intake/cap", content=chain_message(*ALERT), headers=bearer("t-cap")).status_code == 202


def test_several_tokens_per_source_from_settings_and_the_token_file(tmp_path: Path, sqlite_url: str) -> None:
    from pingan.web.guards import load_tokens

    settings = Settings(data_dir=tmp_path, intake_tokens=f"cap:nws=t-nws|{SENDER}|KSTO2@NWS.NOAA.GOV,"
                        "alertmanager:prod=t-prod|https://am.prod.example:9093")
    tokens = load_tokens(settings)
    nws = tokens.find("cap", "t-nws")
    assert nws is not None and nws.name == "nws" and nws.senders == (SENDER, "KSTO2@NWS.NOAA.GOV")
    assert tokens.find("cap", "t-prod") is None and tokens.find("alertmanager", "t-prod") is not None
    # A source with a configured token gets no generated one beside it (an any-sender CAP token nobody asked for).
    assert not (tmp_path / "intake-tokens.json").exists() or "cap" not in json.loads(
        (tmp_path / "intake-tokens.json").read_text())
    # The generated single tokens are kept in the old shape (a string per source) with their bindings beside them.
    fresh = tmp_path / "fresh"
    generated = load_tokens(Settings(data_dir=fresh))
    stored = json.loads((fresh / "intake-tokens.json").read_text())
    assert isinstance(stored["cap"], str) and stored["senders"]["cap"] == ["*"]
    assert set(generated) == {"api", "alertmanager", "cap", "metrics"}
    again = load_tokens(Settings(data_dir=fresh))
    assert again == generated and again.find("cap", stored["cap"]).senders == ("*",)
    # A file written before bindings existed: its CAP token may use no sender until bound (README: migration).
    old = tmp_path / "old"
    old.mkdir()
    (old / "intake-tokens.json").write_text(json.dumps({"api": "a", "alertmanager": "b", "cap": "c", "metrics": "d"}))
    assert load_tokens(Settings(data_dir=old)).find("cap", "c").senders == ()
    with pytest.raises(ValueError, match="PINGAN_INTAKE_TOKENS"):
        load_tokens(Settings(data_dir=tmp_path, intake_tokens="cap:bad name=t|x"))


def test_a_cap_feed_listing_its_senders_hands_on_only_theirs(tmp_path: Path, store: Store) -> None:
    from pingan.web.intake import Intake, feed_items

    intake = Intake(Settings(data_dir=tmp_path), store, {"api": "t-api"})
    try:
        [nws] = parse_cap(chain_message(*ALERT))
        [other] = parse_cap(cap_message(identifier="TJW-O-2", sent=ALERT[1], sender=OTHER, area=QIAO_AREA))
        feed_items(intake, "http://127.0.0.1/feed.atom", (SENDER,), [nws, other])  # PINGAN_CAP_FEEDS=url|KSTO…
        assert [RawEvent.model_validate_json(r.payload).message_key for r in store.unpublished()] == [nws.message_key]
        feed_items(intake, "http://127.0.0.1/other.atom", (), [other])  # a feed listing none: any sender
        assert len(store.unpublished()) == 2
    finally:
        intake.committer.stop()
        intake.parser.stop()


# ── Alertmanager: a resolve closes only what its own source opened ───────────────────────────────────────────────

def am_sample(status: str, external_url: str | None = None) -> dict[str, Any]:
    hook = json.loads((AM_DIR / "prom2teams-resolved-1-alert.json").read_text())
    hook["status"] = status
    for alert in hook["alerts"]:
        alert["status"] = status
    if external_url is not None:
        hook["externalURL"] = external_url
    return hook


def test_one_alertmanager_cannot_close_anothers_incident(tmp_path: Path, store: Store) -> None:
    client = app(tmp_path, store, intake_tokens="alertmanager:prod=t-prod,alertmanager:lab=t-lab")
    fired = client.post("/v1/intake/alertmanager", json=am_sample("firing"), headers=bearer("t-prod"))
    assert fired.status_code == 202, fired.text
    incident_id = fired.json()["accepted"][0]["id"]
    # The lab's Alertmanager resolves an alert with the same labels (so the same fingerprint).
    lab = client.post("/v1/intake/alertmanager", json=am_sample("resolved"), headers=bearer("t-lab"))
    assert lab.status_code == 202, lab.text
    triage_all(store)
    assert state(store, incident_id) != "closed", "the lab's resolve closed production's incident"
    incident = store.get_incident(incident_id)
    assert incident is not None and incident.labels["am_source"] == "prod"
    # Production's own resolve closes it.
    client.post("/v1/intake/alertmanager", json=am_sample("resolved"), headers=bearer("t-prod"))
    triage_all(store)
    assert state(store, incident_id) == "closed"


def test_an_alertmanager_token_may_speak_only_for_its_external_urls(tmp_path: Path, store: Store) -> None:
    client = app(tmp_path, store, intake_tokens="alertmanager:prod=t-prod|https://am.prod.example:9093")
    wrong = client.post("/v1/intake/alertmanager", json=am_sample("firing"), headers=bearer("t-prod"))
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["field"] == "externalURL" and wrong.json()["value"] == "my.prometheusalertmanager.url"
    right = am_sample("firing", external_url="https://am.prod.example:9093")
    assert client.post("/v1/intake/alertmanager", json=right, headers=bearer("t-prod")).status_code == 202

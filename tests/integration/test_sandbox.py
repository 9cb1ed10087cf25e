"""The drill sandbox is enforced in the notifier itself: exercise traffic is recorded, never sent."""

from datetime import UTC, datetime
from pathlib import Path

from pingan.handlers.channels.console import ConsoleChannel, SandboxChannel, read_sink
from pingan.handlers.channels.twilio_sms import TwilioSmsChannel
from pingan.schemas.notification import Notification, Recipient
from pingan.store.repository import Store
from pingan.streams.stages import notify_stage

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def order(key: str, status: str, person: str = "zhang") -> Notification:
    return Notification(idempotency_key=key * 4, incident_id="INC-1", incident_status=status, plan_id="p",
                        plan_version=1, step="s", recipient=Recipient(id=person, name="张伟", channel="twilio_sms",
                                                                      address="+12025550101"),
                        channel="twilio_sms", text="【演练】台风 INC-1", created_at=T0)


def seed(store: Store, n: Notification) -> None:
    store.apply_response(n.incident_id + n.idempotency_key, None, None, [n], [])


def test_exercise_sms_goes_to_the_sandbox_not_to_twilio(tmp_path: Path, sqlite_url: str, twilio_server) -> None:  # type: ignore[no-untyped-def]
    store = Store(sqlite_url)
    channels = {
        "console": ConsoleChannel(tmp_path / "console.log"),
        "sandbox": SandboxChannel(tmp_path / "sandbox.log"),
        "twilio_sms": TwilioSmsChannel(twilio_server.account_sid, twilio_server.auth_token, twilio_server.from_number,
                                       api_base_url=twilio_server.base_url),
    }
    drill, real = order("dr01", "exercise"), order("re01", "actual")
    for n in (drill, real):
        seed(store, n)
        notify_stage(store, channels, n)
    assert [m["body"] for m in twilio_server.messages] == [real.text]  # only the actual one reached Twilio
    assert [r["idempotency_key"] for r in read_sink(tmp_path / "sandbox.log")] == [drill.idempotency_key]
    entry = store.ledger_entry(drill.idempotency_key)
    assert entry is not None and entry.state.value == "delivered" and entry.provider_id.startswith("console:")

    # With live participants, a listed one is reached for real; anyone else is refused and it is logged.
    listed, other = order("li01", "exercise", "zhang"), order("ot01", "exercise", "wang")
    for n in (listed, other):
        seed(store, n)
        notify_stage(store, channels, n, live_participants=frozenset({"zhang"}))
    assert len(twilio_server.messages) == 2
    refused = store.ledger_entry(other.idempotency_key)
    assert refused is not None and refused.state.value == "failed" and "not a listed participant" in refused.detail
    store.close()


def test_a_registered_drill_run_decides_who_is_reached(tmp_path: Path, sqlite_url: str, twilio_server) -> None:  # type: ignore[no-untyped-def]
    from pingan.store.drills import DrillStore

    store = Store(sqlite_url)
    channels = {"sandbox": SandboxChannel(tmp_path / "sandbox.log"),
                "twilio_sms": TwilioSmsChannel(twilio_server.account_sid, twilio_server.auth_token,
                                               twilio_server.from_number, api_base_url=twilio_server.base_url)}
    runs = DrillStore(store)
    runs.register("live1", "台风演练", True, ["zhang"])
    runs.register("dry1", "台风演练", False, ["zhang"])
    runs.register("over1", "台风演练", True, ["zhang"])
    runs.end("over1")

    def send(key: str, run: str | None, person: str) -> str:
        n = order(key, "exercise", person).model_copy(update={"drill_run": run})
        seed(store, n)
        notify_stage(store, channels, n)
        entry = store.ledger_entry(n.idempotency_key)
        assert entry is not None
        return entry.state.value

    assert send("aa01", "live1", "zhang") == "sent"  # listed, live run: really sent
    assert send("bb01", "live1", "wang") == "failed"  # not listed: refused, and the ledger says why
    assert send("cc01", "dry1", "zhang") == "delivered"  # a run that is not live: the sandbox only
    assert send("dd01", "over1", "zhang") == "delivered"  # an ended run: the sandbox only
    assert send("ee01", "nobody", "zhang") == "delivered"  # an unknown run: the sandbox only
    assert send("ff01", None, "zhang") == "delivered"
    assert [m["to"] for m in twilio_server.messages] == ["+12025550101"]
    refused = store.ledger_entry("bb01" * 4)
    assert refused is not None and "wang is not a listed participant" in refused.detail
    assert len(read_sink(tmp_path / "sandbox.log")) == 4
    store.close()

"""Delivery guarantees of the SMS path end to end: a real tansu broker, a real worker process with the real twilio
client pointed at the local Twilio-compatible server, and the SQLite store.

1. SIGKILL in the middle of a burst of 500 SMS: the restarted worker reconciles what was left `sending` by
   listing the messages at "Twilio", so every incident's text goes out exactly once.
2. Twilio answers 503 to every send for two minutes: the intents wait in the ledger with backoff (never
   `failed`), and once Twilio is back every text goes out, once.

Each incident produces exactly one SMS: the worker runs on a plan set of its own (the shipped directory plus one
plan whose only step texts one person "测试 {id}", a body unique per incident, which reconcile relies on).
"""

import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from tests.fixtures.stack import Proc, pingan_env, wait_for
from tests.fixtures.twilio_server import FakeTwilio

PLAN_ID = "sms-test"
RECIPIENT = "zhou-haibo"  # in plans/directory/people.yaml, with an sms contact
SETTLED = {"sent", "delivered", "failed"}


def plan_yaml() -> str:
    level = [{
        "grade": grade, "response_level": "测试响应",
        "notify": [{"id": "sms", "targets": [{"person": RECIPIENT}], "channels": ["sms"], "delay_min": 0,
                    "template": {"zh": "测试 {id}"}}],
    } for grade in ("I", "II", "III", "IV")]
    plan = {
        "id": PLAN_ID, "title": {"zh": "短信投递测试预案", "en": "SMS delivery test plan"}, "version": 1,
        "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
        "approved_by": ["huang-liping"], "last_editor": "zhou-haibo",
        "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]},
        "levels": level,
    }
    return yaml.safe_dump(plan, allow_unicode=True, sort_keys=False)


def sms_plans(tmp_path: Path) -> Path:
    plans_dir = tmp_path / "plans"
    shutil.copytree(PLANS_DIR / "directory", plans_dir / "directory")
    (plans_dir / f"{PLAN_ID}.yaml").write_text(plan_yaml(), encoding="utf-8")
    assert [p.id for p in load_plans(plans_dir).plans] == [PLAN_ID]
    return plans_dir


def recipient_number() -> str:
    people = yaml.safe_load((PLANS_DIR / "directory" / "people.yaml").read_text(encoding="utf-8"))["people"]
    return str(next(p for p in people if p["id"] == RECIPIENT)["contacts"]["sms"])


@dataclass
class Rig:
    env: dict[str, str]
    store: Store
    twilio: FakeTwilio

    def accept(self, n: int, tag: str) -> list[str]:
        """`n` incidents with distinct keys into the outbox; the worker's recovery and relay publish them."""
        raw_topic = self.env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
        reports = [IncidentReport(category="accident_disaster", subtype="transport", grade="IV",
                                  title=f"交通事故 {tag} {i}", dedup_key=f"{tag}-{i}") for i in range(n)]
        return [a.incident_id for a in self.store.accept_many(reports, raw_topic)]

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def states(self) -> Counter[str]:
        return Counter({r[0]: r[1] for r in self.sql("SELECT state, COUNT(*) FROM notifications GROUP BY state")})

    def kinds(self, kind: str) -> Counter[str]:
        """incident id -> how many log entries of this kind it has."""
        rows = self.sql("SELECT incident_id, COUNT(*) FROM actions WHERE kind = :kind GROUP BY incident_id",
                        kind=kind)
        return Counter({r[0]: r[1] for r in rows})

    def bodies(self) -> Counter[str]:
        return Counter(m["body"] for m in self.twilio.messages)

    def posts(self) -> int:
        return sum(1 for method, _ in self.twilio.requests if method == "POST")


@pytest.fixture
def rig(tmp_path: Path, broker_bootstrap: str, twilio_server: FakeTwilio):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{(data_dir / 'pingan.db').resolve()}"
    env = pingan_env(
        data_dir, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
        PINGAN_PLANS_DIR=str(sms_plans(tmp_path)),
        PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid, PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
        PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number, PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url,
        # A killed worker's claims are settled once the lease has passed; 15 s still outlasts the channel's 10 s
        # timeout, and keeps the restart within the test's patience.
        PINGAN_SENDING_LEASE_S="15",
    )
    store = Store(db_url)
    yield Rig(env, store, twilio_server)
    store.close()


def waiting(rig: Rig, workers: list[Proc], predicate, timeout_s: float, interval_s: float, what: str):  # type: ignore[no-untyped-def]
    """wait_for, but a timeout shows what the store, the server and the workers were doing."""
    try:
        return wait_for(predicate, timeout_s, interval_s, what)
    except AssertionError as e:
        logs = "\n".join(f"--- {w.log_path.name}\n{w.log_tail(40)}" for w in workers)
        raise AssertionError(f"{e}; ledger {dict(rig.states())}, {len(rig.twilio.messages)} messages, "
                             f"{rig.posts()} POSTs\n{logs}") from None


def assert_each_incident_texted_once(rig: Rig, ids: list[str]) -> None:
    number = recipient_number()
    messages = rig.twilio.messages
    bodies = rig.bodies()
    twice = {b: c for b, c in bodies.items() if c > 1}
    assert not twice, f"{len(twice)} texts went out more than once: {list(twice.items())[:5]}"
    assert set(bodies) == {f"测试 {i}" for i in ids}
    assert len(messages) == len(ids)
    assert {m["to"] for m in messages} == {number}

    rows = rig.sql("SELECT incident_id, state, provider_id, detail FROM notifications")
    assert len(rows) == len(ids) and {r.incident_id for r in rows} == set(ids)  # one intent per incident
    failed = [(r.incident_id, r.detail) for r in rows if r.state not in ("sent", "delivered")]
    assert not failed, f"{len(failed)} of {len(ids)} intents not sent: {failed[:5]}"
    sid_of = {m["body"]: m["sid"] for m in messages}
    assert {r.provider_id for r in rows} == set(sid_of.values())  # every row points at its own message
    assert rig.kinds("notified") == Counter({i: 1 for i in ids})
    assert rig.kinds("failed") == Counter()


class Stalled:
    """True once a POST has been in flight at the server, unanswered, for `hold_s` (the held one)."""

    def __init__(self, rig: Rig, hold_s: float) -> None:
        self.rig, self.hold_s = rig, hold_s
        self.since: float | None = None
        self.posts = 0

    def __call__(self) -> bool:
        posts = self.rig.posts()
        if posts <= len(self.rig.twilio.messages) or posts != self.posts:
            self.since, self.posts = time.monotonic(), posts
            return posts > len(self.rig.twilio.messages) and self.hold_s <= 0
        return self.since is not None and time.monotonic() - self.since >= self.hold_s


def test_sigkill_mid_send_sends_each_notification_exactly_once(rig: Rig, worker_factory) -> None:  # type: ignore[no-untyped-def]
    total = 500
    ids = rig.accept(total, "kill")
    assert len(set(ids)) == total
    started = time.monotonic()
    first = worker_factory(rig.env)
    waiting(rig, [first], lambda: len(rig.twilio.messages) >= 100, 120, 0.005, "100 texts before the kill")
    # Kill in the worst place: "Twilio" has taken the next text but the worker has not recorded it. The server
    # holds that POST for 3 s and keeps the message; the worker is killed while it waits for the answer.
    rig.twilio.delay_next(1, seconds=3.0)
    in_flight = Stalled(rig, hold_s=0.5)
    waiting(rig, [first], in_flight, 20, 0.01, "the held POST to be in flight")
    first.kill_tree()
    left = rig.states()
    waiting(rig, [first], lambda: len(rig.twilio.messages) == in_flight.posts, 10, 0.05, "the held text to land")
    held = rig.twilio.messages[-1]
    # The notifier claims a recipient's messages a few at a time (streams/notifier.CLAIM_AHEAD), so the held
    # send's next ones may be `sending` too; only what "Twilio" answered is `sent`.
    assert left["sending"] >= 1 and left["sent"] == in_flight.posts - 1, dict(left)

    second = worker_factory(rig.env)
    waiting(rig, [first, second], lambda: len(rig.twilio.messages) >= total, 180, 0.2, f"{total} texts")
    waiting(rig, [first, second], lambda: set(rig.states()) <= SETTLED, 60, 0.2, "every intent to settle")
    elapsed = time.monotonic() - started
    time.sleep(6)  # the scheduler re-publishes stale intents after 5 s: a late duplicate would show by now

    print(f"\nkilled after {in_flight.posts} POSTs, the last held; ledger at kill: {dict(left)}; "
          f"{total} texts {elapsed:.1f}s after the first worker started")
    assert_each_incident_texted_once(rig, ids)
    [row] = rig.sql("SELECT state, provider_id, detail FROM notifications WHERE provider_id = :sid", sid=held["sid"])
    assert (row.state, row.detail) == ("sent", "reconciled after restart")  # found at "Twilio", not sent again


def test_twilio_503_for_two_minutes_delays_but_loses_nothing(rig: Rig, worker_factory) -> None:  # type: ignore[no-untyped-def]
    outage_s, total = 120.0, 20
    outage_ends = rig.twilio.fail_for(outage_s, status=503)
    ids = rig.accept(total, "outage")
    worker = worker_factory(rig.env)
    waiting(rig, [worker], lambda: sum(rig.states().values()) == total, 60, 0.1, "every intent in the ledger")
    waiting(rig, [worker], lambda: rig.posts() >= total, 60, 0.1, "a first attempt at every text")

    max_attempts = 0
    while time.monotonic() < outage_ends - 1.0:
        assert rig.twilio.messages == []
        states = rig.states()
        assert set(states) <= {"intended", "sending"}, f"during the outage: {dict(states)}"
        assert rig.kinds("failed") == Counter()
        max_attempts = max(max_attempts, *(r[0] for r in rig.sql("SELECT attempts FROM notifications")))
        time.sleep(1.0)
    posts_in_outage = rig.posts()
    assert max_attempts > 3, "the worker stopped retrying during the outage"

    waiting(rig, [worker], lambda: len(rig.twilio.messages) >= total, 60, 0.2, f"{total} texts after the outage")
    after_s = time.monotonic() - outage_ends
    waiting(rig, [worker], lambda: set(rig.states()) <= SETTLED, 30, 0.2, "every intent to settle")
    time.sleep(2)
    attempts = sorted(r[0] for r in rig.sql("SELECT attempts FROM notifications"))
    print(f"\n{posts_in_outage} refused POSTs in {outage_s:.0f}s; all {total} texts {after_s:.1f}s after the "
          f"outage; attempts per intent {attempts}")
    assert_each_incident_texted_once(rig, ids)

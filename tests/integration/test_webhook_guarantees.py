"""Webhooks are at-least-once, end to end: a real tansu broker, real worker processes and the SQLite store, and a
webhook receiver on 127.0.0.1 that can hold requests (so they are in flight when the worker is killed) and answer
503 for a while.

Issue 15: the webhook send in flight when the worker was killed was never sent again (its row stayed `intended`
through 29 attempts of "cannot tell whether it went out", failed at 30), and the same after a 5xx or a timeout.
Now every webhook arrives, a repeat carries the same Idempotency-Key, and no row is left intended, sending or
failed, nor any log entry "unknown".
"""

import json
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from pingan.handlers.channels.webhook import verify
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from tests.fixtures.stack import Proc, pingan_env, wait_for

SECRET = "whsec-guarantees-0123456789"
PLAN_ID = "webhook-test"
PEOPLE = ["zhou-haibo", "lin-xiaodong", "ye-qing", "ou-jianping", "xu-jing"]  # in plans/directory/people.yaml
INCIDENTS = 20


@dataclass
class Receiver:
    """Answers 200 once a request is taken, after `hold_s`, or 503 to the next `refuse_next` requests."""

    port: int = 0
    hold_s: float = 0.0
    refuse_next: int = 0
    holding: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, person: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{person}"

    def taken(self) -> dict[str, list[dict[str, Any]]]:
        """Idempotency-Key -> the requests answered 2xx with it."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self.lock:
            for r in self.requests:
                if r["status"] == 200:
                    out[r["key"]].append(r)
        return out


def _handler_for(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            valid = verify(SECRET, self.headers.get("X-Pingan-Timestamp", ""), body,
                           self.headers.get("X-Pingan-Signature", ""))
            with rx.lock:
                refused = rx.refuse_next > 0
                rx.refuse_next -= 1 if refused else 0
                record = {"key": self.headers.get("Idempotency-Key"), "body_key": json.loads(body)["idempotency_key"],
                          "path": self.path, "valid": valid, "status": 503 if refused else 200}
                rx.requests.append(record)
                hold = 0.0 if refused else rx.hold_s
                rx.holding += 1 if hold else 0
            if hold:
                time.sleep(hold)
                with rx.lock:
                    rx.holding -= 1
            reply = b"busy" if refused else b'{"ok":true}'
            try:
                self.send_response(record["status"])
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker was killed while we held it: we did get it (the repeat will say so again)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(rx))
    httpd.daemon_threads = True
    rx.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield rx
    finally:
        httpd.shutdown()
        httpd.server_close()


def webhook_plans(tmp_path: Path, rx: Receiver) -> Path:
    """The shipped directory with a webhook for each of PEOPLE, and one plan that sends each of them one."""
    plans_dir = tmp_path / "plans"
    shutil.copytree(PLANS_DIR / "directory", plans_dir / "directory")
    people_file = plans_dir / "directory" / "people.yaml"
    doc = yaml.safe_load(people_file.read_text(encoding="utf-8"))
    for person in doc["people"]:
        if person["id"] in PEOPLE:
            person["contacts"]["webhook"] = rx.url(person["id"])
    people_file.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    levels = [{"grade": grade, "response_level": "测试响应", "notify": [{
        "id": "hook", "targets": [{"person": p} for p in PEOPLE], "channels": ["webhook"], "delay_min": 0,
        "template": {"zh": "测试 {id}"}}]} for grade in ("I", "II", "III", "IV")]
    plan = {"id": PLAN_ID, "title": {"zh": "Webhook 投递测试预案", "en": "Webhook delivery test plan"}, "version": 1,
            "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
            "approved_by": ["huang-liping"], "last_editor": "zhou-haibo",
            "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]}, "levels": levels}
    (plans_dir / f"{PLAN_ID}.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True, sort_keys=False),
                                               encoding="utf-8")
    assert [p.id for p in load_plans(plans_dir).plans] == [PLAN_ID]
    return plans_dir


def sql(store: Store, query: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(query)).all())


def states(store: Store) -> Counter[str]:
    return Counter({r[0]: r[1] for r in sql(store, "SELECT state, COUNT(*) FROM notifications GROUP BY state")})


def test_kill_mid_webhook_and_a_503_receiver_every_webhook_arrives(tmp_path: Path, broker_bootstrap: str,
                                                                   receiver: Receiver, worker_factory) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{(data_dir / 'pingan.db').resolve()}"
    env = pingan_env(data_dir, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_PLANS_DIR=str(webhook_plans(tmp_path, receiver)), PINGAN_WEBHOOK_SECRET=SECRET)
    store = Store(db_url)
    workers: list[Proc] = []

    def waiting(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
        try:
            wait_for(predicate, timeout_s, 0.05, what)
        except AssertionError as e:
            logs = "\n".join(f"--- {w.log_path.name}\n{w.log_tail(40)}" for w in workers)
            raise AssertionError(f"{e}; ledger {dict(states(store))}, {len(receiver.requests)} requests, "
                                 f"{len(receiver.taken())} keys taken\n{logs}") from None

    try:
        raw_topic = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
        reports = [IncidentReport(category="accident_disaster", subtype="transport", grade="IV",
                                  title=f"交通事故 hook {i}", dedup_key=f"hook-{i}") for i in range(INCIDENTS)]
        ids = [a.incident_id for a in store.accept_many(reports, raw_topic)]
        total = INCIDENTS * len(PEOPLE)

        # 1. The receiver holds every request 3 s: kill the worker while several are in flight.
        receiver.hold_s = 3.0
        workers.append(worker_factory(env))
        waiting(lambda: receiver.holding >= 3, 120, "webhooks in flight")
        workers[0].kill_tree()
        in_flight = [r["key"] for r in receiver.requests]
        at_kill = states(store)
        # 2. Then it answers 503 to the restarted worker's first 30 sends and resends.
        receiver.hold_s = 0.0
        receiver.refuse_next = 30
        workers.append(worker_factory(env))
        waiting(lambda: len(receiver.taken()) >= total, 120, f"all {total} webhooks taken")
        waiting(lambda: set(states(store)) == {"delivered"}, 60, "every intent delivered")
        time.sleep(3)  # a late resend would show by now

        taken = receiver.taken()
        refused = [r for r in receiver.requests if r["status"] == 503]
        print(f"\nat the kill: {dict(at_kill)}, {len(in_flight)} requests in flight or answered; then "
              f"{len(refused)} answered 503; {len(receiver.requests)} requests for {total} webhooks")
        keys = {r[0] for r in sql(store, "SELECT idempotency_key FROM notifications")}
        assert set(taken) == keys and len(keys) == total  # every webhook arrived
        assert refused, "the receiver never refused: the test did not exercise the 5xx retry"
        assert all(r["valid"] and r["key"] == r["body_key"] for r in receiver.requests)  # a repeat: the same key
        by_key = Counter(r["key"] for r in receiver.requests)
        assert any(by_key[k] > 1 for k in in_flight), "no in-flight webhook was sent again"
        assert states(store) == Counter({"delivered": total})  # none intended, sending, failed
        failed = sql(store, "SELECT COUNT(*) FROM actions WHERE kind = 'failed'")[0][0]
        doubt = sql(store, "SELECT COUNT(*) FROM notifications WHERE detail LIKE '%unknown%' "
                           "OR detail LIKE '%cannot tell%'")[0][0]
        assert (failed, doubt) == (0, 0)
        delivered = Counter(r[0] for r in sql(store, "SELECT incident_id FROM actions WHERE kind = 'delivered'"))
        assert delivered == Counter({i: len(PEOPLE) for i in ids})  # logged once each, however often sent
    finally:
        store.close()

"""Two `pingan worker` processes in one consumer group on one tansu broker, and a SIGKILL of one of them.

The workers share the app id (consumer group), the topic prefix, the database and the console sink, and each has a
data dir of its own, as two hosts would. Partition ownership is read from faust's own log ("Setting newly assigned
partitions"), and which worker delivered what from each worker's stdout (the console channel prints every line it
delivers), so the test knows the workers really shared the work before one of them died.

1. A burst (5,000 incidents on SQLite, 1,000 on PostgreSQL), one console notification each; one worker is SIGKILLed
   once 1,000 are `notified` (200 on PostgreSQL). Every incident still ends `notified` exactly once, the console sink
   holds each notification exactly once, and the hash chain is intact.
2. Timers and dedup windows move with the partitions: a repeat deadline scheduled by the worker that is then killed
   fires from the survivor, once; deadlines that fall due while both workers run fire once each (two schedulers race
   for every row); a report with the dedup_key of an incident triaged by the killed worker correlates into it.
3. Work lost in transit (an event, an incident event) is re-published from the store once the consumer has read past.
"""

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka.partitioner.default import murmur2
from sqlalchemy import text

from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.channels.console import read_sink
from pingan.handlers.incidents.triage import triage
from pingan.plans import PLANS_DIR
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.store.lease import Lease
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.streams.topics import DEFAULT_PARTITIONS
from tests.fixtures.stack import Proc, pingan_env, wait_for

PLAN_ID = "two-workers"
DUTY = "cai-wenjun"  # plans/directory/people.yaml: a duty-room officer with a console contact
SCALE = 60  # PINGAN_ESCALATION_TIME_SCALE: a plan minute is a second
EARLY_ACK_MIN = 10  # grade III repeats its line this many plan minutes after t+0: while both workers run
LATE_ACK_MIN = 45  # grade II: after the kill
LEASE_S = 30  # a claim older than this lost its worker (the console answers in milliseconds)
SETTLED = ("delivered", "sent", "failed")


def plan_yaml() -> str:
    """Grade IV: one console line per incident. Grades III and II: the same line, repeated once if nobody
    acknowledges it within EARLY_ACK_MIN or LATE_ACK_MIN.

    The text carries the incident id, so every line in the sink and on a worker's stdout names its incident."""
    def level(grade: str, **step: Any) -> dict[str, Any]:
        return {"grade": grade, "response_level": "测试响应", "notify": [{
            "id": "duty", "targets": [{"person": DUTY}], "channels": ["console"], "delay_min": 0,
            "template": {"zh": "双机 {id}"}, **step}]}

    plan = {
        "id": PLAN_ID, "title": {"zh": "双机接管测试预案", "en": "Two-worker takeover test plan"}, "version": 1,
        "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
        "approved_by": ["huang-liping"], "last_editor": "zhou-haibo",
        "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]},
        "levels": [level("I"), level("II", ack_timeout_min=LATE_ACK_MIN, repeat=1),
                   level("III", ack_timeout_min=EARLY_ACK_MIN, repeat=1), level("IV")],
    }
    return yaml.safe_dump(plan, allow_unicode=True, sort_keys=False)


def partition_of(key: str) -> int:
    """The partition kafka-python and aiokafka's default partitioner (murmur2) give this key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % DEFAULT_PARTITIONS


_ASSIGNED = re.compile(r"^\[(?P<at>[\d\- :,]+)\] \[\d+\] \[INFO\] Setting newly assigned partitions")
_ROW = re.compile(r"^\|\s*(?P<topic>\S+)\s*\|\s*\{(?P<parts>[\d\-, ]*)\}\s*\|")


def _parts(spec: str) -> set[int]:
    out: set[int] = set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def assignments(log: str, topic: str) -> list[tuple[str, set[int]]]:
    """Every (time, partitions of `topic`) faust logged for this worker, oldest first."""
    found: list[tuple[str, set[int]]] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = _ASSIGNED.match(line)
        if not m:
            continue
        parts: set[int] = set()
        for row in lines[i + 1:i + 20]:
            r = _ROW.match(row)
            if r and r["topic"] == topic:
                parts = _parts(r["parts"])
            if row.startswith("+") and "for group" in row:
                break
        found.append((m["at"], parts))
    return found


@dataclass
class Worker:
    name: str
    proc: Proc

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def partitions(self, topic: str) -> set[int]:
        seen = assignments(self.log(), topic)
        return seen[-1][1] if seen else set()

    def resumed(self) -> bool:
        """It re-published its partitions' unfinished work after its latest assignment (streams/takeover.py), so a
        burst submitted now is not copied by that."""
        log = self.log()
        return log.rfind("] resume {") > log.rfind("Setting newly assigned partitions") >= 0

    def delivered_ids(self) -> Counter[str]:
        """Incident ids of the console lines this worker printed (one per notification it sent)."""
        return Counter(re.findall(r": 双机 (INC-[0-9A-Z]+)\s*$", self.log(), re.MULTILINE))


@dataclass
class Rig:
    env: dict[str, str]
    store: Store
    sink: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def raw_topic(self) -> str:
        return self.env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"

    def topic(self, name: str) -> str:
        return self.env["PINGAN_TOPIC_PREFIX"] + name

    def accept(self, reports: list[IncidentReport]) -> list[str]:
        return [a.incident_id for a in self.store.accept_many(reports, self.raw_topic)]

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def count(self, query: str, **params: Any) -> int:
        return int(self.sql(query, **params)[0][0] or 0)

    def kinds(self, kind: str) -> Counter[str]:
        """incident id -> how many log entries of this kind it has."""
        rows = self.sql("SELECT incident_id, COUNT(*) FROM actions WHERE kind = :kind GROUP BY incident_id",
                        kind=kind)
        return Counter({r[0]: r[1] for r in rows})

    def ledger_states(self) -> Counter[str]:
        return Counter({r[0]: r[1] for r in self.sql("SELECT state, COUNT(*) FROM notifications GROUP BY state")})

    def settled(self) -> bool:
        """No intent waits, no event is untriaged, and no incident lacks its response."""
        states = self.ledger_states()
        untriaged = self.count("SELECT COUNT(*) FROM outbox o LEFT JOIN triage_events t ON t.event_id = o.event_id "
                               "WHERE t.event_id IS NULL")
        return untriaged == 0 and not (set(states) - set(SETTLED))

    def wait(self, predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
        """wait_for, but a timeout shows the ledger and the workers' logs."""
        try:
            return wait_for(predicate, timeout_s, interval_s=interval_s, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; {self.diagnosis()}") from None

    def progress(self, count: Callable[[], int], target: int, stall_s: float, what: str) -> None:
        """Wait until count() reaches target; give up only when it stops moving for stall_s (the machine is shared,
        so a slow run is not a failure, a stuck one is)."""
        last, moved = -1, time.monotonic()
        while (now := count()) < target:
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise AssertionError(f"stuck at {now} of {target} {what} for {stall_s:g} s; {self.diagnosis()}")
            time.sleep(0.5)

    def diagnosis(self) -> str:
        stuck = self.sql("SELECT incident_id, state, attempts, updated_at, detail FROM notifications "
                         "WHERE state NOT IN ('delivered', 'sent', 'failed') LIMIT 10")
        logs = "\n".join(f"--- {w.name} ({w.proc.log_path})\n" + "\n".join(
            [line for line in w.log().splitlines() if "双机" not in line][-30:]) for w in self.workers)
        untriaged = self.sql("SELECT o.proposed_incident_id, o.published_at FROM outbox o LEFT JOIN triage_events t "
                             "ON t.event_id = o.event_id WHERE t.event_id IS NULL LIMIT 1000")
        unanswered = self.sql("SELECT i.id, t.at FROM incidents i JOIN triage_events t ON t.incident_id = i.id "
                              "LEFT JOIN responses r ON r.incident_id = i.id WHERE r.incident_id IS NULL LIMIT 1000")
        return (f"ledger {dict(self.ledger_states())}, unsettled {stuck}; {len(untriaged)} untriaged "
                f"{untriaged[:5]}; {len(unanswered)} without a response {unanswered[:5]}\n{logs}")

    def start(self, factory: Callable[[dict[str, str]], Proc], name: str) -> Worker:
        data_dir = Path(self.env["PINGAN_DATA_DIR"]).parent / name
        data_dir.mkdir()
        worker = Worker(name, factory({**self.env, "PINGAN_DATA_DIR": str(data_dir)}))
        self.workers.append(worker)
        return worker

    def both_share(self, a: Worker, b: Worker) -> bool:
        """The latest assignment of each splits every pipeline topic's partitions between them."""
        for name in ("incidents.raw", "incidents", "notifications"):
            pa, pb = a.partitions(self.topic(name)), b.partitions(self.topic(name))
            if not pa or not pb or pa & pb or pa | pb != set(range(DEFAULT_PARTITIONS)):
                return False
        return True


def report(title: str, key: str, grade: str = "IV") -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="transport", grade=grade, title=title, dedup_key=key)


@pytest.fixture
def rig(tmp_path: Path, broker_bootstrap: str, db_url: str):  # type: ignore[no-untyped-def]
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "directory").symlink_to(PLANS_DIR / "directory", target_is_directory=True)
    (plans_dir / f"{PLAN_ID}.yaml").write_text(plan_yaml(), encoding="utf-8")
    (tmp_path / "shared").mkdir()
    sink = tmp_path / "shared" / "console.log"
    # One app id and topic prefix for both (pingan_env draws them once); the console sink is shared storage, as
    # Twilio's API is for SMS: a survivor settling what the dead worker left `sending` looks for its line there.
    env = pingan_env(tmp_path / "shared", KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_PLANS_DIR=str(plans_dir), PINGAN_CONSOLE_SINK=str(sink),
                     PINGAN_ESCALATION_TIME_SCALE=str(SCALE), PINGAN_METRICS_PORT="0",
                     PINGAN_SENDING_LEASE_S=str(LEASE_S))
    store = Store(db_url)
    yield Rig(env, store, sink)
    store.close()


def start_two(rig: Rig, worker_factory: Callable[[dict[str, str]], Proc]) -> tuple[Worker, Worker, float]:
    """Start both workers, see an incident through, and wait until they split the partitions. Returns the time
    that took."""
    t0 = time.monotonic()
    a = rig.start(worker_factory, "worker-a")
    warm = rig.accept([report("预热", "warm-up")])[0]
    rig.wait(lambda: rig.kinds("notified")[warm] == 1, 120, "the warm-up incident to be notified")
    b = rig.start(worker_factory, "worker-b")
    rig.wait(lambda: rig.both_share(a, b) and a.resumed() and b.resumed(), 120, "both workers to hold partitions")
    return a, b, time.monotonic() - t0


def kill(rig: Rig, victim: Worker) -> float:
    victim.proc.kill_tree()  # SIGKILL to its process group: no LeaveGroup, no flush, no commit
    return time.monotonic()


def rebalanced_after(survivor: Worker, topic: str, killed_at_wall: float) -> float | None:
    """Seconds from the kill to the survivor's first assignment holding every partition, by its log's clock."""
    for at, parts in assignments(survivor.log(), topic):
        day, ms = at.split(",")
        t = time.mktime(time.strptime(day, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000
        if t >= killed_at_wall and parts == set(range(DEFAULT_PARTITIONS)):
            return t - killed_at_wall
    return None


def assert_each_notified_once(rig: Rig, ids: list[str]) -> None:
    rows = rig.sql("SELECT incident_id, idempotency_key, state, detail FROM notifications")
    mine = [r for r in rows if r.incident_id in set(ids)]
    assert Counter(r.incident_id for r in mine) == Counter({i: 1 for i in ids}), "one intent per incident"
    not_delivered = [(r.incident_id, r.state, r.detail) for r in mine if r.state != "delivered"]
    assert not not_delivered, f"{len(not_delivered)} of {len(ids)} not delivered: {not_delivered[:5]}"
    notified, delivered = rig.kinds("notified"), rig.kinds("delivered")
    missing = [i for i in ids if notified[i] == 0]
    twice = [i for i in ids if notified[i] > 1]
    assert not missing, f"{len(missing)} of {len(ids)} incidents never notified: {missing[:5]}"
    assert not twice, f"{len(twice)} incidents notified more than once: {twice[:5]}"
    assert all(delivered[i] == 1 for i in ids)
    lines = Counter(r["idempotency_key"] for r in read_sink(rig.sink))
    keys = {r.idempotency_key for r in mine}
    doubled = {k: c for k, c in lines.items() if c > 1}
    assert not doubled, f"{len(doubled)} console lines written more than once: {list(doubled.items())[:5]}"
    assert keys <= set(lines), f"{len(keys - set(lines))} notifications not in the console sink"


# ---- 1. a burst, and one worker SIGKILLed in the middle of it ------------------------------------------------

def test_sigkill_one_of_two_workers_mid_burst(rig: Rig, worker_factory, db_url: str) -> None:  # type: ignore[no-untyped-def]
    # The full 5,000 on SQLite; PostgreSQL shares the machine's two cores with both workers, so a smaller burst.
    n, kill_at = (5000, 1000) if db_url.startswith("sqlite") else (1000, 200)
    started = time.monotonic()
    a, b, ready_s = start_two(rig, worker_factory)
    parts = {w.name: sorted(w.partitions(rig.raw_topic)) for w in (a, b)}

    t0 = time.monotonic()
    ids: list[str] = []
    for chunk in range(0, n, 500):
        ids += rig.accept([report(f"事故 {i}", f"burst-{i}") for i in range(chunk, min(n, chunk + 500))])
    assert len(set(ids)) == n
    wanted = set(ids)

    def notified() -> int:
        return sum(1 for i, c in rig.kinds("notified").items() if i in wanted and c)

    rig.progress(notified, kill_at, 120, "notified before the kill")
    # Both really worked: each printed console lines of this burst before one of them dies.
    before = {w.name: sum(c for i, c in w.delivered_ids().items() if i in wanted) for w in (a, b)}
    assert all(before.values()), f"a worker delivered nothing before the kill: {before}"
    at_kill = notified()
    assert at_kill < n, "the burst finished before the kill; nothing was taken over"
    killed_wall = time.time()
    killed = kill(rig, a)

    rig.progress(notified, n, 120, "notified after the kill")
    done_s = time.monotonic() - t0
    rig.wait(rig.settled, 120, "the ledger and outbox to settle")
    assert_each_notified_once(rig, ids)
    assert verify_chain(rig.store.iter_log())[1] is None

    after = sum(c for i, c in b.delivered_ids().items() if i in wanted) - before[b.name]
    assert after > 0, "the survivor delivered nothing after the kill"
    rebalance_s = rebalanced_after(b, rig.raw_topic, killed_wall)
    assert rebalance_s is not None, "the survivor never took every partition"
    print(f"\ntwo workers, {n} incidents on {db_url.split(':')[0]}: both ready and sharing in {ready_s:.1f} s "
          f"(partitions {parts}); SIGKILL {a.name} at {at_kill} notified "
          f"({time.monotonic() - killed:.1f} s before the end, {done_s:.1f} s after the burst began); "
          f"delivered before the kill {before}, by {b.name} after it {after}; survivor held every partition "
          f"{rebalance_s:.1f} s after the kill; total {time.monotonic() - started:.1f} s; "
          f"ledger {dict(rig.ledger_states())}")


# ---- 2. escalation timers and dedup windows move with the partitions -------------------------------------------

def test_timers_and_dedup_windows_survive_the_kill(rig: Rig, worker_factory, db_url: str) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = start_two(rig, worker_factory)
    a_incidents, a_raw = a.partitions(rig.topic("incidents")), a.partitions(rig.raw_topic)

    # Deadlines due while both workers run (both schedulers race for every row), and deadlines the doomed worker
    # schedules that fall due after its death: grade II incidents whose id puts their response on its partitions.
    early = rig.accept([report(f"早 {i}", f"early-{i}", grade="III") for i in range(20)])
    late_all: list[str] = []
    while len([x for x in late_all if partition_of(x) in a_incidents]) < 4 and len(late_all) < 60:
        late_all += rig.accept([report(f"晚 {len(late_all)}", f"late-{len(late_all)}", grade="II")])
    late = [x for x in late_all if partition_of(x) in a_incidents]  # responded to, so scheduled, by the doomed one
    assert len(late) == 4, f"not enough grade II incidents landed on {a.name}'s partitions {a_incidents}"
    # A dedup window the doomed worker opens: the key's raw partition is one of its own.
    key = next(k for k in (f"window-{i}" for i in range(1000)) if partition_of(k) in a_raw)
    first = rig.accept([report("路口事故 首报", key)])[0]

    rig.wait(lambda: all(rig.kinds("notified")[i] for i in [*early, *late_all, first]), 120, "every t+0 line")
    assert all(a.delivered_ids()[i] == 1 for i in late), "the doomed worker did not handle its incidents"
    rig.wait(lambda: all(rig.kinds("escalated")[i] for i in early), 120, "the early repeats (both workers up)")

    late_rows = rig.sql("SELECT incident_id, state FROM escalations WHERE state = 'pending'")
    assert Counter(r.incident_id for r in late_rows) == Counter({i: 1 for i in late_all}), \
        "a late deadline fired before the kill (a slow machine): raise LATE_ACK_MIN"
    kill(rig, a)

    # The report after the kill joins the incident the dead worker opened, on the survivor.
    second = rig.accept([report("路口事故 续报", key)])[0]
    rig.wait(lambda: rig.kinds("correlated")[first] == 1, 120, "the second report to correlate")
    assert rig.store.resolve_incident_id(second) == first and rig.store.get_incident(second) is None
    incident = rig.store.get_incident(first)
    assert incident is not None and incident.report_count == 2

    rig.wait(lambda: all(rig.kinds("escalated")[i] for i in late_all), 180, "the late repeats, from the survivor")
    rig.wait(rig.settled, 120, "the ledger to settle")
    time.sleep(3)  # a second firing or a re-sent line would show by now

    ids = [*early, *late_all]
    states = Counter((r.incident_id, r.state) for r in rig.sql("SELECT incident_id, state FROM escalations"))
    assert states == Counter({(i, "fired"): 1 for i in ids}), "each repeat fired exactly once"
    assert {i: rig.kinds("escalated")[i] for i in ids} == {i: 1 for i in ids}
    ledger = Counter((r.incident_id, r.state) for r in rig.sql("SELECT incident_id, state FROM notifications"))
    assert all(ledger[(i, "delivered")] == 2 and sum(ledger[(i, s)] for s in SETTLED) == 2 for i in ids), ledger
    assert {i: rig.kinds("notified")[i] for i in ids} == {i: 2 for i in ids}
    lines = Counter(r["idempotency_key"] for r in read_sink(rig.sink))
    assert max(lines.values()) == 1, f"a console line went out twice: {lines.most_common(3)}"
    # The late repeats went out from the survivor: the dead worker printed only their first line.
    assert all(a.delivered_ids()[i] == 1 and b.delivered_ids()[i] == 1 for i in late)
    assert rig.kinds("notified")[first] == 1 and rig.kinds("created")[first] == 1
    assert verify_chain(rig.store.iter_log())[1] is None


# ---- 3. a record the consumer never got is swept up from the store -----------------------------------------------

def test_work_lost_in_transit_is_swept_up(tmp_path: Path, broker_bootstrap: str, sqlite_url: str,
                                          worker_factory) -> None:  # type: ignore[no-untyped-def]
    """Two losses made on purpose, one worker: an accepted event marked published that no relay ever sent (the test
    holds the relay's lease), and a triage decision whose incident event was never sent. Once the worker has read
    its partitions to the end and the work is still undone, streams/sweep.py re-publishes it from the store."""
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "directory").symlink_to(PLANS_DIR / "directory", target_is_directory=True)
    (plans_dir / f"{PLAN_ID}.yaml").write_text(plan_yaml(), encoding="utf-8")
    env = pingan_env(tmp_path / "data", KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=sqlite_url,
                     PINGAN_PLANS_DIR=str(plans_dir))
    store = Store(sqlite_url)
    try:
        lease = Lease(store, "outbox-relay", "the-test", 600)
        assert lease.hold()  # no relay of the worker's may publish anything while the test holds this
        raw_topic = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
        warm = store.accept(report("预热", "sweep-warm-up"), raw_topic).incident_id  # start-up recovery sends it
        worker = worker_factory(env)
        wait_for(lambda: "notified" in [a.kind.value for a in store.timeline(warm)], 120, 0.5, "the warm-up")
        wait_for(Worker("worker", worker).resumed, 30, 0.2, "the re-publish after its assignment")  # not that one

        lost_raw = store.accept(report("丢失的事件", "sweep-raw"), raw_topic)
        store.mark_published([lost_raw.event_id])  # as if a relay had sent it and the consumer skipped it
        event = RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(),
                         received_at=datetime.now(UTC), report=report("丢失的事故", "sweep-incident"))
        decision = triage(event, None, timedelta(hours=1))
        store.apply_triage(event.event_id, decision.outcome, decision.incident, decision.actions)  # never sent on

        def notified(incident_id: str) -> bool:
            return "notified" in [a.kind.value for a in store.timeline(incident_id)]

        try:
            wait_for(lambda: notified(lost_raw.incident_id) and notified(decision.incident.id), 120, 0.5,
                     "both lost items to be swept up and notified")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{worker.log_tail(30)}") from None
        assert "re-published" in worker.log_path.read_text(errors="replace")
    finally:
        store.close()

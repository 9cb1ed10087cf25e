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

The plan, the Worker and Rig wrappers and the exactly-once check are in two_workers_rig.py.
"""

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.channels.console import read_sink
from pingan.handlers.incidents.triage import triage
from pingan.plans import PLANS_DIR
from pingan.schemas.events import RawEvent
from pingan.store.lease import Lease
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from tests.fixtures.stack import pingan_env, wait_for
from tests.integration.two_workers_rig import (
    LEASE_S,
    PLAN_ID,
    SCALE,
    SETTLED,
    Rig,
    Worker,
    assert_each_notified_once,
    kill,
    partition_of,
    plan_yaml,
    rebalanced_after,
    report,
    start_two,
)


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
        warm = store.accept(report("预热", "sweep-warm-up"), raw_topic).incident_id  # the first assignment sends it
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

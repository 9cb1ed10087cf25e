"""Two `pingan worker` processes in one consumer group on the 3-node cluster, one SIGKILLed mid-burst: the test of
tests/integration/test_two_workers.py (its rig and checks), on Apache Kafka, with Kafka's defaults from
streams/broker_profile.py, so the takeover re-publish (streams/takeover.py) is off. Every incident is still notified
exactly once: the evidence that Kafka does not need that tansu workaround.

1,000 incidents, the kill at 200 notified: about a minute and a half on the shared 2-core machine.
"""

import time

from pingan.handlers.audit.log_chain import verify_chain
from tests.integration.two_workers_rig import Rig, assert_each_notified_once, kill, rebalanced_after, report
from tests.kafka.rig import counts, notified_total, start_worker, wait_all_notified, workarounds_fired

N, KILL_AT = 1000, 200


def test_sigkill_one_of_two_workers_mid_burst(rig: Rig, worker_factory) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    a = start_worker(rig, worker_factory, "worker-a")
    b = rig.start(worker_factory, "worker-b")
    rig.wait(lambda: rig.both_share(a, b), 120, "both workers to hold partitions")
    ready_s = time.monotonic() - started
    parts = {w.name: sorted(w.partitions(rig.raw_topic)) for w in (a, b)}

    base = notified_total(rig)
    ids: list[str] = []
    for chunk in range(0, N, 500):
        ids += rig.accept([report(f"事故 {i}", f"burst-{i}") for i in range(chunk, min(N, chunk + 500))])
    wanted = set(ids)

    def notified() -> int:
        return notified_total(rig) - base

    rig.progress(notified, KILL_AT, 120, "notified before the kill")
    before = {w.name: sum(c for i, c in w.delivered_ids().items() if i in wanted) for w in (a, b)}
    assert all(before.values()), f"a worker delivered nothing before the kill: {before}"
    at_kill = notified()
    assert at_kill < N, "the burst finished before the kill; nothing was taken over"
    killed_wall = time.time()
    killed = kill(rig, a)

    wait_all_notified(rig, base, ids, "notified after the kill")
    rig.wait(rig.settled, 120, "the ledger and outbox to settle")
    c = counts(rig, ids)
    rebalance_s = rebalanced_after(b, rig.raw_topic, killed_wall)
    print(f"\ntwo workers on Kafka, {N} incidents: ready and sharing in {ready_s:.1f} s (partitions {parts}); SIGKILL "
          f"{a.name} at {at_kill} notified; survivor held every partition {rebalance_s or 0:.1f} s after the kill; all "
          f"notified {time.monotonic() - killed:.1f} s after it; counts {c}; test {time.monotonic() - started:.1f} s; "
          f"tansu workarounds fired {[workarounds_fired(w.log()) for w in (a, b)]}")
    assert c == {"accepted": N, "notified": N, "duplicates": 0, "lost": 0}, c
    assert_each_notified_once(rig, ids)
    assert verify_chain(rig.store.iter_log())[1] is None
    assert rebalance_s is not None, "the survivor never took every partition"
    for w in (a, b):  # Kafka's defaults: no takeover re-publish ran, and the consumer skipped no offset
        assert "takeover re-publish off" in w.log() and "] resume {" not in w.log()
        assert "the broker skipped offsets" not in w.log()

"""Broker failures under load on the 3-node cluster: the partition leader SIGKILLed, and a rolling restart.

Sizes: 2,000 incidents for the leader kill (the issue's number) and a steady 50 incidents/s through the whole rolling
restart, one worker, SQLite: together about two and a half minutes on the shared 2-core machine, where the three
brokers, the worker and the loader share two cores. Each test prints accepted, notified, duplicates and lost.
"""

import time

from pingan.handlers.audit.log_chain import verify_chain
from tests.integration.two_workers_rig import Rig
from tests.kafka.cluster import Cluster
from tests.kafka.rig import Loader, counts, notified_total, start_worker, wait_all_notified, workarounds_fired

LEADER_KILL_TOTAL = 2000
LEADER_KILL_AT = 1000  # accepted when the leader dies: the relay is producing and the worker consuming
RATE = 50.0  # incidents/s through the rolling restart


def pipeline_topics(rig: Rig) -> list[str]:
    return [rig.topic(t) for t in ("incidents.raw", "incidents", "notifications")]


def test_sigkill_of_the_leader_of_raw_partition_0(rig: Rig, kafka_cluster: Cluster, worker_factory) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    worker = start_worker(rig, worker_factory, "worker")
    leader = kafka_cluster.leader(rig.raw_topic, 0)

    # 40/s: the kill at 1,000 accepted falls while the relay is still producing and the worker is mid-backlog.
    base = notified_total(rig)
    loader = Loader(rig, rate_per_s=40, total=LEADER_KILL_TOTAL, tag="leader")
    loader.start()
    rig.wait(lambda: len(loader.ids) >= LEADER_KILL_AT, 120, "half the incidents accepted")
    notified_at_kill = notified_total(rig) - base
    kafka_cluster.kill(leader)  # SIGKILL: no controlled shutdown, the controller notices by the missed heartbeat
    killed = time.monotonic()
    loader.join(120)
    ids = loader.stop()
    assert len(ids) == LEADER_KILL_TOTAL

    new_leader = rig.wait(lambda: (lambda n: n if n not in (leader, -1) else None)(
        kafka_cluster.leader(rig.raw_topic, 0)), 60, "a new leader of partition 0")
    wait_all_notified(rig, base, ids, "notified after the leader died")
    rig.wait(rig.settled, 120, "the ledger and outbox to settle")
    c = counts(rig, ids)
    print(f"\nleader kill on Kafka: node {leader} (leader of {rig.raw_topic}[0]) SIGKILLed at {LEADER_KILL_AT} "
          f"accepted, {notified_at_kill} notified; new leader node {new_leader}; counts {c}; all notified "
          f"{time.monotonic() - killed:.1f} s after the kill, test {time.monotonic() - started:.1f} s; tansu "
          f"workarounds fired {workarounds_fired(worker.log())}")
    assert c == {"accepted": len(ids), "notified": len(ids), "duplicates": 0, "lost": 0}, c
    assert verify_chain(rig.store.iter_log())[1] is None
    log = worker.log()
    assert "the broker skipped offsets" not in log  # gap fill had nothing to do on Kafka

    kafka_cluster.start(leader)  # back for the next tests, and in sync before they begin
    rig.wait(lambda: kafka_cluster.fully_replicated(pipeline_topics(rig)), 120, "every replica in sync again")


def test_rolling_restart_under_steady_load(rig: Rig, kafka_cluster: Cluster, worker_factory) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    worker = start_worker(rig, worker_factory, "worker")
    base = notified_total(rig)
    loader = Loader(rig, rate_per_s=RATE, tag="rolling")
    loader.start()
    load_started = time.monotonic()
    time.sleep(2)
    restarts: list[str] = []
    for node in (1, 2, 3):
        t0 = time.monotonic()
        kafka_cluster.stop(node)  # SIGTERM: controlled shutdown moves its leaderships first
        t1 = time.monotonic()
        kafka_cluster.start(node)
        t2 = time.monotonic()
        # The next broker goes only once this one is back in every ISR, as an operator's rolling restart does:
        # otherwise two of three replicas are away and min.insync.replicas=2 refuses writes.
        rig.wait(lambda: kafka_cluster.fully_replicated(pipeline_topics(rig)), 120, f"node {node} in sync",
                 interval_s=0.2)
        restarts.append(f"node {node} stop {t1 - t0:.1f} s, start {t2 - t1:.1f} s, "
                        f"in sync {time.monotonic() - t2:.1f} s")
    ids = loader.stop()
    load_s = time.monotonic() - load_started
    wait_all_notified(rig, base, ids, "notified after the rolling restart")
    rig.wait(rig.settled, 120, "the ledger and outbox to settle")
    c = counts(rig, ids)
    print(f"\nrolling restart on Kafka at {RATE:g}/s ({len(ids) / load_s:.1f}/s achieved over {load_s:.0f} s): "
          f"{', '.join(restarts)}; counts {c}; test {time.monotonic() - started:.1f} s; tansu workarounds fired "
          f"{workarounds_fired(worker.log())}")
    assert c == {"accepted": len(ids), "notified": len(ids), "duplicates": 0, "lost": 0}, c
    assert verify_chain(rig.store.iter_log())[1] is None
    assert "the broker skipped offsets" not in worker.log()

"""The pipeline figure: a real worker, N incidents put straight on `incidents.raw`, and the store polled until
every one is `notified`; also how pipeline.py starts a worker (child_env, start_worker: the steady mode in
pipeline_steady.py starts its own the same way) and how long it waits for one.

Used by pipeline.py (it runs as `python bench/pipeline.py`, so this is imported as `pipeline_incidents`).
"""

import argparse
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common import (
    BenchError,
    Child,
    clean_env,
    cpu_seconds,
    machine_busy_seconds,
    percentile,
    tree_cpu_seconds,
    wait_for,
)
from kafka import KafkaProducer
from sqlalchemy import func, select

from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.store.tables import actions, triage_events
from pingan.streams import topics
from pingan.streams.topics import ensure_topics

POLL_S = 0.5  # how often the store is asked how many incidents are notified
READY_TIMEOUT_S = 180.0  # worker start: group joins, topic creation, first incident end to end
STALL_TIMEOUT_S = 180.0  # no progress for this long: give up


def child_env(bootstrap: str, data_dir: Path, db_url: str, app_id: str, prefix: str) -> dict[str, str]:
    return clean_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINGAN_DATA_DIR=str(data_dir), PINGAN_DATABASE_URL=db_url,
                     PINGAN_APP_ID=app_id, PINGAN_TOPIC_PREFIX=prefix, PINGAN_LOG_LEVEL="WARNING",
                     PINGAN_METRICS_PORT="0")


def parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- the pipeline figure ----------------------------------------------------------------------------------

def fire_report(key: str, n: int) -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade="III",
                          title=f"仓库起火 bench {n}", dedup_key=key)


def notified_count(store: Store, after_seq: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(
            select(func.count()).select_from(actions)
            .where(actions.c.seq > after_seq, actions.c.kind == "notified")
        ) or 0)


def log_times(store: Store, after_seq: int, ids: set[str]) -> dict[str, dict[str, datetime]]:
    """incident id -> action kind -> `at`, for the run's incidents (the first entry of each kind)."""
    out: dict[str, dict[str, datetime]] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(actions.c.incident_id, actions.c.kind, actions.c.at)
            .where(actions.c.seq > after_seq).order_by(actions.c.seq)
        )
        for incident_id, kind, at in rows:
            if incident_id in ids:
                out.setdefault(incident_id, {}).setdefault(kind, parse_at(at))
    return out


def triage_times(store: Store, since: datetime, ids: set[str]) -> dict[str, datetime]:
    """incident id -> when triage committed it (the `created` entry carries the intake time instead)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(triage_events.c.incident_id, triage_events.c.at).where(triage_events.c.at >= since)
        )
        return {incident_id: at for incident_id, at in rows if incident_id in ids}


def max_seq(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.max(actions.c.seq))) or 0)


@dataclass
class Ready:
    """A worker of its own (app id, topic prefix, data dir) that took one warm-up incident end to end."""

    run: str
    worker: Child
    store: Store
    raw_topic: str
    baseline: int  # the log's last seq before the measured incidents


def start_worker(name: str, tmp: Path, bootstrap: str, db_url: str, children: list[Child]) -> Ready:
    """Starts `pingan worker` (data dir tmp/<name>; log tmp/worker.log for the burst, as before, else
    tmp/worker-<name>.log) and waits until it is ready. The caller closes the store (Ready.store)."""
    run = uuid.uuid4().hex[:8]
    prefix = f"bench{run}."
    settings = Settings(topic_prefix=prefix, app_id=f"pingan-bench-{run}", data_dir=tmp, database_url=db_url)
    raw_topic = settings.topic(topics.RAW)
    store = Store(settings.resolved_database_url)
    try:
        data_dir = tmp / name
        data_dir.mkdir()
        env = child_env(bootstrap, data_dir, db_url, settings.app_id, prefix)
        started = time.monotonic()
        worker = Child(f"{name} worker", [sys.executable, "-m", "pingan.cli.main", "worker"], env,
                       tmp / ("worker.log" if name == "pipeline" else f"worker-{name}.log"))
        children.append(worker)
        print(f"{name}: worker pid {worker.pid}, log {worker.log_path}", flush=True)

        # Ready = one incident went the whole way through the outbox, triage, response and notifier.
        warm = store.accept(fire_report(f"bench-{run}-warmup", -1), raw_topic)
        wait_for(lambda: "delivered" in [a.kind.value for a in store.timeline(warm.incident_id)],
                 READY_TIMEOUT_S, "the warm-up incident to be delivered", interval_s=0.2, alive=worker)
        print(f"{name}: worker ready after {time.monotonic() - started:.1f} s", flush=True)
        # The topics exist already (the worker created them); this only checks it with the bench's settings.
        ensure_topics(bootstrap, settings)
        return Ready(run, worker, store, raw_topic, max_seq(store))
    except BaseException:
        store.close()
        raise


def run_pipeline(args: argparse.Namespace, tmp: Path, bootstrap: str, db_url: str, broker_pid: int | None,
                 children: list[Child]) -> dict[str, float]:
    ready = start_worker("pipeline", tmp, bootstrap, db_url, children)
    run, worker, store, raw_topic, baseline = (ready.run, ready.worker, ready.store, ready.raw_topic,
                                               ready.baseline)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
                                 max_block_ms=30_000)
        received: dict[str, datetime] = {}
        cpu0 = {"worker": cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                "bench": time.process_time(), "machine": machine_busy_seconds()}
        tree0 = tree_cpu_seconds(worker.pid)
        t0_wall = datetime.now(UTC)
        t0 = time.monotonic()
        futures = []
        for i in range(args.n):
            key = f"bench-{run}-{i}"
            event = RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(),
                             received_at=datetime.now(UTC), report=fire_report(key, i))
            received[event.proposed_incident_id] = event.received_at
            futures.append(producer.send(raw_topic, key=key.encode(), value=event.model_dump_json().encode()))
        producer.flush(60)
        for future in futures:
            future.get(30)
        producer.close(5)
        produce_s = time.monotonic() - t0
        print(f"pipeline: {args.n} RawEvents on {raw_topic} in {produce_s:.2f} s "
              f"({args.n / produce_s:,.0f}/s)", flush=True)

        ids = set(received)
        last_progress, last_count, last_print = time.monotonic(), 0, 0.0
        while True:
            count = notified_count(store, baseline)
            now = time.monotonic()
            if count != last_count:
                last_progress, last_count = now, count
            if count >= args.n:
                times = log_times(store, baseline, ids)
                if sum(1 for t in times.values() if "notified" in t) >= args.n:
                    break
            if now - last_print >= 5:
                print(f"pipeline: {count:>6} / {args.n} notified after {now - t0:6.1f} s "
                      f"({count / (now - t0):,.0f}/s)", flush=True)
                last_print = now
            worker.check_alive()
            if now - last_progress > STALL_TIMEOUT_S:
                raise BenchError(f"no progress for {STALL_TIMEOUT_S:g} s at {count} / {args.n} notified\n"
                                 f"{worker.log_tail()}")
            time.sleep(POLL_S)
        seen_s = time.monotonic() - t0
        cpu1 = {"worker": cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                "bench": time.process_time(), "machine": machine_busy_seconds()}
        tree1 = tree_cpu_seconds(worker.pid)

        latencies = sorted((t["notified"] - received[i]).total_seconds() for i, t in times.items())
        last_notified = max(t["notified"] for t in times.values())
        elapsed = (last_notified - t0_wall).total_seconds()

        def stage_done(kind: str) -> float:
            return (max(t[kind] for t in times.values() if kind in t) - t0_wall).total_seconds()

        triaged = triage_times(store, t0_wall, ids)

        figures = {
            "n": args.n,
            "elapsed_s": elapsed,
            "rate": args.n / elapsed,
            "p50_s": percentile(latencies, 50),
            "p99_s": percentile(latencies, 99),
            "max_s": latencies[-1],
            "seen_s": seen_s,
            "produce_s": produce_s,
            "triage_done_s": (max(triaged.values()) - t0_wall).total_seconds(),
            "plan_done_s": stage_done("plan_activated"),
            "notified_done_s": stage_done("notified"),
        }
        for who in cpu0:
            figures[f"cpu_{who}_s"] = cpu1[who] - cpu0[who]
        # Whatever else ran on the machine meanwhile (a shared box): it takes cores from the pipeline.
        figures["cpu_other_s"] = figures["cpu_machine_s"] - sum(
            figures[f"cpu_{who}_s"] for who in ("worker", "broker", "bench"))
        # Issue 15: the worker's CPU per incident in every run, from its process tree's own CPU time.
        figures["cpu_worker_tree_s"] = tree1 - tree0
        figures["cpu_worker_ms_per_incident"] = (tree1 - tree0) / args.n * 1000
        print(f"pipeline: {args.n} notified in {elapsed:.1f} s = {figures['rate']:,.1f} incidents/s; "
              f"latency p50 {figures['p50_s']:.2f} s, p99 {figures['p99_s']:.2f} s, "
              f"max {figures['max_s']:.2f} s; worker CPU {figures['cpu_worker_ms_per_incident']:.1f} ms per "
              "incident", flush=True)
        worker.stop()
        return figures
    finally:
        store.close()

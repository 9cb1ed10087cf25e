"""Pipeline throughput and latency on the embedded broker, next to the bare faust one-hop ceiling.

Run by hand (pytest never collects it):

    python bench/pipeline.py --n 2000

1. One EmbeddedBroker (tansu, memory://) on a free port, unless KAFKA_BOOTSTRAP_SERVERS is set; on it, the
   broker's raw rate (common.raw_broker_rate: kafka-python, --raw-n messages of 300 B in and out).
2. A real worker process (`python -m pingan.cli.main worker`), warmed up with one incident through the store
   outbox; then N grade III fire reports, each with its own dedup_key (so none correlate), put straight on
   `incidents.raw` with kafka-python as RawEvent JSON. The figure is N / (first produce -> last `notified`
   in the log), and the intake-to-notified latency per incident (notified `at` - RawEvent.received_at).
3. On the same broker, after the worker has stopped: a minimal faust app from create_app() with one agent
   forwarding topic A -> topic B, fed forward-n messages of 300 bytes. Its msgs/s is the ceiling the pipeline
   (three such hops plus the store) is compared with.
4. --json PATH writes every figure for run_all.py.

The worker's stdout (the console channel prints a line per notification) goes to a log in the temp dir.
"""

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from common import (
    BenchError,
    Child,
    broker,
    clean_env,
    cpu_seconds,
    machine_busy_seconds,
    machine_facts,
    percentile,
    raw_broker_rate,
    wait_for,
    write_json,
)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
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
FORWARD_MSG_BYTES = 300

FORWARD_SCRIPT = textwrap.dedent('''\
    """Bench: the bare one-hop faust forward (incidents.raw -> incidents under its own prefix)."""
    import faust

    from pingan.settings import Settings
    from pingan.streams import topics
    from pingan.streams.faust_app import app_topics, create_app

    settings = Settings()
    app = create_app(settings)
    t = app_topics(app, settings)


    @app.agent(t[topics.RAW], name="forward")
    async def forward(stream):
        async for key, value in stream.items():
            await t[topics.INCIDENTS].send(key=key, value=value)


    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
''')


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


def run_pipeline(args: argparse.Namespace, tmp: Path, bootstrap: str, db_url: str, broker_pid: int | None,
                 children: list[Child]) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench{run}."
    settings = Settings(topic_prefix=prefix, app_id=f"pingan-bench-{run}", data_dir=tmp, database_url=db_url)
    raw_topic = settings.topic(topics.RAW)
    store = Store(settings.resolved_database_url)
    try:
        data_dir = tmp / "pipeline"
        data_dir.mkdir()
        env = child_env(bootstrap, data_dir, db_url, settings.app_id, prefix)
        started = time.monotonic()
        worker = Child("pipeline worker", [sys.executable, "-m", "pingan.cli.main", "worker"], env,
                       tmp / "worker.log")
        children.append(worker)
        print(f"pipeline: worker pid {worker.pid}, log {worker.log_path}", flush=True)

        # Ready = one incident went the whole way through the outbox, triage, response and notifier.
        warm = store.accept(fire_report(f"bench-{run}-warmup", -1), raw_topic)
        wait_for(lambda: "delivered" in [a.kind.value for a in store.timeline(warm.incident_id)],
                 READY_TIMEOUT_S, "the warm-up incident to be delivered", interval_s=0.2, alive=worker)
        print(f"pipeline: worker ready after {time.monotonic() - started:.1f} s", flush=True)
        # The topics exist already (the worker created them); this only checks it with the bench's settings.
        ensure_topics(bootstrap, settings)
        baseline = max_seq(store)

        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
                                 max_block_ms=30_000)
        received: dict[str, datetime] = {}
        cpu0 = {"worker": cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                "bench": time.process_time(), "machine": machine_busy_seconds()}
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
        print(f"pipeline: {args.n} notified in {elapsed:.1f} s = {figures['rate']:,.1f} incidents/s; "
              f"latency p50 {figures['p50_s']:.2f} s, p99 {figures['p99_s']:.2f} s, "
              f"max {figures['max_s']:.2f} s", flush=True)
        worker.stop()
        return figures
    finally:
        store.close()


# ---- the one-hop forward ceiling --------------------------------------------------------------------------

def run_forward(n: int, tmp: Path, bootstrap: str, db_url: str, broker_pid: int | None,
                children: list[Child]) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    prefix = f"benchfwd{run}."
    settings = Settings(topic_prefix=prefix, app_id=f"pingan-bench-fwd-{run}")
    topic_a, topic_b = settings.topic(topics.RAW), settings.topic(topics.INCIDENTS)
    ensure_topics(bootstrap, settings)
    data_dir = tmp / "forward"
    data_dir.mkdir()
    script = tmp / "forward_worker.py"
    script.write_text(FORWARD_SCRIPT)
    env = child_env(bootstrap, data_dir, db_url, settings.app_id, prefix)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=20, max_poll_records=5000, consumer_timeout_ms=1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
                             max_block_ms=30_000)
    try:
        partitions = consumer.partitions_for_topic(topic_b) or set()
        if not partitions:
            raise BenchError(f"no partitions for {topic_b}")
        consumer.assign([TopicPartition(topic_b, p) for p in sorted(partitions)])
        # From the start: tansu's ListOffsets "latest" is wrong, so never ask for end offsets.
        consumer.seek_to_beginning()

        started = time.monotonic()
        worker = Child("forward worker", [sys.executable, str(script)], env, tmp / "forward.log")
        children.append(worker)
        print(f"forward: worker pid {worker.pid}, {topic_a} -> {topic_b}", flush=True)
        producer.send(topic_a, key=b"warmup", value=b"warmup")
        producer.flush(30)

        def warm_seen() -> bool:
            return any(r.value == b"warmup" for recs in consumer.poll(200).values() for r in recs)

        wait_for(warm_seen, READY_TIMEOUT_S, "the forward worker to pass on the warm-up message",
                 interval_s=0, alive=worker)
        print(f"forward: worker ready after {time.monotonic() - started:.1f} s", flush=True)

        pad = b"." * FORWARD_MSG_BYTES
        cpu0 = {"worker": cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                "bench": time.process_time(), "machine": machine_busy_seconds()}
        t0_ms = time.time() * 1000
        t0 = time.monotonic()

        def produce() -> None:
            for i in range(n):
                head = f"bench:{i:08d}:{time.time():.6f}:".encode()
                producer.send(topic_a, key=f"k{i}".encode(), value=(head + pad)[:FORWARD_MSG_BYTES])
            producer.flush(60)

        # Produce in a thread, so B is read while A is still being written.
        errors: list[BaseException] = []

        def produce_guarded() -> None:
            try:
                produce()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

        thread = threading.Thread(target=produce_guarded, name="bench-produce", daemon=True)
        thread.start()
        seen: set[int] = set()
        last_ts_ms = 0.0
        latencies: list[float] = []
        last_progress = time.monotonic()
        while len(seen) < n:
            batch = consumer.poll(500, max_records=5000)
            for recs in batch.values():
                for r in recs:
                    if not r.value.startswith(b"bench:"):
                        continue
                    _, idx, sent, _ = r.value.split(b":", 3)
                    i = int(idx)
                    if i not in seen:
                        seen.add(i)
                        last_ts_ms = max(last_ts_ms, r.timestamp)
                        latencies.append(r.timestamp / 1000 - float(sent))
            if batch:
                last_progress = time.monotonic()
            if errors:
                raise BenchError(f"producing to {topic_a} failed: {errors[0]!r}")
            worker.check_alive()
            if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                raise BenchError(f"forward: no progress for {STALL_TIMEOUT_S:g} s at {len(seen)} / {n}\n"
                                 f"{worker.log_tail()}")
        seen_s = time.monotonic() - t0
        thread.join(60)
        cpu1 = {"worker": cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                "bench": time.process_time(), "machine": machine_busy_seconds()}
        # B's record timestamps are set by the forwarder's producer: they end the hop, not our poll loop.
        elapsed = (last_ts_ms - t0_ms) / 1000
        latencies.sort()
        figures = {
            "n": n, "elapsed_s": elapsed, "rate": n / elapsed, "seen_s": seen_s,
            "p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99), "max_s": latencies[-1],
        }
        for who in cpu0:
            figures[f"cpu_{who}_s"] = cpu1[who] - cpu0[who]
        figures["cpu_other_s"] = figures["cpu_machine_s"] - sum(
            figures[f"cpu_{who}_s"] for who in ("worker", "broker", "bench"))
        print(f"forward: {n} forwarded in {elapsed:.2f} s = {figures['rate']:,.0f} msgs/s", flush=True)
        worker.stop()
        return figures
    finally:
        producer.close(5)
        consumer.close()


# ---- main -------------------------------------------------------------------------------------------------

def summary(facts: dict[str, str], bootstrap: str, db_url: str, pipe: dict[str, float],
            fwd: dict[str, float] | None, raw: dict[str, float] | None) -> str:
    lines = [
        "",
        "=" * 78,
        f"Pingan pipeline benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: python {shlex.join(sys.argv)}",
        f"broker: {'external ' + bootstrap if os.environ.get('KAFKA_BOOTSTRAP_SERVERS') else 'embedded tansu'}"
        f"   database: {db_url.split('@')[-1] if '@' in db_url else db_url}",
        "",
        f"pipeline, {pipe['n']:.0f} incidents on incidents.raw -> notified:",
        f"  throughput        {pipe['rate']:10,.1f} incidents/s  ({pipe['elapsed_s']:.1f} s, first produce to "
        f"last notified)",
        f"  latency intake->notified  p50 {pipe['p50_s']:.2f} s   p99 {pipe['p99_s']:.2f} s   "
        f"max {pipe['max_s']:.2f} s",
        f"  stages done after  triage {pipe['triage_done_s']:.1f} s   response {pipe['plan_done_s']:.1f} s   "
        f"notifier {pipe['notified_done_s']:.1f} s   (produce took {pipe['produce_s']:.1f} s)",
        f"  CPU during the run  worker {pipe['cpu_worker_s']:.1f} s   broker {pipe['cpu_broker_s']:.1f} s   "
        f"bench {pipe['cpu_bench_s']:.1f} s   others (e.g. a DB server) {pipe['cpu_other_s']:.1f} s   "
        f"(of {pipe['seen_s']:.1f} s wall x {os.cpu_count()} cores)",
        "",
    ]
    if fwd is not None:
        ratio = pipe["rate"] / fwd["rate"]
        lines += [
            f"faust one-hop forward ceiling, {fwd['n']:.0f} x {FORWARD_MSG_BYTES} B:",
            f"  throughput        {fwd['rate']:10,.0f} msgs/s  ({fwd['elapsed_s']:.2f} s)",
            f"  latency (burst)   p50 {fwd['p50_s'] * 1000:.0f} ms   p99 {fwd['p99_s'] * 1000:.0f} ms   "
            f"max {fwd['max_s'] * 1000:.0f} ms",
            f"  CPU               worker {fwd['cpu_worker_s']:.1f} s   broker {fwd['cpu_broker_s']:.1f} s   "
            f"bench {fwd['cpu_bench_s']:.1f} s   other processes {fwd['cpu_other_s']:.1f} s",
            f"  ratio pipeline / forward = {ratio:.4f}  (1 : {1 / ratio:,.0f})",
            "",
        ]
    if raw is not None:
        ratio = pipe["rate"] / raw["rate"]
        lines += [
            f"broker raw rate, kafka-python, {raw['n']:.0f} x {raw['bytes']:.0f} B produced (acks=all) then consumed:",
            f"  {raw['rate']:,.0f} msgs/s   (produce {raw['produce_rate']:,.0f}/s, "
            f"consume {raw['consume_rate']:,.0f}/s)",
            f"  ratio pipeline / raw = {ratio:.4f}  (1 : {1 / ratio:,.0f})",
            "",
        ]
    lines += [
        "machine:",
        *(f"  {k}: {v}" for k, v in facts.items()),
        "=" * 78,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="incidents put on incidents.raw (default 2000)")
    parser.add_argument("--db-url", default=None, help="SQLAlchemy URL (default: SQLite in the temp dir)")
    parser.add_argument("--forward-n", type=int, default=None,
                        help="messages for the forward ceiling (default n; 0 skips it)")
    parser.add_argument("--raw-n", type=int, default=20000,
                        help="messages for the broker's raw kafka-python rate (default 20000; 0 skips it)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (for run_all.py)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite, console sink)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    forward_n = args.forward_n if args.forward_n is not None else args.n

    # SIGTERM unwinds like Ctrl-C, so the finally below stops the workers and the broker.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-"))
    db_url = args.db_url or f"sqlite:///{tmp / 'pingan.db'}"
    children: list[Child] = []
    code = 1  # until the run has finished
    try:
        facts = machine_facts(tmp)
        with broker(tmp) as (bootstrap, broker_pid):
            print(f"bench: temp dir {tmp}, broker {bootstrap}, database {db_url}", flush=True)
            raw = raw_broker_rate(bootstrap, args.raw_n, broker_pid) if args.raw_n > 0 else None
            if raw is not None:
                print(f"raw: kafka-python {raw['n']} x {raw['bytes']} B in and out: {raw['rate']:,.0f} msgs/s",
                      flush=True)
            pipe = run_pipeline(args, tmp, bootstrap, db_url, broker_pid, children)
            fwd = run_forward(forward_n, tmp, bootstrap, db_url, broker_pid, children) if forward_n > 0 else None
            for child in children:
                child.stop()
        print(summary(facts, bootstrap, db_url, pipe, fwd, raw), flush=True)
        write_json(args.json, {"bench": "pipeline", "command": shlex.join(["python", *sys.argv]),
                               "database": db_url if args.db_url else "SQLite (WAL) in the temp dir",
                               "pipeline": pipe, "forward": fwd, "raw": raw, "machine": facts})
        code = 0
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        code = 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
    finally:
        for child in children:
            child.stop()
        if args.keep or code == 1:  # an error keeps the logs to look at; Ctrl-C does not
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

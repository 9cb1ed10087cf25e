"""The one-hop forward ceiling: a minimal faust app from create_app() whose one agent forwards topic A to topic B,
fed N messages of FORWARD_MSG_BYTES; B is read from the earliest offset of every partition.

Used by pipeline.py (it runs as `python bench/pipeline.py`, so this is imported as `pipeline_forward`).
"""

import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

from common import BenchError, Child, cpu_seconds, machine_busy_seconds, percentile, wait_for
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pipeline_incidents import READY_TIMEOUT_S, STALL_TIMEOUT_S, child_env

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.topics import ensure_topics

FORWARD_MSG_BYTES = 300

FORWARD_SCRIPT = textwrap.dedent('''\
    """Bench: the bare one-hop faust forward (incidents.raw -> incidents under its own prefix)."""
    import faust

    from pingan.settings import Settings
    from pingan.streams import topics
    from pingan.streams.broker_profile import resolved
    from pingan.streams.faust_app import app_topics, create_app

    settings, _ = resolved(Settings())  # as the worker does: the broker's RF, fetch wait and idempotence
    app = create_app(settings)
    t = app_topics(app, settings)


    @app.agent(t[topics.RAW], name="forward")
    async def forward(stream):
        async for key, value in stream.items():
            await t[topics.INCIDENTS].send(key=key, value=value)


    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
''')


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

"""The steady-rate figure (issue 15): R grade III fire reports a second for S seconds put on `incidents.raw`, each
with its own dedup_key (so none correlate), below capacity, so that the intake -> notified latency is what one
incident sees when it does not queue behind a burst; and the worker's CPU per incident at that rate.

Sends are paced by an absolute schedule: incident i is due at t0 + i / R, so the time a send takes (or a late one)
does not drift the rate, as sleeping 1/R after each send would. Latency is measured as the burst's is: the
`notified` entry's `at` - RawEvent.received_at (set just before the send). The worker's CPU is its process tree's
own CPU time (/proc) from the first send to the moment the bench saw the last incident notified, divided by the
incidents sent: idle polling between incidents counts, as it does at that rate in production.

Used by pipeline.py (it runs as `python bench/pipeline.py`, so this is imported as `pipeline_steady`).
"""

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from common import Child, cpu_seconds, machine_busy_seconds, percentile, tree_cpu_seconds
from kafka import KafkaProducer
from pipeline_incidents import fire_report, log_times, notified_count, start_worker, triage_times
from pyspy import Profiler, render

from pingan.schemas.events import RawEvent
from pingan.store.outbox import new_incident_id

POLL_S = 0.2  # how often the store is asked after the last send; the CPU window ends at most this late
DRAIN_TIMEOUT_S = 120.0  # no incident notified for this long after the last send: report what was notified


def paced(rate: float, count: int, send: Callable[[int], None], clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> list[float]:
    """Calls send(i) for i in range(count), each at its due time t0 + i / rate (at once when already late, so a
    stall is caught up and the schedule never shifts); returns how late each send started, in seconds."""
    t0 = clock()
    lateness = []
    for i in range(count):
        due = t0 + i / rate
        ahead = due - clock()
        if ahead > 0:
            sleep(ahead)
        lateness.append(max(0.0, clock() - due))
        send(i)
    return lateness


def steady_figures(rate: float, duration: float, sent: int, send_times: list[float], lateness: list[float],
                   latencies_s: list[float], cpu: dict[str, float], seen_s: float) -> dict[str, float]:
    """The run's figures. cpu: CPU-seconds of the worker's tree, the broker, the bench and the whole machine."""
    lat = sorted(latencies_s)
    late = sorted(lateness)
    span = send_times[-1] - send_times[0] if len(send_times) > 1 else 0.0
    figures = {
        "rate": rate,
        "duration_s": duration,
        "sent": sent,
        "notified": len(lat),
        # Sends per second between the first and the last: R when the bench kept to its schedule.
        "achieved_rate": (len(send_times) - 1) / span if span > 0 else float("nan"),
        "p50_ms": percentile(lat, 50) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": lat[-1] * 1000 if lat else float("nan"),
        "send_late_p99_ms": percentile(late, 99) * 1000,
        "send_late_max_ms": late[-1] * 1000 if late else float("nan"),
        "seen_s": seen_s,
    }
    for who, seconds in cpu.items():
        figures[f"cpu_{who}_s"] = seconds
    figures["cpu_worker_ms_per_incident"] = cpu["worker"] / sent * 1000 if sent else float("nan")
    # Whatever else ran on the machine meanwhile (a shared box): it takes cores from the pipeline.
    figures["cpu_other_s"] = cpu["machine"] - cpu["worker"] - cpu["broker"] - cpu["bench"]
    return figures


def stage_latencies(received: dict[str, datetime], triaged: dict[str, datetime],
                    times: dict[str, dict[str, datetime]]) -> dict[str, dict[str, float]]:
    """Where an incident's time goes: sent -> triage committed (the broker hop, the agent's batch, the transaction),
    -> the plan activated (a hop and the response's transaction), -> notified (a hop, the notifier's claim and
    send). p50 / p90 in ms over the incidents that went the whole way."""
    spans: dict[str, list[float]] = {"sent->triaged": [], "triaged->plan_activated": [],
                                      "plan_activated->notified": []}
    for incident_id, kinds in times.items():
        marks = [received.get(incident_id), triaged.get(incident_id), kinds.get("plan_activated"),
                 kinds.get("notified")]
        if any(m is None for m in marks):
            continue
        for name, (a, b) in zip(spans, zip(marks, marks[1:], strict=False), strict=True):
            spans[name].append((b - a).total_seconds() * 1000)  # type: ignore[operator]
    return {name: {"p50_ms": percentile(sorted(v), 50), "p90_ms": percentile(sorted(v), 90), "n": len(v)}
            for name, v in spans.items()}


def run_steady(args: argparse.Namespace, tmp: Path, bootstrap: str, db_url: str, broker_pid: int | None,
               children: list[Child]) -> dict[str, float]:
    count = max(1, round(args.rate * args.duration))
    ready = start_worker("steady", tmp, bootstrap, db_url, children)
    worker, store = ready.worker, ready.store
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=0,
                                 max_block_ms=30_000)
        producer.partitions_for(ready.raw_topic)  # connection and metadata before the clock starts
        received: dict[str, datetime] = {}
        send_times: list[float] = []
        futures = []

        def send(i: int) -> None:
            key = f"bench-{ready.run}-steady-{i}"
            event = RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(),
                             received_at=datetime.now(UTC), report=fire_report(key, i))
            received[event.proposed_incident_id] = event.received_at
            futures.append(producer.send(ready.raw_topic, key=key.encode(), value=event.model_dump_json().encode()))
            send_times.append(time.monotonic())

        def cpu_now() -> dict[str, float]:
            return {"worker": tree_cpu_seconds(worker.pid), "broker": cpu_seconds(broker_pid),
                    "bench": time.process_time(), "machine": machine_busy_seconds()}

        print(f"steady: {count} incidents at {args.rate:g}/s for {args.duration:g} s on {ready.raw_topic}",
              flush=True)
        profiler = Profiler(worker.pid, tmp / "worker-steady.pyspy.txt").start() if args.profile else None
        cpu0 = cpu_now()
        t0 = time.monotonic()
        started_at = datetime.now(UTC)
        lateness = paced(args.rate, count, send)
        producer.flush(60)
        for future in futures:
            future.get(30)
        producer.close(5)
        print(f"steady: {count} sent in {time.monotonic() - t0:.1f} s, latest send "
              f"{max(lateness) * 1000:.1f} ms behind schedule", flush=True)

        last_progress, last_count, last_print = time.monotonic(), -1, 0.0
        while True:
            done = notified_count(store, ready.baseline)
            now = time.monotonic()
            if done != last_count:
                last_progress, last_count = now, done
            if done >= count:
                times = log_times(store, ready.baseline, set(received))
                if sum(1 for t in times.values() if "notified" in t) >= count:
                    break
            if now - last_print >= 5:
                print(f"steady: {done:>6} / {count} notified after {now - t0:6.1f} s", flush=True)
                last_print = now
            worker.check_alive()
            if now - last_progress > DRAIN_TIMEOUT_S:
                print(f"steady: no incident notified for {DRAIN_TIMEOUT_S:g} s; {done} / {count} notified",
                      flush=True)
                times = log_times(store, ready.baseline, set(received))
                break
            time.sleep(POLL_S)
        seen_s = time.monotonic() - t0
        cpu1 = cpu_now()
        profile = profiler.stop(seen_s) if profiler else None

        latencies = [(t["notified"] - received[i]).total_seconds() for i, t in times.items() if "notified" in t]
        figures = steady_figures(args.rate, args.duration, count, send_times, lateness, latencies,
                                 {who: cpu1[who] - cpu0[who] for who in cpu0}, seen_s)
        figures["stages"] = stage_latencies(received, triage_times(store, started_at, set(received)), times)
        print("steady: by stage (p50 / p90 ms): " + ", ".join(
            f"{name} {v['p50_ms']:.0f} / {v['p90_ms']:.0f}" for name, v in figures["stages"].items()), flush=True)
        if profile is not None:
            figures["profile"] = profile
            print(render(profile), flush=True)
        print(f"steady: {figures['notified']} / {count} notified; intake->notified p50 {figures['p50_ms']:.0f} ms, "
              f"p99 {figures['p99_ms']:.0f} ms; worker CPU {figures['cpu_worker_ms_per_incident']:.1f} ms per "
              "incident", flush=True)
        worker.stop()
        return figures
    finally:
        store.close()

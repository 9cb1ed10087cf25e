"""Pipeline throughput and latency on the embedded broker, next to the bare faust one-hop ceiling.

Run by hand (pytest never collects it):

    python bench/pipeline.py --n 2000
    python bench/pipeline.py --rate 50 --duration 20       # the steady mode only (no burst, no forward)

1. One EmbeddedBroker (tansu, memory://) on a free port, unless KAFKA_BOOTSTRAP_SERVERS is set; on it, the
   broker's raw rate (common.raw_broker_rate: kafka-python, --raw-n messages of 300 B in and out).
2. A real worker process (`python -m pingan.cli.main worker`), warmed up with one incident through the store
   outbox; then N grade III fire reports, each with its own dedup_key (so none correlate), put straight on
   `incidents.raw` with kafka-python as RawEvent JSON. The figure is N / (first produce -> last `notified`
   in the log), and the intake-to-notified latency per incident (notified `at` - RawEvent.received_at).
3. On the same broker, after the worker has stopped: a minimal faust app from create_app() with one agent
   forwarding topic A -> topic B, fed forward-n messages of 300 bytes. Its msgs/s is the ceiling the pipeline
   (three such hops plus the store) is compared with.
4. With --rate R --duration S (issue 15), before the burst and with a worker of its own: R incidents/s for S s,
   paced by an absolute schedule, below capacity: intake-to-notified p50/p95/p99/max, the achieved rate and the
   worker's CPU ms per incident (pipeline_steady.py). Given without --n, only the steady mode runs.
5. --json PATH writes every figure for run_all.py.

The worker's stdout (the console channel prints a line per notification) goes to a log in the temp dir.
Step 2 is in pipeline_incidents.py, step 3 in pipeline_forward.py.
"""

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from common import BenchError, Child, broker, machine_facts, raw_broker_rate, write_json
from pipeline_forward import FORWARD_MSG_BYTES, run_forward
from pipeline_incidents import run_pipeline
from pipeline_steady import run_steady

# ---- main -------------------------------------------------------------------------------------------------

def burst_lines(pipe: dict[str, float]) -> list[str]:
    return [
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
        f"  worker CPU        {pipe['cpu_worker_ms_per_incident']:.1f} ms per incident  (its process tree)",
        "",
    ]


def steady_lines(s: dict[str, float]) -> list[str]:
    return [
        f"steady rate, {s['rate']:g} incidents/s for {s['duration_s']:g} s on incidents.raw -> notified:",
        f"  sent {s['sent']:.0f}, notified {s['notified']:.0f}; achieved rate {s['achieved_rate']:,.1f}/s "
        f"(sends behind schedule p99 {s['send_late_p99_ms']:.1f} ms, max {s['send_late_max_ms']:.1f} ms)",
        f"  latency intake->notified  p50 {s['p50_ms']:.0f} ms   p95 {s['p95_ms']:.0f} ms   "
        f"p99 {s['p99_ms']:.0f} ms   max {s['max_ms']:.0f} ms",
        f"  worker CPU        {s['cpu_worker_ms_per_incident']:.1f} ms per incident  (its process tree, "
        f"{s['cpu_worker_s']:.1f} s in all)",
        f"  CPU during the run  worker {s['cpu_worker_s']:.1f} s   broker {s['cpu_broker_s']:.1f} s   "
        f"bench {s['cpu_bench_s']:.1f} s   others (e.g. a DB server) {s['cpu_other_s']:.1f} s   "
        f"(of {s['seen_s']:.1f} s wall x {os.cpu_count()} cores)",
        "",
    ]


def summary(facts: dict[str, str], bootstrap: str, db_url: str, pipe: dict[str, float] | None,
            fwd: dict[str, float] | None, raw: dict[str, float] | None,
            steady: dict[str, float] | None = None) -> str:
    lines = [
        "",
        "=" * 78,
        f"Pingan pipeline benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: python {shlex.join(sys.argv)}",
        f"broker: {'external ' + bootstrap if os.environ.get('KAFKA_BOOTSTRAP_SERVERS') else 'embedded tansu'}"
        f"   database: {db_url.split('@')[-1] if '@' in db_url else db_url}",
        "",
    ]
    if pipe is not None:
        lines += burst_lines(pipe)
    if steady is not None:
        lines += steady_lines(steady)
    if fwd is not None:
        lines += [
            f"faust one-hop forward ceiling, {fwd['n']:.0f} x {FORWARD_MSG_BYTES} B:",
            f"  throughput        {fwd['rate']:10,.0f} msgs/s  ({fwd['elapsed_s']:.2f} s)",
            f"  latency (burst)   p50 {fwd['p50_s'] * 1000:.0f} ms   p99 {fwd['p99_s'] * 1000:.0f} ms   "
            f"max {fwd['max_s'] * 1000:.0f} ms",
            f"  CPU               worker {fwd['cpu_worker_s']:.1f} s   broker {fwd['cpu_broker_s']:.1f} s   "
            f"bench {fwd['cpu_bench_s']:.1f} s   other processes {fwd['cpu_other_s']:.1f} s",
        ]
        if pipe is not None:
            ratio = pipe["rate"] / fwd["rate"]
            lines.append(f"  ratio pipeline / forward = {ratio:.4f}  (1 : {1 / ratio:,.0f})")
        lines.append("")
    if raw is not None:
        lines += [
            f"broker raw rate, kafka-python, {raw['n']:.0f} x {raw['bytes']:.0f} B produced (acks=all) then consumed:",
            f"  {raw['rate']:,.0f} msgs/s   (produce {raw['produce_rate']:,.0f}/s, "
            f"consume {raw['consume_rate']:,.0f}/s)",
        ]
        if pipe is not None:
            ratio = pipe["rate"] / raw["rate"]
            lines.append(f"  ratio pipeline / raw = {ratio:.4f}  (1 : {1 / ratio:,.0f})")
        lines.append("")
    lines += [
        "machine:",
        *(f"  {k}: {v}" for k, v in facts.items()),
        "=" * 78,
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None,
                        help="incidents put on incidents.raw at once (default 2000; 0 with --rate: no burst)")
    parser.add_argument("--db-url", default=None, help="SQLAlchemy URL (default: SQLite in the temp dir)")
    parser.add_argument("--forward-n", type=int, default=None,
                        help="messages for the forward ceiling (default n; 0 skips it)")
    parser.add_argument("--raw-n", type=int, default=20000,
                        help="messages for the broker's raw kafka-python rate (default 20000; 0 skips it)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (for run_all.py)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite, console sink)")
    parser.add_argument("--rate", type=float, default=None,
                        help="steady mode: incidents/s, paced by an absolute schedule (needs --duration)")
    parser.add_argument("--duration", type=float, default=None, help="steady mode: seconds of sending")
    parser.add_argument("--profile", action="store_true",
                        help="steady mode: py-spy the worker (--gil) while it runs; the summary is in the figures")
    args = parser.parse_args(argv)
    if (args.rate is None) != (args.duration is None):
        parser.error("--rate and --duration go together")
    if args.rate is not None and (args.rate <= 0 or args.duration <= 0):
        parser.error("--rate and --duration must be positive")
    if args.n is None:  # the burst is the default only when no steady run is asked for
        args.n = 2000 if args.rate is None else 0
    if args.n < (1 if args.rate is None else 0):
        parser.error("--n must be at least 1" if args.rate is None else "--n must not be negative")
    if args.forward_n is None:
        args.forward_n = args.n
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forward_n = args.forward_n

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
            # The steady run first, on a quiet broker: the burst leaves nothing queued behind it then.
            steady = run_steady(args, tmp, bootstrap, db_url, broker_pid, children) if args.rate else None
            pipe = run_pipeline(args, tmp, bootstrap, db_url, broker_pid, children) if args.n > 0 else None
            fwd = run_forward(forward_n, tmp, bootstrap, db_url, broker_pid, children) if forward_n > 0 else None
            for child in children:
                child.stop()
        print(summary(facts, bootstrap, db_url, pipe, fwd, raw, steady), flush=True)
        write_json(args.json, {"bench": "pipeline", "command": shlex.join(["python", *sys.argv]),
                               "database": db_url if args.db_url else "SQLite (WAL) in the temp dir",
                               "pipeline": pipe, "steady": steady, "forward": fwd, "raw": raw,
                               "machine": facts})
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

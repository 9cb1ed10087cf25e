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

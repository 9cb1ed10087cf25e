"""Runs every bench and writes docs/benchmarks.md from their figures, on SQLite and on PostgreSQL.

    python bench/run_all.py                 # the default sizes: about 30-40 minutes on 2 cores
    python bench/run_all.py --quick         # small sizes, about 10 minutes: to check the machinery
    python bench/run_all.py --only pipeline,pipeline_pg --out /tmp/b.md
    python bench/run_all.py --no-pg         # SQLite only (no PostgreSQL server at --pg-admin-url)

1. One tansu (or KAFKA_BOOTSTRAP_SERVERS) for the benches that take a broker; its raw kafka-python rate
   (common.raw_broker_rate) is measured before the benches and again after them, and every figure is also given as
   a ratio to their mean. startup.py and versus_alertmanager.py run `pingan up`, which starts its own embedded tansu.
2. Each bench in its own process with --json, one after the other; their output goes to the console and to a log
   in the temp dir (kept when a bench fails). The intake, pipeline, notifier, versus_alertmanager and surge benches
   run twice: on SQLite, then on PostgreSQL in a scratch database created at --pg-admin-url and dropped after.
   The SQLite pipeline's steady run is profiled with py-spy (bench/pyspy.py), for what bounds it.
3. docs/benchmarks.md: report.py fills bench/benchmarks_template.md (the fixed explanations) with the machine, the
   date, the load before and after, the exact command, issue 15's targets against this run, and a table per bench.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import report
from common import BenchError, broker, machine_facts, raw_broker_rate, uptime_line

from pingan.streams.process import die_with_parent

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
QUICK = {"raw_n": 5000, "match_sizes": "10,100,1000", "match_matches": 4000, "intake_duration": 3.0,
         "intake_raw_duration": 1.0, "pipeline_n": 200, "forward_n": 1000, "pipeline_rate": 50.0,
         "pipeline_duration": 5.0, "surge_reports": 3000, "surge_seconds": 15.0, "surge_events": 50,
         "notifier_n": 300, "startup_runs": 5, "vs_rate": 100.0, "vs_duration": 5.0, "vs_burst": 300}
BENCHES = ("match,intake,intake_pg,pipeline,pipeline_pg,notifier,notifier_pg,startup,versus,versus_pg,surge,"
           "surge_pg")
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(admin_url: str, name: str) -> Iterator[str]:
    """A PostgreSQL database of its own for one bench (created, then dropped): no figure sees another's rows."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        yield make_url(admin_url).set(database=db).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def run_bench(name: str, script: str, argv: list[str], tmp: Path, env: dict[str, str]
              ) -> tuple[dict[str, object] | None, float]:
    """Runs one bench, echoing its output; returns its JSON figures (None if it failed) and its wall time."""
    out_json = tmp / f"{name}.json"
    cmd = [sys.executable, f"bench/{script}.py", *argv, "--json", str(out_json)]  # run from ROOT
    print(f"\n=== {name}: {shlex.join(['python', f'bench/{script}.py', *argv])}", flush=True)
    started = time.monotonic()
    with (tmp / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=die_with_parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = proc.wait()
    took = time.monotonic() - started
    if code != 0 or not out_json.exists():
        print(f"=== {name}: FAILED with exit code {code} after {took:.0f} s (log {tmp / f'{name}.log'})", flush=True)
        return None, took
    print(f"=== {name}: done in {took:.0f} s", flush=True)
    return json.loads(out_json.read_text()), took


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return uptime_line()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="where to write the report")
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (a few minutes)")
    parser.add_argument("--raw-n", type=int, default=50000, help="messages per raw broker measurement")
    parser.add_argument("--match-sizes", default="10,100,1000,10000")
    parser.add_argument("--match-matches", type=int, default=20000)
    parser.add_argument("--intake-duration", type=float, default=10.0, help="seconds per intake endpoint")
    parser.add_argument("--intake-raw-duration", type=float, default=5.0)
    parser.add_argument("--pipeline-n", type=int, default=1000, help="incidents through the pipeline")
    parser.add_argument("--forward-n", type=int, default=5000, help="messages through the faust one-hop forward")
    parser.add_argument("--pipeline-rate", type=float, default=50.0,
                        help="incidents/s of the pipeline's steady-rate run (issue 15's target is at 50/s)")
    parser.add_argument("--pipeline-duration", type=float, default=20.0, help="seconds of the steady-rate run")
    parser.add_argument("--surge-reports", type=int, default=50000)
    parser.add_argument("--surge-seconds", type=float, default=60.0)
    parser.add_argument("--surge-events", type=int, default=200)
    parser.add_argument("--notifier-n", type=int, default=1000, help="SMS through the slow, throttling provider")
    parser.add_argument("--startup-runs", type=int, default=15, help="CLI runs per command in startup.py")
    parser.add_argument("--vs-rate", type=float, default=100.0, help="versus_alertmanager's steady alerts/s")
    parser.add_argument("--vs-duration", type=float, default=20.0)
    parser.add_argument("--vs-burst", type=int, default=2000)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                        help="PostgreSQL where each *_pg bench gets a scratch database")
    parser.add_argument("--no-pg", action="store_true", help="skip the *_pg benches")
    parser.add_argument("--only", default=BENCHES, help=f"comma-separated benches to run (default {BENCHES})")
    parser.add_argument("--note", action="append", default=[], help="a line to add under the run's facts")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def bench_plan(args: argparse.Namespace) -> dict[str, tuple[str, list[str], bool]]:
    """name -> (script, its own arguments, on PostgreSQL). They share run_all's broker, so none measures the raw
    rate again."""
    pipeline = ["--n", str(args.pipeline_n), "--forward-n", str(args.forward_n), "--rate", f"{args.pipeline_rate:g}",
                "--duration", f"{args.pipeline_duration:g}", "--raw-n", "0"]
    surge = ["--reports", str(args.surge_reports), "--seconds", f"{args.surge_seconds:g}", "--events",
             str(args.surge_events), "--raw-n", "0"]
    versus = ["--rate", f"{args.vs_rate:g}", "--duration", f"{args.vs_duration:g}", "--burst", str(args.vs_burst)]
    intake = ["--duration", f"{args.intake_duration:g}", "--raw-duration", f"{args.intake_raw_duration:g}",
              "--client", "raw"]
    return {
        "match": ("match", ["--sizes", args.match_sizes, "--matches", str(args.match_matches)], False),
        "intake": ("intake", intake, False),
        "intake_pg": ("intake", intake, True),
        "pipeline": ("pipeline", [*pipeline, "--profile"], False),
        "pipeline_pg": ("pipeline", pipeline, True),
        "notifier": ("notifier", ["--n", str(args.notifier_n)], False),
        "notifier_pg": ("notifier", ["--n", str(args.notifier_n)], True),
        "startup": ("startup", ["--runs", str(args.startup_runs)], False),
        "versus": ("versus_alertmanager", versus, False),
        "versus_pg": ("versus_alertmanager", versus, True),
        "surge": ("surge", surge, False),
        "surge_pg": ("surge", surge, True),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds, so the finally stops the broker
    command = shlex.join(["python", "bench/run_all.py", *(sys.argv[1:] if argv is None else argv)])

    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-all-"))
    started_at = datetime.now(UTC)
    started = time.monotonic()
    load_before = uptime()
    print(f"run_all: {command}\nrun_all: temp dir {tmp}\nrun_all: before: {load_before}", flush=True)
    results: dict[str, dict[str, object] | None] = {}
    durations: dict[str, float] = {}
    failed: list[str] = []
    try:
        facts = machine_facts(tmp)
        with broker(tmp) as (bootstrap, broker_pid):
            env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
            if broker_pid is not None:
                env["BENCH_BROKER_PID"] = str(broker_pid)
            raw_before = raw_broker_rate(bootstrap, args.raw_n, broker_pid)
            print(f"run_all: broker {bootstrap}; raw rate {raw_before['rate']:,.0f} msgs/s", flush=True)
            plan = bench_plan(args)
            for name in args.only.split(","):
                if name not in plan:
                    raise BenchError(f"unknown bench {name!r}")
                script, argv, on_pg = plan[name]
                if on_pg and args.no_pg:
                    continue
                if on_pg:
                    with scratch_database(args.pg_admin_url, name) as url:
                        results[name], durations[name] = run_bench(name, script, [*argv, "--db-url", url], tmp, env)
                else:
                    results[name], durations[name] = run_bench(name, script, argv, tmp, env)
                if results[name] is None:
                    failed.append(name)
            raw_after = raw_broker_rate(bootstrap, args.raw_n, broker_pid)
            print(f"run_all: raw rate after the benches {raw_after['rate']:,.0f} msgs/s", flush=True)
        load_after = uptime()
        run = {"command": command, "started_at": started_at, "duration_s": time.monotonic() - started,
               "load_before": load_before, "load_after": load_after, "notes": args.note, "machine": facts,
               "raw_before": raw_before, "raw_after": raw_after, "durations": durations, "failed": failed}
        # Saved first: a report that fails to render can be rendered again from it (report.render).
        (tmp / "run.json").write_text(json.dumps({"run": run, "results": results}, default=str, indent=1))
        out = Path(args.out)
        try:
            out.write_text(report.render(run, results), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - keep the figures (tmp/run.json) rather than lose the run
            raise BenchError(f"could not render {out}: {exc!r}; the figures are in {tmp / 'run.json'}") from exc
        print(f"run_all: after: {load_after}\nrun_all: wrote {out} in {time.monotonic() - started:.0f} s"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    except KeyboardInterrupt:
        print("\nrun_all: interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"run_all: {exc}", file=sys.stderr)
        failed.append("run_all")
    finally:
        if failed:
            print(f"run_all: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""HTTP intake throughput and latency (JSON API and CAP), next to the store's raw outbox-commit ceiling.

Run by hand (pytest never collects it):

    python bench/intake.py                      # SQLite in a temp dir, 10 s per endpoint, 16 clients
    python bench/intake.py --db-url postgresql://postgres@127.0.0.1:5432/test
    python bench/intake.py --client raw         # a load generator that leaves the api more of a small machine
    python bench/intake.py --json out.json      # also the figures as JSON (run_all.py)

1. A real `python -m pingan.cli.main api` (uvicorn) on a free port, with its own data dir, topic prefix and
   bearer tokens, and a rate limit far above what the bench can send. No broker: intake only commits to the
   store's outbox and answers 202 after the commit; nothing relays the outbox during the bench.
2. For each endpoint, after a short warm-up: --concurrency clients (one httpx.AsyncClient, a pool of as many
   connections; or with --client raw, as many hand-written keep-alive HTTP/1.1 connections, which cost a tenth
   of httpx's CPU) POST for --duration seconds, each request a new event:
   - POST /v1/incidents: an IncidentReport with its own dedup_key;
   - POST /v1/intake/cap: a real CAP sample from /work/shared/samples/cap/ whose <identifier> is rewritten per
     request, so every message is new (never an idempotent duplicate of an earlier one).
   Requests/s counts 2xx answers only; latency p50/p99 is over the 2xx answers.
3. In this process, on the same database: Store.accept() in a loop for --raw-duration seconds, once with the
   JSON endpoint's report and once with the CAP endpoint's parsed item (a fresh source_key each time): the raw
   commit ceiling each endpoint is compared with. Also --concurrency threads calling accept(), and the CPU
   cost of parsing/validating one body in-process (parse_cap, IncidentReport.model_validate_json).

The summary gives the CPU the api, the bench and everything else used meanwhile: on 2 cores httpx takes about as
much CPU per request as the api, so compare with --client raw before calling a figure the api's.

The api's log goes to api.log in the temp dir. Rows the bench wrote to a database that outlives it (--db-url)
are deleted at the end unless --keep; the tables are never dropped.

The bodies and HTTP clients are in intake_load.py, the database side (facts, ceilings, rows) in intake_store.py.
"""

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import BenchError, Child, CpuMeter, free_port, lib_version, machine_facts, write_json
from intake_load import TERMINATION, TOKEN, WARMUP_S, LoadResult, cap_body_factory, json_body_factory, run_endpoint
from intake_store import (
    RawResult,
    bench_rows,
    cpu_rate,
    database_facts,
    delete_bench_rows,
    raw_accept,
    raw_accept_threads,
)

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams import topics

CAP_DIR = Path("/work/shared/samples/cap")
CAP_SAMPLE = "oasis-cap12-A2-severe-thunderstorm.xml"
READY_TIMEOUT_S = 60.0
CLIENTS = {"httpx": "one httpx.AsyncClient, keep-alive pool", "raw": "hand-written HTTP/1.1, keep-alive"}
EndpointResult = tuple["LoadResult", "CpuMeter", str]  # figures, CPU, the raw-ceiling key it is compared with


# ---- the api process --------------------------------------------------------------------------------------

def api_env(data_dir: Path, port: int, prefix: str, db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(
        PINGAN_DATA_DIR=str(data_dir),
        PINGAN_HTTP_HOST="127.0.0.1",
        PINGAN_HTTP_PORT=str(port),
        PINGAN_TOPIC_PREFIX=prefix,
        PINGAN_INTAKE_RATE_PER_MINUTE="100000000",  # the limiter must not cap the bench
        PINGAN_INTAKE_TOKENS=f"api={TOKEN},cap={TOKEN}|*,alertmanager={TOKEN}",
        PINGAN_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if db_url:
        env["PINGAN_DATABASE_URL"] = db_url
    return env


def wait_healthy(url: str, child: Child) -> float:
    started = time.monotonic()
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        child.check_alive()
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise BenchError(f"the api did not answer /healthz within {READY_TIMEOUT_S:g} s\n{child.log_tail()}")
        time.sleep(0.1)


# ---- figures ----------------------------------------------------------------------------------------------

def figures(args: argparse.Namespace, facts: dict[str, str], db: str, endpoints: dict[str, EndpointResult],
            raw: dict[str, RawResult], raw_threads: RawResult, check: str) -> dict[str, object]:
    """Everything run_all.py tabulates, as plain data."""
    out: dict[str, object] = {
        "bench": "intake", "command": shlex.join(["python", *sys.argv]), "client": args.client,
        "database": db.split(" at ")[0] + (" (--db-url)" if args.db_url else ", in the temp dir"),
        "concurrency": args.concurrency, "duration_s": args.duration, "check": check, "machine": facts,
        "raw_accept": {k: {"rate": r.rate, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms} for k, r in raw.items()},
        "raw_accept_threads": {"rate": raw_threads.rate, "threads": args.concurrency},
    }
    out["endpoints"] = [{
        "name": name, "rate": result.rate, "ok": result.ok, "non_2xx": result.bad, "errors": result.errors,
        "elapsed_s": result.elapsed_s, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
        "api_cpu_ms_per_req": meter.child / max(result.ok, 1) * 1000, "cpu_other_s": meter.other,
        "raw_key": raw_key, "vs_raw_accept": result.rate / raw[raw_key].rate,
    } for name, (result, meter, raw_key) in endpoints.items()]
    return out


# ---- main -------------------------------------------------------------------------------------------------

def summary(args: argparse.Namespace, facts: dict[str, str], db: str, endpoints: dict[str, EndpointResult],
            raw: dict[str, RawResult], raw_threads: RawResult, costs: dict[str, float], check: str) -> str:
    lines = [
        "",
        "=" * 78,
        f"Pingan intake benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}",
        f"database: {db}",
        f"load: {args.concurrency} concurrent clients ({CLIENTS[args.client]}), {args.duration:g} s "
        f"per endpoint after a {min(WARMUP_S, args.duration):g} s warm-up; every request a new event",
        "",
    ]
    for name, (result, meter, raw_key) in endpoints.items():
        ceiling = raw[raw_key]
        lines += [
            f"{name}:",
            f"  throughput        {result.rate:10,.0f} req/s (2xx)   {result.ok} x 2xx, {result.bad} non-2xx, "
            f"{result.errors} errors in {result.elapsed_s:.1f} s",
            f"  latency           p50 {result.p50_ms:.1f} ms   p99 {result.p99_ms:.1f} ms   "
            f"max {result.latencies[-1] * 1000 if result.latencies else float('nan'):.1f} ms",
            f"  CPU               api {meter.child:.1f} s ({meter.child / result.elapsed_s:.0%} of a core)   "
            f"bench {meter.bench:.1f} s   others {meter.other:.1f} s   (of {result.elapsed_s:.1f} s wall x "
            f"{os.cpu_count()} cores)",
            f"  api CPU per 2xx   {meter.child / max(result.ok, 1) * 1000:.3f} ms",
            f"  vs raw commit     {result.rate / ceiling.rate:.2f} of Store.accept() in a loop "
            f"({ceiling.rate:,.0f}/s, same item kind)",
            "",
        ]
    lines += [
        f"raw outbox commit, Store.accept() in this process, {args.raw_duration:g} s each:",
        *(f"  {k + ', 1 thread':<34}{r.rate:10,.0f} accepts/s   p50 {r.p50_ms:.2f} ms   p99 {r.p99_ms:.2f} ms   "
          f"CPU {r.cpu_s / r.n * 1000:.3f} ms each" for k, r in raw.items()),
        f"  {'JSON report, ' + str(args.concurrency) + ' threads':<34}{raw_threads.rate:10,.0f} accepts/s   "
        f"p50 {raw_threads.p50_ms:.2f} ms   p99 {raw_threads.p99_ms:.2f} ms   "
        f"CPU {raw_threads.cpu_s / raw_threads.n * 1000:.3f} ms each",
        "",
        "CPU per request body in this process (no I/O, one core):",
        *(f"  {k:<34}{v:10,.0f} /s   ({1000 / v:.3f} ms each)" for k, v in costs.items()),
        "",
        f"check: {check}",
        "",
        "machine:",
        *(f"  {k}: {v}" for k, v in facts.items()),
        "=" * 78,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                        help="httpx.AsyncClient (default), or a hand-written HTTP/1.1 client that uses less CPU")
    parser.add_argument("--db-url", default=None, help="SQLAlchemy URL (default: SQLite in the temp dir)")
    parser.add_argument("--raw-duration", type=float, default=5.0,
                        help="seconds of each in-process Store.accept() loop (default 5)")
    parser.add_argument("--cap-sample", default=CAP_SAMPLE, help=f"file in {CAP_DIR} (default {CAP_SAMPLE})")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (for run_all.py)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (api.log, SQLite) and the rows written to --db-url")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.raw_duration <= 0:
        parser.error("--duration and --raw-duration must be positive")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    cap_sample = (CAP_DIR / args.cap_sample).read_bytes()

    # SIGTERM unwinds like Ctrl-C, so the finally below stops the api.
    signal.signal(signal.SIGTERM, TERMINATION.handler)

    run = uuid.uuid4().hex[:8]
    prefix = f"bench{run}."
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-intake-"))
    data_dir = tmp / "data"
    settings = Settings(data_dir=data_dir, database_url=args.db_url, topic_prefix=prefix)
    db_url = settings.resolved_database_url  # what the api resolves too (its default: <data dir>/pingan.db)
    api_topic = settings.topic(topics.RAW)
    raw_topic = f"bench{run}-raw.{topics.RAW}"
    api: Child | None = None
    store: Store | None = None
    code = 1  # until the run has finished
    try:
        facts = machine_facts(tmp)
        loops = [m for m in ("uvloop", "httptools") if lib_version(m) != "?"]
        facts["uvicorn loop/http"] = ("uvloop/httptools" if len(loops) == 2
                                      else f"asyncio/h11 (installed: {loops or 'none'})")
        store = Store(db_url)  # creates the tables if they are missing, like the api would
        db = f"{database_facts(store)} at {db_url.split('@')[-1] if '@' in db_url else db_url}"
        facts["database"] = db.split(" at ")[0]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        api = Child("api", [sys.executable, "-m", "pingan.cli.main", "api"],
                    api_env(data_dir, port, prefix, args.db_url), tmp / "api.log")
        ready_s = wait_healthy(url, api)
        print(f"bench: temp dir {tmp}; api pid {api.pid} on {url} ready after {ready_s:.1f} s; database {db}",
              flush=True)

        endpoints: dict[str, EndpointResult] = {}
        json_res, json_cpu = run_endpoint("POST /v1/incidents", url, "/v1/incidents",
                                          json_body_factory(run), args, api)
        endpoints["POST /v1/incidents (JSON IncidentReport)"] = (json_res, json_cpu, "JSON report")
        cap_res, cap_cpu = run_endpoint("POST /v1/intake/cap", url, "/v1/intake/cap",
                                        cap_body_factory(cap_sample, run), args, api)
        endpoints[f"POST /v1/intake/cap ({args.cap_sample})"] = (cap_res, cap_cpu, "CAP item")

        # Every 2xx must be a new row in the outbox, and nothing else may be.
        answered = sum(r.ok + r.warmup_ok for r, _, _ in endpoints.values())
        stored = bench_rows(store, [api_topic], run)
        unanswered = sum(r.errors + r.warmup_errors for r, _, _ in endpoints.values())
        check = (f"{stored} outbox rows for {answered} x 2xx" + ("" if stored == answered else
                 f"  MISMATCH ({unanswered} requests, warm-ups included, got no answer: such a request may have "
                 "committed)"))
        print(f"bench: {check}", flush=True)
        print(f"bench: api stopped: {api.stop()}", flush=True)

        # In-process ceilings on the same database, the api gone (nothing else writes meanwhile).
        json_report = IncidentReport.model_validate_json(json_body_factory(run)(0))
        cap_item = parse_cap(cap_body_factory(cap_sample, run)(0))[0]

        def make_json(i: int) -> IncidentReport:
            return json_report.model_copy(update={"dedup_key": f"bench-{run}-raw-{i}"})

        def make_cap(i: int) -> IntakeItem:
            return cap_item.model_copy(update={"source_key": f"{cap_item.source_key}-raw-{i}"})

        raw_accept(store, raw_topic, make_json, min(1.0, args.raw_duration))  # warm-up
        raw = {  # keyed like the endpoints' third element
            "JSON report": raw_accept(store, raw_topic, make_json, args.raw_duration),
            "CAP item": raw_accept(store, raw_topic, make_cap, args.raw_duration),
        }
        raw_threads = raw_accept_threads(store, raw_topic, make_json, args.raw_duration, args.concurrency)
        for k, r in raw.items():
            print(f"raw: {k}: {r.n} accepts in {r.elapsed_s:.1f} s = {r.rate:,.0f}/s", flush=True)
        print(f"raw: JSON report, {args.concurrency} threads: {raw_threads.rate:,.0f}/s", flush=True)

        json_bodies, cap_bodies = json_body_factory(run), cap_body_factory(cap_sample, run)
        costs = {
            "IncidentReport.model_validate_json": cpu_rate(lambda i: IncidentReport.model_validate_json(
                json_bodies(i))),
            "parse_cap (incl. XSD check)": cpu_rate(lambda i: parse_cap(cap_bodies(i))),
        }
        print(summary(args, facts, db, endpoints, raw, raw_threads, costs, check), flush=True)
        write_json(args.json, figures(args, facts, db, endpoints, raw, raw_threads, check))
        code = 0
    except KeyboardInterrupt as exc:
        by = str(exc) or "SIGINT"
        print(f"\nbench: interrupted by {by}", file=sys.stderr)
        code = 128 + signal.Signals[by].value
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
    finally:
        if api is not None:
            api.stop()
        if store is not None:
            if args.db_url and not args.keep:
                try:
                    gone = delete_bench_rows(store, [api_topic, raw_topic])
                    print(f"bench: deleted the {gone} outbox rows this run wrote to {args.db_url}", file=sys.stderr)
                except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's outcome
                    print(f"bench: could not delete this run's rows: {exc!r}", file=sys.stderr)
            store.close()
        if args.keep or code == 1:  # an error keeps the log to look at; Ctrl-C does not
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

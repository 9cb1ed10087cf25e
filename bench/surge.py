"""Hotline surge: 50,000 signed Twilio SMS webhooks in 60 s about 200 events, posted to a real `pingan up`.

Run by hand (pytest never collects it):

    python bench/surge.py                                   # 50,000 reports over 60 s, 200 events
    python bench/surge.py --reports 5000 --seconds 20       # a quick run

1. A tansu broker (ours, or KAFKA_BOOTSTRAP_SERVERS) and its raw kafka-python rate (common.raw_broker_rate).
2. `pingan up` (supervisor, worker, api; SQLite in a temp dir) on that broker, with a Twilio auth token, the intake
   rate limit far above the bench, and an intake config whose area table has one estate per event
   (surge_reports.py says how reports of one event correlate and those of two never do; it is checked first).
3. Warm-up: one signed SMS, waited for until triaged (the worker has joined its group).
4. The surge: every report signed beforehand with twilio's RequestValidator; --concurrency keep-alive connections
   send report i at t0 + i / rate as soon as one is free. A connection is busy until its answer comes, so when the
   system answers slower than the target, sends fall behind; at the end of --seconds sending stops, and what the
   system could not take in time is counted as not sent (--send-all posts every report however long it takes).
   Meanwhile a thread reads the store's lag every --sample-s seconds on a read-only connection: the bench's
   accepted reports not yet triaged (as pingan_consumer_lag{topic="incidents.raw"} counts them), incidents without a
   response decision, and notification intents not yet handed to a channel.
5. Drain: until every accepted report is triaged (or --drain-timeout). Figures: 2xx and the achieved rate, refusals
   and errors, incidents created, correlation ratio, peak lag, time to drain (last 2xx answer -> last triage).
"""

import argparse
import asyncio
import itertools
import os
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import surge_reports
from common import (
    BenchError,
    Child,
    CpuMeter,
    RawHttp,
    broker,
    clean_env,
    cpu_seconds,
    free_port,
    machine_facts,
    percentile,
    raw_broker_rate,
    wait_for,
    write_json,
)
from twilio.request_validator import RequestValidator

TOKEN = "bench-twilio-auth-token"
PATH = "/v1/intake/twilio/sms"
REQUEST_TIMEOUT_S = 15.0  # what Twilio waits for a webhook answer
READY_TIMEOUT_S = 180.0
LAG_SQL = {
    # The bench's SMS only (source_key twilio:sms:…): the api may put events of its own in the outbox (heartbeats).
    "incidents.raw": "SELECT count(*) FROM outbox o LEFT JOIN triage_events t ON t.event_id = o.event_id "
                     "WHERE t.event_id IS NULL AND o.source_key LIKE 'twilio:sms:%'",
    "incidents": "SELECT count(*) FROM triage_events t JOIN incidents i ON i.id = t.incident_id "
                 "LEFT JOIN responses r ON r.incident_id = i.id WHERE t.outcome = 'created' AND r.incident_id IS NULL",
    "notifications": "SELECT count(*) FROM notifications WHERE state = 'intended'",
}


def open_reader(db: Path | str) -> Any:
    """A read-only DB-API connection to the stack's store: SQLite read-only (a bench reader must not take the write
    lock from the system under test), or PostgreSQL (--db-url) in autocommit, so each query sees the latest rows."""
    if isinstance(db, Path):
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    import psycopg

    return psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def query(conn: Any, sql: str, params: tuple[object, ...] = ()) -> Any:
    """conn.execute with the bench's `?` placeholders, on either database."""
    if not isinstance(conn, sqlite3.Connection):
        sql = sql.replace("%", "%%").replace("?", "%s")
    return conn.execute(sql, params)


class LagSampler(threading.Thread):
    """The store's lag every interval, on a read-only connection (open_reader)."""

    def __init__(self, db_path: Path | str, interval_s: float) -> None:
        super().__init__(name="bench-lag", daemon=True)
        self.db_path, self.interval_s = db_path, interval_s
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def read(self, conn: Any) -> dict[str, int]:
        return {topic: int(query(conn, sql).fetchone()[0]) for topic, sql in LAG_SQL.items()}

    def once(self) -> dict[str, int]:
        conn = open_reader(self.db_path)
        try:
            return self.read(conn)
        finally:
            conn.close()

    def run(self) -> None:
        try:
            conn = open_reader(self.db_path)
            while not self.stop_event.is_set():
                self.samples.append((time.time(), self.read(conn)))
                self.stop_event.wait(self.interval_s)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc


async def surge(url: str, requests: list[tuple[bytes, bytes]], rate: float, concurrency: int,
                stop_at: float | None) -> dict[str, object]:
    """Report i is due at start + i / rate; a connection sends its next due report as soon as it is free. With
    stop_at (seconds after start), nothing is sent after it: what the system could not take in time stays unsent."""
    parsed = httpx.URL(url)
    counter = itertools.count()
    sent_at: list[float] = [0.0] * len(requests)
    answered_at: list[float] = [0.0] * len(requests)
    status: list[int] = [0] * len(requests)
    errors: dict[str, int] = {}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    start = time.time() + 0.2

    async def client() -> None:
        conn = RawHttp(parsed.host, parsed.port or 80, PATH, headers)
        try:
            while (i := next(counter)) < len(requests):
                delay = start + i / rate - time.time()
                if stop_at is not None and delay < 0 and time.time() > start + stop_at:
                    break
                if delay > 0:
                    await asyncio.sleep(delay)
                body, extra = requests[i]
                sent_at[i] = time.time()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        code, answer = await conn.post(body, extra)
                    status[i] = code if code != 200 or b"INC-" in answer else -1  # -1: a 200 without a reference
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                answered_at[i] = time.time()
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {"start": start, "sent_at": sent_at, "answered_at": answered_at, "status": status, "errors": errors}


def drained(sampler: LagSampler, after: float) -> bool:
    """Every accepted report triaged, in a sample read after `after`."""
    return bool(sampler.samples) and sampler.samples[-1][0] > after and sampler.samples[-1][1]["incidents.raw"] == 0


def store_figures(db_path: Path | str, warmup_key: str) -> dict[str, object]:
    """Outcomes of the bench's reports (the warm-up excluded), from the store."""
    conn = open_reader(db_path)
    try:
        bench = "o.source_key LIKE 'twilio:sms:%' AND o.source_key <> ? "
        accepted = query(conn, f"SELECT count(*) FROM outbox o WHERE {bench}", (warmup_key,)).fetchone()[0]
        outcomes = dict(query(conn,
            f"SELECT t.outcome, count(*) FROM triage_events t JOIN outbox o ON o.event_id = t.event_id WHERE {bench}"
            "GROUP BY t.outcome", (warmup_key,)).fetchall())
        first, last = query(conn,
            f"SELECT min(t.at), max(t.at) FROM triage_events t JOIN outbox o ON o.event_id = t.event_id WHERE {bench}",
            (warmup_key,)).fetchone()
        counts = sorted(r[0] for r in query(conn,
            "SELECT i.report_count FROM incidents i JOIN triage_events t ON t.incident_id = i.id AND t.outcome = "
            f"'created' JOIN outbox o ON o.event_id = t.event_id WHERE {bench}", (warmup_key,)))
        kinds = dict(query(conn, "SELECT kind, count(*) FROM actions GROUP BY kind").fetchall())
        ledger = dict(query(conn, "SELECT state, count(*) FROM notifications GROUP BY state").fetchall())
    finally:
        conn.close()

    def at(value: str | datetime | None) -> float | None:  # SQLite gives text, PostgreSQL a naive datetime (UTC)
        if not value:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC).timestamp()

    return {"accepted": accepted, "outcomes": outcomes, "first_triage": at(first), "last_triage": at(last),
            "reports_per_incident": counts, "actions": kinds, "ledger": ledger}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=50_000, help="SMS reports to post (default 50000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="over this many seconds (default 60)")
    parser.add_argument("--events", type=int, default=200, help="distinct events they are about (default 200)")
    parser.add_argument("--send-all", action="store_true",
                        help="post every report however long it takes (default: stop sending when --seconds is up, "
                             "and count what the system could not take in time as not sent)")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--sample-s", type=float, default=1.0, help="lag sampling interval (default 1 s)")
    parser.add_argument("--drain-timeout", type=float, default=900.0,
                        help="give up waiting for triage this long after the last post (default 900 s)")
    parser.add_argument("--raw-n", type=int, default=20000, help="messages for the broker's raw rate (0 skips)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (for run_all.py)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite)")
    parser.add_argument("--db-url", default=None, help="the stack's database (default: SQLite in its data dir)")
    args = parser.parse_args(argv)
    if args.reports < args.events or args.seconds <= 0:
        parser.error("--reports must be at least --events, and --seconds positive")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-surge-"))
    data_dir = tmp / "data"
    db_path: Path | str = args.db_url or data_dir / "pingan.db"
    up: Child | None = None
    code = 1
    try:
        facts = machine_facts(tmp)
        config_path = tmp / "intake.yaml"
        surge_reports.write_intake_config(config_path, args.events)
        checked = surge_reports.verify(config_path, args.events)
        run = uuid.uuid4().hex[:8]
        items = surge_reports.reports(args.reports, args.events, run)
        spread = surge_reports.spread(items)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        requests = surge_reports.signed_requests(items, url + PATH, TOKEN)
        warm = surge_reports.reports(1, 1, "warmup00")[0].form | {"Body": "预热：测试路冒烟 bench warm-up"}
        print(f"surge: {args.reports} reports about {len(spread)} events ({min(spread.values())}-"
              f"{max(spread.values())} each; {checked['phrasings_checked']} phrasings checked, "
              f"{checked['distinct_keys']} dedup keys), signed in {time.monotonic() - started:.1f} s", flush=True)

        with broker(tmp) as (bootstrap, broker_pid):
            raw = raw_broker_rate(bootstrap, args.raw_n, broker_pid) if args.raw_n > 0 else None
            if raw is not None:
                print(f"raw: kafka-python {raw['n']} x {raw['bytes']} B in and out: {raw['rate']:,.0f} msgs/s",
                      flush=True)
            env = clean_env(
                KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINGAN_DATA_DIR=str(data_dir), PINGAN_HTTP_HOST="127.0.0.1",
                PINGAN_HTTP_PORT=str(port), PINGAN_PUBLIC_URL=url, PINGAN_APP_ID=f"pingan-bench-surge-{run}",
                PINGAN_TOPIC_PREFIX=f"benchsurge{run}.", PINGAN_METRICS_PORT="0", PINGAN_LOG_LEVEL="WARNING",
                PINGAN_TWILIO_AUTH_TOKEN=TOKEN, PINGAN_INTAKE_RATE_PER_MINUTE="100000000",
                PINGAN_INTAKE_CONFIG=str(config_path),
                **({"PINGAN_DATABASE_URL": args.db_url} if args.db_url else {}),
            )
            up = Child("pingan up", [sys.executable, "-m", "pingan.cli.main", "up"], env, tmp / "up.log")
            started = time.monotonic()

            def healthy() -> bool:
                try:
                    return httpx.get(url + "/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, READY_TIMEOUT_S, "pingan up to answer /healthz", 0.2, up)
            answer = httpx.post(url + PATH, data=warm, timeout=30, headers={
                "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url + PATH, warm)})
            if answer.status_code != 200 or "INC-" not in answer.text:
                raise BenchError(f"the warm-up SMS got {answer.status_code}: {answer.text[:300]}\n{up.log_tail()}")
            sampler = LagSampler(db_path, args.sample_s)
            wait_for(lambda: sampler.once()["incidents.raw"] == 0, READY_TIMEOUT_S, "the warm-up SMS to be triaged",
                     0.2, up)
            print(f"surge: pingan up pid {up.pid} on {url} ready after {time.monotonic() - started:.1f} s", flush=True)

            meter = CpuMeter(up.pid)
            broker_cpu0 = cpu_seconds(broker_pid)
            meter.start()
            sampler.start()
            result = asyncio.run(surge(url, requests, args.reports / args.seconds, args.concurrency,
                                       None if args.send_all else args.seconds))
            print("surge: all posted; waiting for triage to drain", flush=True)
            posted_end = time.time()
            while not drained(sampler, posted_end):
                up.check_alive()
                if sampler.error is not None:
                    raise BenchError(f"lag sampler: {sampler.error!r}")
                if time.time() - posted_end > args.drain_timeout:
                    print(f"surge: not drained {args.drain_timeout:g} s after the last post; figures as they are",
                          flush=True)
                    break
                time.sleep(1.0)
            meter.stop()
            broker_cpu = cpu_seconds(broker_pid) - broker_cpu0
            time.sleep(args.sample_s * 2)  # a few samples after the drain: the later stages' lag
            sampler.stop_event.set()
            sampler.join(10)
            print(f"surge: pingan up stopped: {up.stop(30)}", flush=True)
        figures = summarize(args, result, sampler.samples, store_figures(db_path, "twilio:sms:" + warm["MessageSid"]),
                            meter, broker_cpu, raw)
        figures.update(bench="surge", command=shlex.join(["python", *sys.argv]), machine=facts, events=len(spread),
                       reports_per_event=[min(spread.values()), max(spread.values())], verified=checked)
        print_summary(figures)
        write_json(args.json, figures)
        code = 0
    except KeyboardInterrupt:
        print("\nsurge: interrupted", file=sys.stderr)
        code = 130
    except (BenchError, ValueError) as exc:
        print(f"surge: {exc}", file=sys.stderr)
    finally:
        if up is not None:
            up.stop(30)
        if args.keep or code == 1:
            print(f"surge: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


def summarize(args: argparse.Namespace, result: dict[str, object], samples: list[tuple[float, dict[str, int]]],
              store: dict[str, object], meter: CpuMeter, broker_cpu: float,
              raw: dict[str, float] | None) -> dict[str, object]:
    start = float(result["start"])  # type: ignore[arg-type]
    status: list[int] = result["status"]  # type: ignore[assignment]
    sent_at: list[float] = result["sent_at"]  # type: ignore[assignment]
    answered_at: list[float] = result["answered_at"]  # type: ignore[assignment]
    ok = [i for i, s in enumerate(status) if s == 200]
    statuses: dict[str, int] = {}
    for s in status:
        if s not in (200, 0):
            name = "200 without a reference" if s == -1 else str(s)
            statuses[name] = statuses.get(name, 0) + 1
    last_ok = max((answered_at[i] for i in ok), default=start)
    latencies = sorted(answered_at[i] - sent_at[i] for i in ok)
    lateness = sorted(max(0.0, sent_at[i] - (start + i * args.seconds / args.reports))
                      for i in range(len(status)) if sent_at[i])
    window_end = start + args.seconds
    outcomes: dict[str, int] = store["outcomes"]  # type: ignore[assignment]
    triaged = sum(outcomes.values())
    last_triage = store["last_triage"]
    peaks = {topic: max(((s[topic], t - start) for t, s in samples), default=(0, 0.0)) for topic in LAG_SQL}
    first_triage = store["first_triage"]
    triage_rate = (triaged / (last_triage - first_triage)  # type: ignore[operator]
                   if first_triage and last_triage and last_triage > first_triage else float("nan"))
    counts: list[int] = store["reports_per_incident"]  # type: ignore[assignment]
    achieved = len(ok) / (last_ok - start) if last_ok > start else float("nan")
    out: dict[str, object] = {
        "target": {"reports": args.reports, "seconds": args.seconds, "rate": args.reports / args.seconds,
                   "concurrency": args.concurrency},
        "posted": sum(1 for t in sent_at if t), "not_sent": sum(1 for t in sent_at if not t), "ok": len(ok),
        "send_all": args.send_all, "non_2xx": statuses, "errors": result["errors"],
        "ok_within_window": sum(1 for i in ok if answered_at[i] <= window_end),
        "post_s": last_ok - start, "achieved_rate": achieved,
        "latency_p50_s": percentile(latencies, 50), "latency_p99_s": percentile(latencies, 99),
        "latency_max_s": latencies[-1] if latencies else float("nan"),
        "send_late_p50_s": percentile(lateness, 50), "send_late_max_s": lateness[-1] if lateness else float("nan"),
        "accepted_in_store": store["accepted"], "triaged": triaged, "outcomes": outcomes,
        "incidents_created": outcomes.get("created", 0), "correlated": outcomes.get("correlated", 0),
        "correlation_ratio": outcomes.get("correlated", 0) / triaged if triaged else float("nan"),
        "reports_per_incident": {"min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1]}
        if counts else {},
        "peak_lag": {topic: {"value": v, "at_s": at} for topic, (v, at) in peaks.items()},
        "drain_s": (last_triage - last_ok) if last_triage else float("nan"),  # type: ignore[operator]
        "triage_rate": triage_rate, "actions": store["actions"], "ledger": store["ledger"],
        "cpu": {"pingan_up_s": meter.child, "broker_s": broker_cpu, "bench_s": meter.bench,
                "other_s": meter.other - broker_cpu, "wall_s": meter.wall},
        "lag_series": [[round(t - start, 1), s["incidents.raw"]] for t, s in samples[:: max(1, len(samples) // 60)]],
        "raw": raw,
    }
    if raw is not None:
        out["vs_raw"] = {"achieved": achieved / raw["rate"], "triage": triage_rate / raw["rate"]}
    return out


def print_summary(f: dict[str, object]) -> None:
    t: dict[str, float] = f["target"]  # type: ignore[assignment]
    peak: dict[str, dict[str, float]] = f["peak_lag"]  # type: ignore[assignment]
    lines = [
        "", "=" * 78, f"Pingan hotline surge benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {f['command']}",
        f"target: {t['reports']:.0f} signed Twilio SMS webhooks in {t['seconds']:g} s ({t['rate']:,.0f}/s) about "
        f"{f['events']} events, {t['concurrency']:.0f} connections",
        f"posted {f['posted']} ({f['not_sent']} not sent in time): {f['ok']} x 200 with a reference, "
        f"non-2xx {f['non_2xx'] or 'none'}, "
        f"errors {f['errors'] or 'none'}",
        f"achieved {f['achieved_rate']:,.1f} reports/s ({f['ok']} in {f['post_s']:.1f} s); "
        f"{f['ok_within_window']} answered within the {t['seconds']:g} s window",
        f"answer latency p50 {f['latency_p50_s'] * 1000:.0f} ms, p99 {f['latency_p99_s'] * 1000:.0f} ms; "
        f"sends late by p50 {f['send_late_p50_s']:.1f} s, max {f['send_late_max_s']:.1f} s",
        f"store: {f['accepted_in_store']} accepted, {f['triaged']} triaged {f['outcomes']}",
        f"incidents created {f['incidents_created']}, correlation ratio {f['correlation_ratio']:.4f}, "
        f"reports per incident {f['reports_per_incident']}",
        "peak lag: " + ", ".join(f"{k} {v['value']:.0f} at {v['at_s']:.0f} s" for k, v in peak.items()),
        f"time to drain (last 2xx -> last triage) {f['drain_s']:.1f} s; triage {f['triage_rate']:,.1f} reports/s",
        f"CPU: {f['cpu']}", f"raw broker rate: {f['raw']['rate']:,.0f} msgs/s" if f.get("raw") else "raw: skipped",
        f"ratios vs raw: {f.get('vs_raw')}", "=" * 78,
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

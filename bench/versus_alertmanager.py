"""Pingan and Prometheus Alertmanager side by side (issue 15): the same alerts, each turned into one webhook call,
into the same webhook receiver, in one run.

Run by hand (pytest never collects it):

    python bench/versus_alertmanager.py                          # 100 alerts/s for 20 s, then a burst of 2,000
    python bench/versus_alertmanager.py --rate 5,100 --json /tmp/vs.json
    python bench/versus_alertmanager.py --rate 20 --duration 5 --burst 200      # a quick one

1. One webhook receiver in this process (a threaded HTTP server on 127.0.0.1) records the arrival time of every
   alert id: Alertmanager posts to /am (the id is the alert's `bench_id` label), Pingan to /pingan (the id is the
   notification's text, which the bench plan's template makes the alert's summary).
2. Debian's Alertmanager 0.25 (`prometheus-alertmanager`, or `alertmanager`) with a temp config: one route to that
   receiver, `group_by: ['...']` (every label: each alert is a group of its own, so each is sent alone),
   `group_wait: 0s` (a new group is flushed at once), `group_interval: 5m` and `repeat_interval: 4h` (they cannot
   be zero and only pace later notifications of a group, and there are none: a group of one unchanging alert is
   never sent again, while a small interval would re-flush every group each interval on the cores Pingan needs),
   `send_resolved: false`; gossip off (`--cluster.listen-address=`), a free port, a temp storage path.
3. `pingan up` in a temp data dir on the embedded defaults (tansu, SQLite), with `PINGAN_PLANS_DIR` a temp plan set:
   the shipped directory with one person (`zhou-haibo`) given a webhook contact (the receiver's /pingan), and one
   plan, `bench-webhook`, for accident_disaster/transport at every grade whose only step sends that one person a
   webhook at once (template `{title}`). Every alert carries `pingan_category=accident_disaster`,
   `pingan_subtype=transport`, `pingan_grade=IV` and its own fingerprint, so each becomes its own incident (none
   correlate: a report joins only the open incident with its dedup key) and exactly one webhook. Besides that:
   `PINGAN_WEBHOOK_SECRET` (the channel needs one) and `PINGAN_INTAKE_RATE_PER_MINUTE` far above the bench (the
   default, 6,000 a minute a source, would answer the burst 429). Sending starts after its "pingan up: ready" line.
4. The same alerts go to each system in turn (the other idle meanwhile), phase by phase: each --rate for --duration
   s, then a --burst. Alertmanager gets them on its API, `POST /api/v2/alerts`; Pingan gets the Alertmanager webhook
   (version 4) on `POST /v1/intake/alertmanager` with the `alertmanager` token of <data dir>/intake-tokens.json.
   Steady: alert i is due at t0 + i / rate, one alert a POST to both, over --connections keep-alive connections.
   Burst, as fast as the connections go: to Alertmanager in POSTs of 64 alerts (Prometheus's batch size); to Pingan
   one alert a webhook POST (an Alertmanager with `group_by: ['...']` in front of Pingan sends it so).
   Latency = webhook arrival - the moment its POST began, per alert; a phase ends at the last webhook, or after
   --drain-timeout. Per system and phase: delivered, duplicates, p50/p99/max, burst time to the last webhook, and
   the CPU-seconds of Alertmanager and of `pingan up` with its children (broker, worker, api), by part.
   The two systems and the receiver are in versus_alertmanager_systems.py.
"""

import argparse
import asyncio
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    BenchError,
    Child,
    RawHttp,
    cpu_seconds,
    machine_busy_seconds,
    machine_facts,
    percentile,
    uptime_line,
    wait_for,
    write_json,
)
from versus_alertmanager_systems import SYSTEMS, Receiver, parts_cpu, serve, start_alertmanager, start_pingan

AM_BATCH = 64  # Prometheus posts at most 64 alerts to Alertmanager at once


# ---- alerts and sending -----------------------------------------------------------------------------------

def labels(alert_id: str) -> dict[str, str]:
    return {"alertname": "PinganVersusBench", "bench_id": alert_id, "severity": "info",
            "pingan_category": "accident_disaster", "pingan_subtype": "transport", "pingan_grade": "IV"}


def am_body(ids: list[str]) -> bytes:
    """Alertmanager's API v2: a list of postable alerts (startsAt now, endsAt after resolve_timeout)."""
    return json.dumps([{"labels": labels(i), "annotations": {"summary": i}} for i in ids]).encode()


def webhook_body(alert_id: str, starts_at: str) -> bytes:
    """The webhook an Alertmanager would send Pingan for this one alert (version 4)."""
    fingerprint = uuid.uuid5(uuid.NAMESPACE_URL, alert_id).hex[:16]
    alert = {"status": "firing", "labels": labels(alert_id), "annotations": {"summary": alert_id},
             "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint}
    return json.dumps({"version": "4", "groupKey": f'{{}}:{{bench_id="{alert_id}"}}', "truncatedAlerts": 0,
                       "status": "firing", "receiver": "pingan", "groupLabels": {"bench_id": alert_id},
                       "commonLabels": labels(alert_id), "commonAnnotations": {"summary": alert_id},
                       "externalURL": "http://127.0.0.1:9093", "alerts": [alert]}).encode()


@dataclass
class Target:
    system: str
    port: int
    path: str
    headers: dict[str, str]
    batch: int  # alerts a POST in the burst

    def body(self, ids: list[str]) -> bytes:
        if self.system == "alertmanager":
            return am_body(ids)
        return webhook_body(ids[0], datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


@dataclass
class Sent:
    at: dict[str, float] = field(default_factory=dict)
    answers_ms: list[float] = field(default_factory=list)
    non_2xx: list[str] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0


async def send(target: Target, batches: list[list[str]], due: list[float] | None, connections: int) -> Sent:
    """POST each batch (at its due time, when given), over `connections` keep-alive connections."""
    out = Sent()
    queue: asyncio.Queue[list[str] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = RawHttp("127.0.0.1", target.port, target.path, target.headers)
        try:
            while (ids := await queue.get()) is not None:
                body = target.body(ids)
                began = time.monotonic()
                for i in ids:
                    out.at[i] = began
                status, answer = await conn.post(body)
                out.answers_ms.append((time.monotonic() - began) * 1000)
                if not 200 <= status < 300:
                    out.non_2xx.append(f"{status} {answer[:200]!r}")
        finally:
            await conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    out.first = time.monotonic()
    for n, batch in enumerate(batches):
        if due is not None and (wait := out.first + due[n] - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(batch)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    out.last = time.monotonic()
    return out


def run_phase(name: str, target: Target, ids: list[str], rate: float | None, rx: Receiver, child: Child,
              cpu: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    """One system, one phase: send, wait for every webhook (or --drain-timeout), and the figures."""
    if rate is not None:
        batches, due = [[i] for i in ids], [n / rate for n in range(len(ids))]
    else:
        size = target.batch
        batches, due = [ids[n:n + size] for n in range(0, len(ids), size)], None
    cpu0, machine0, bench0 = cpu(), machine_busy_seconds(), time.process_time()
    sent = asyncio.run(send(target, batches, due, args.connections))
    try:
        wait_for(lambda: rx.count(target.system, ids) == len(ids), args.drain_timeout,
                 f"{target.system}'s {name} webhooks", interval_s=0.05, alive=child)
        drained = True
    except BenchError:
        child.check_alive()  # a dead system is the run's error, not a slow phase
        drained = False
    cpu1 = cpu()  # to the last webhook: the settle below is idle time
    time.sleep(args.settle)  # a late second webhook for the same alert would show by now
    cpu_parts = {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()}
    cpu_s = sum(cpu_parts.values())
    # Everyone else on the machine meanwhile (the idle other system, other engineers' runs): check it before trusting.
    other_s = machine_busy_seconds() - machine0 - cpu_s - (time.process_time() - bench0)
    with rx.lock:
        got = {i: sorted(rx.arrivals[target.system][i]) for i in ids if i in rx.arrivals[target.system]}
    latencies = sorted(times[0] - sent.at[i] for i, times in got.items() if i in sent.at)
    last = max((times[0] for times in got.values()), default=float("nan"))
    answers = sorted(sent.answers_ms)
    figures = {
        "system": target.system, "phase": name, "rate": rate, "alerts": len(ids), "posts": len(batches),
        "delivered": len(got), "drained": drained, "duplicates": sum(len(t) - 1 for t in got.values()),
        "non_2xx": len(sent.non_2xx), "non_2xx_sample": sent.non_2xx[:3],
        "send_s": sent.last - sent.first, "to_last_webhook_s": last - sent.first,
        "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "answer_p50_ms": percentile(answers, 50), "answer_p99_ms": percentile(answers, 99),
        "cpu_s": cpu_s, "cpu_parts_s": cpu_parts, "cpu_other_s": other_s, "load": uptime_line(),
    }
    print(f"{target.system:>12} {name:<14} {len(got)}/{len(ids)}, p50 {figures['p50_ms']:.1f} ms, "
          f"p99 {figures['p99_ms']:.1f} ms, last {figures['to_last_webhook_s']:.2f} s after the first send, "
          f"dup {figures['duplicates']}, non-2xx {figures['non_2xx']}, CPU {cpu_s:.1f} s (others {other_s:.1f} s)",
          flush=True)
    return figures


# ---- main -------------------------------------------------------------------------------------------------

def fmt(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)


def table(results: list[dict[str, Any]]) -> str:
    """Side by side: a row per phase and figure, a column per system."""
    by = {(r["phase"], r["system"]): r for r in results}
    rows = [("", *SYSTEMS)]
    for phase in dict.fromkeys(r["phase"] for r in results):
        am, pa = by[(phase, "alertmanager")], by[(phase, "pingan")]
        rows += [
            (f"{phase}: delivered", *(f"{r['delivered']}/{r['alerts']}" + ("" if r["drained"] else " (timed out)")
                                      for r in (am, pa))),
            (f"{phase}: p50 / p99", *(f"{fmt(r['p50_ms'], ',.1f')} / {fmt(r['p99_ms'], ',.1f')} ms"
                                      for r in (am, pa))),
            (f"{phase}: last webhook", *(f"{fmt(r['to_last_webhook_s'], ',.2f')} s (sent in {r['send_s']:.2f} s)"
                                         for r in (am, pa))),
            (f"{phase}: duplicates, non-2xx", *(f"{r['duplicates']}, {r['non_2xx']}" for r in (am, pa))),
            (f"{phase}: CPU-s (others')", *(f"{r['cpu_s']:.1f}" + (" (" + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(r["cpu_parts_s"].items(), key=lambda kv: -kv[1])) + ")"
                if len(r["cpu_parts_s"]) > 1 else "") + f" ({r['cpu_other_s']:.1f})" for r in (am, pa))),
        ]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", default="100", help="steady alerts/s, comma-separated for several phases "
                        "(default 100)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each steady phase (default 20)")
    parser.add_argument("--burst", type=int, default=2000, help="alerts in the burst (default 2000; 0 skips it)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections a system (default 8)")
    parser.add_argument("--drain-timeout", type=float, default=900.0,
                        help="seconds to wait for a phase's last webhook (default 900)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait for late duplicates (default 2)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite, configs)")
    parser.add_argument("--db-url", default=None, help="Pingan's database (default: SQLite in its data dir)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C: the finally stops the children
    rates = [float(r) for r in args.rate.split(",") if r.strip()]
    if any(r <= 0 for r in rates) or args.duration <= 0 or args.burst < 0 or args.connections < 1:
        parser.error("--rate, --duration and --connections must be positive, --burst at least 0")

    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-vs-am-"))
    rx = Receiver()
    httpd = serve(rx)
    children: list[Child] = []
    code = 1
    try:
        facts = machine_facts(tmp)
        load_before = uptime_line()
        am, am_port, am_version = start_alertmanager(tmp, rx)
        children.append(am)
        up, up_port, token, ready_s = start_pingan(tmp, rx, args.db_url)
        children.append(up)
        print(f"bench: temp dir {tmp}; {am_version} on :{am_port}; pingan up ready after {ready_s:.1f} s on "
              f":{up_port}; receiver :{rx.port}; {load_before}", flush=True)
        targets = {
            "alertmanager": (Target("alertmanager", am_port, "/api/v2/alerts",
                                    {"Content-Type": "application/json"}, AM_BATCH), am,
                             lambda: {"alertmanager": cpu_seconds(am.pid)}),
            "pingan": (Target("pingan", up_port, "/v1/intake/alertmanager",
                              {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, 1), up,
                       lambda: parts_cpu(up.pid)),
        }
        phases: list[tuple[str, float | None, int]] = [(f"{r:g}/s x {args.duration:g} s", r,
                                                        max(1, round(r * args.duration))) for r in rates]
        if args.burst:
            phases.append((f"burst {args.burst}", None, args.burst))
        results = []
        for p, (name, rate, n) in enumerate(phases):
            for system in SYSTEMS:
                target, child, cpu = targets[system]
                ids = [f"vs-{run}-{system[:2]}{p}-{i}" for i in range(n)]
                results.append(run_phase(name, target, ids, rate, rx, child, cpu, args))
        load_after = uptime_line()
        for child in children:
            child.stop()
        side = table(results)
        print(f"\nPingan versus {am_version}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
              f"command: python {shlex.join(sys.argv)}\nbefore: {load_before}\nafter:  {load_after}\n\n{side}\n"
              f"\nunreadable webhooks: {len(rx.bad)}\nmachine:\n" + "\n".join(f"  {k}: {v}" for k, v in facts.items()),
              flush=True)
        write_json(args.json, {"bench": "versus_alertmanager", "command": shlex.join(["python", *sys.argv]),
                               "alertmanager": am_version, "pingan_ready_s": ready_s,
                               "database": "PostgreSQL" if args.db_url else "SQLite", "load_before": load_before,
                               "load_after": load_after, "results": results, "unreadable_webhooks": rx.bad[:10],
                               "table": side, "machine": facts})
        code = 0
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        code = 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
    finally:
        for child in children:
            child.stop()
        httpd.shutdown()
        httpd.server_close()
        if args.keep or code == 1:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

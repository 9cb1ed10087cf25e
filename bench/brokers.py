"""Apache Kafka and tansu side by side: the raw kafka-python rate, the faust one-hop forward and the pipeline, on each
broker in one run, written as one table into docs/benchmarks.md (and bench/benchmarks_template.md, so run_all.py keeps
it) between the markers below.

    python bench/brokers.py                       # about 6-8 minutes on 2 cores
    python bench/brokers.py --pipeline-n 200 --forward-n 1000 --raw-n 5000 --out /tmp/b.md   # a quick look

1. tansu (embedded, memory://) alone: bench/pipeline.py with --raw-n, --n and --forward-n.
2. Then the 3-node Apache Kafka 4.4 cluster of deploy/kafka/local-cluster (RF 3, min.insync.replicas 2), with tansu
   stopped: the same command. The worker picks Kafka's profile itself (streams/broker_profile.py): idempotent
   producers, a 500 ms fetch wait, no takeover re-publish. One broker runs at a time, so neither pays for the other.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import BenchError, uptime_line

from pingan.streams.broker import EmbeddedBroker

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLUSTER = ROOT / "deploy" / "kafka" / "local-cluster"
BEGIN, END = "<!-- brokers:begin -->", "<!-- brokers:end -->"


def run_pipeline(name: str, bootstrap: str, pid: int | None, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{name}.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
    env.pop("BENCH_BROKER_PID", None)
    if pid is not None:
        env["BENCH_BROKER_PID"] = str(pid)
    cmd = [sys.executable, "bench/pipeline.py", "--n", str(args.pipeline_n), "--forward-n", str(args.forward_n),
           "--raw-n", str(args.raw_n), "--json", str(out)]
    print(f"\n=== {name}: {shlex.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    with (tmp / f"{name}.log").open("w") as log:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0 or not out.exists():
        raise BenchError(f"{name}: bench/pipeline.py failed ({code}); log {tmp / f'{name}.log'}")
    print(f"=== {name}: done in {time.monotonic() - started:.0f} s", flush=True)
    return dict(json.loads(out.read_text()), took_s=time.monotonic() - started)


def cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def render(results: dict[str, dict], cluster_s: float, command: str, load: tuple[str, str]) -> str:
    t, k = results["tansu"], results["kafka"]

    def row(label: str, get, fmt: str) -> str:  # type: ignore[no-untyped-def]
        a, b = get(t), get(k)
        ratio = f"{b / a:.2f}" if a and b else ""
        return f"| {label} | {cell(a, fmt)} | {cell(b, fmt)} | {ratio} |"

    pipe_n, fwd_n, raw_n = t["pipeline"]["n"], t["forward"]["n"], t["raw"]["n"]
    return "\n".join([
        BEGIN,
        "## Apache Kafka and tansu side by side: `bench/brokers.py`",
        "",
        f"- **Date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. **Command:** `{command}` (from the repository root).",
        "- **Brokers:** tansu 0.6.0 embedded (`memory://`, one process) and Apache Kafka 4.4.0, 3 KRaft nodes "
        "(broker+controller) on loopback from `deploy/kafka/local-cluster` (`-Xmx384m` each, C1 JIT), topics with "
        "replication factor 3 and `min.insync.replicas=2`; cluster up in "
        f"{cluster_s:.0f} s. One broker ran at a time, on the same 2-core machine.",
        "- **Clients:** on tansu the tansu profile (fetch wait 20 ms, idempotence off); on Kafka Kafka's "
        "(fetch wait 500 ms, idempotent producers, `acks=all` to 3 replicas), as `streams/broker_profile.py` chooses.",
        f"- **Load before / after:** `{load[0]}` / `{load[1]}`. The machine is shared with other engineers' runs.",
        "",
        "| measured | tansu | Apache Kafka (3 nodes) | Kafka ÷ tansu |",
        "|---|---|---|---|",
        row(f"raw kafka-python produce/s (acks=all, {raw_n:,.0f} × 300 B)", lambda r: r["raw"]["produce_rate"],
            ",.0f"),
        row("raw kafka-python consume/s", lambda r: r["raw"]["consume_rate"], ",.0f"),
        row("raw rate, in and out, msgs/s", lambda r: r["raw"]["rate"], ",.0f"),
        row(f"faust one-hop forward, msgs/s ({fwd_n:,.0f} × 300 B)", lambda r: r["forward"]["rate"], ",.0f"),
        row("forward latency p50 / burst, ms", lambda r: r["forward"]["p50_s"] * 1000, ",.0f"),
        row("forward latency p99 / burst, ms", lambda r: r["forward"]["p99_s"] * 1000, ",.0f"),
        row(f"pipeline, incidents/s ({pipe_n:,.0f} grade III fires at once → `notified`)",
            lambda r: r["pipeline"]["rate"], ",.1f"),
        row("pipeline latency p50, s (queueing: all arrive at once)", lambda r: r["pipeline"]["p50_s"], ",.1f"),
        row("pipeline latency p99, s", lambda r: r["pipeline"]["p99_s"], ",.1f"),
        row("worker CPU per incident, ms", lambda r: r["pipeline"]["cpu_worker_s"] * 1000 / r["pipeline"]["n"],
            ",.0f"),
        "",
        "What it says: the pipeline's rate is the worker's (Python, SQLite, three stages and the hash chain), not the "
        "broker's, on either broker; the raw and forward rows show what each broker costs the clients. Kafka's "
        "forward latency under a burst includes its replication to 3 nodes with `acks=all`.",
        END,
    ])


def splice(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pipeline-n", type=int, default=500)
    parser.add_argument("--forward-n", type=int, default=3000)
    parser.add_argument("--raw-n", type=int, default=20000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--template", default=str(BENCH / "benchmarks_template.md"),
                        help="also spliced here, so run_all.py keeps the section ('' to skip)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "bench/brokers.py", *(sys.argv[1:] if argv is None else argv)])
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-brokers-"))
    load_before = uptime_line()
    results: dict[str, dict] = {}
    try:
        with EmbeddedBroker(log_path=tmp / "tansu.log") as tansu:
            results["tansu"] = run_pipeline("tansu", tansu.bootstrap, tansu.pid, args, tmp)
        env = dict(os.environ, PINGAN_KAFKA_RUN_DIR=str(tmp / "kafka"), PYTHON=sys.executable)
        t0 = time.monotonic()
        up = subprocess.run([str(CLUSTER), "up", "3"], env=env, capture_output=True, text=True, timeout=300)
        if up.returncode != 0:
            raise BenchError(f"local-cluster up 3 failed: {up.stderr[-2000:]}")
        cluster_s = time.monotonic() - t0
        try:
            results["kafka"] = run_pipeline("kafka", up.stdout.strip().splitlines()[-1], None, args, tmp)
        finally:
            subprocess.run([str(CLUSTER), "down"], env=env, capture_output=True, timeout=120)
        section = render(results, cluster_s, command, (load_before, uptime_line()))
        print("\n" + section, flush=True)
        splice(Path(args.out), section)
        if args.template:
            splice(Path(args.template), section)
        (tmp / "results.json").write_text(json.dumps(results, default=str, indent=1))
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    except BenchError as exc:
        print(f"brokers: {exc}; kept {tmp}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

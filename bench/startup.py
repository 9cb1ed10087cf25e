"""Start-up and readiness (issue 15, part 4): how fast the CLI starts, how long `pingan up` takes to say "ready",
and whether the first report after "ready" is delivered as fast as the tenth.

Run by hand (pytest never collects it):

    python bench/startup.py              # about a minute
    python bench/startup.py --json PATH  # the figures for run_all.py

1. CLI wall time, median and max of --runs runs each: `pingan --help` through the installed console script (the
   entry point a user types; a pyenv shim in front of it adds its own start-up, so the script is called directly),
   and `pingan timeline NOPE` on an empty store (a command that does its work: settings, the store, one query).
2. `pingan up` in a temp dir on the embedded defaults (tansu, SQLite): seconds from the start to its "ready" line.
3. Then --reports grade IV fire reports over HTTP, one at a time: each is posted, and the next waits until it is
   delivered. The latency is POST -> the console `delivered` entry in the store (polled every 5 ms), so the first
   one, right after "ready", can be compared with the later ones.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import BenchError, Child, clean_env, free_port, machine_facts, uptime_line, wait_for, write_json


def cli_wall(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - started)
    return {"median_s": statistics.median(walls), "max_s": max(walls)}


def console_script() -> str:
    """The installed `pingan` script next to this interpreter (not a shim in front of it)."""
    script = Path(sys.executable).with_name("pingan")
    if script.exists():
        return str(script)
    found = shutil.which("pingan")
    if not found:
        raise BenchError("no `pingan` console script: python -m pip install -e .")
    return found


def delivered(db: Path, incident_id: str) -> bool:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT 1 FROM actions WHERE incident_id = ? AND kind = 'delivered' LIMIT 1",
                           (incident_id,)).fetchone()
    return row is not None


def up_and_reports(tmp: Path, reports: int) -> dict[str, object]:
    port = free_port()
    data = tmp / "data"
    env = clean_env(PINGAN_DATA_DIR=str(data), PINGAN_HTTP_PORT=str(port), PINGAN_METRICS_PORT="0")
    started = time.monotonic()
    up = Child("pingan up", [sys.executable, "-m", "pingan.cli.main", "up"], env, tmp / "up.log")
    try:
        wait_for(lambda: "pingan up: ready" in up.log_path.read_text(errors="replace"), 180, "the ready line",
                 interval_s=0.02, alive=up)
        ready_s = time.monotonic() - started
        token = json.loads((data / "intake-tokens.json").read_text())["api"]
        url = f"http://127.0.0.1:{port}"
        latencies = []
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            for i in range(reports):
                posted = time.perf_counter()
                response = client.post(url + "/v1/incidents", json={
                    "category": "accident_disaster", "subtype": "fire", "grade": "IV",
                    "title": f"startup bench fire {i}", "dedup_key": f"startup-bench-{i}"})
                if response.status_code != 202:
                    raise BenchError(f"POST answered {response.status_code}: {response.text}")
                incident_id = response.json()["id"]
                wait_for(lambda iid=incident_id: delivered(data / "pingan.db", iid), 60, f"report {i} delivered",
                         interval_s=0.005, alive=up)
                latencies.append(time.perf_counter() - posted)
        return {"ready_s": ready_s, "first_ms": latencies[0] * 1000, "tenth_ms": latencies[min(9, reports - 1)] * 1000,
                "median_ms": statistics.median(latencies) * 1000, "reports": reports}
    finally:
        up.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="CLI runs per command")
    parser.add_argument("--reports", type=int, default=12, help="reports sent one at a time after ready")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingan-bench-startup-") as name:
        tmp = Path(name)
        facts = machine_facts(tmp)
        env = clean_env(PINGAN_DATA_DIR=str(tmp / "cli-data"))
        script = console_script()
        help_wall = cli_wall([script, "--help"], env, args.runs)
        timeline_wall = cli_wall([script, "timeline", "NOPE"], env, args.runs)
        up = up_and_reports(tmp, args.reports)
    figures = {"machine": facts, "load": uptime_line(), "help": help_wall, "timeline": timeline_wall, "up": up}
    print(f"machine: {facts}\nload: {figures['load']}")
    print(f"pingan --help:          median {help_wall['median_s'] * 1000:.0f} ms, "
          f"max {help_wall['max_s'] * 1000:.0f} ms ({args.runs} runs, {script})")
    print(f"pingan timeline NOPE:   median {timeline_wall['median_s'] * 1000:.0f} ms, "
          f"max {timeline_wall['max_s'] * 1000:.0f} ms")
    print(f"pingan up -> ready:     {up['ready_s']:.1f} s")
    print(f"report -> delivered:    first after ready {up['first_ms']:.0f} ms, tenth {up['tenth_ms']:.0f} ms, "
          f"median of {up['reports']} {up['median_ms']:.0f} ms")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()

"""The two systems of bench/versus_alertmanager.py and the webhook receiver they both post to: Debian's Alertmanager
with its temp config, and `pingan up` with its temp plan set (the module docstring there says what and why)."""

import contextlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from common import BenchError, Child, clean_env, cpu_seconds, free_port, wait_for

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR

SECRET = "whsec-bench-versus-alertmanager"
PERSON = "zhou-haibo"  # in plans/directory/people.yaml
PLAN_ID = "bench-webhook"
ID_RE = re.compile(r"vs-[0-9a-f]{8}-[a-z0-9]+-\d+")
SYSTEMS = ("alertmanager", "pingan")


# ---- the webhook receiver ---------------------------------------------------------------------------------

@dataclass
class Receiver:
    port: int = 0
    arrivals: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {s: defaultdict(list)
                                                                                 for s in SYSTEMS})
    lock: threading.Lock = field(default_factory=threading.Lock)
    bad: list[str] = field(default_factory=list)

    def record(self, path: str, body: bytes, at: float) -> None:
        system = "alertmanager" if path.startswith("/am") else "pingan"
        doc = json.loads(body)
        if system == "alertmanager":
            ids = [a.get("labels", {}).get("bench_id", "") for a in doc.get("alerts", [])]
        else:
            found = ID_RE.search(doc.get("text", ""))
            ids = [found.group(0) if found else ""]
        with self.lock:
            for alert_id in ids:
                if alert_id:
                    self.arrivals[system][alert_id].append(at)
                else:
                    self.bad.append(f"{path}: {body[:200]!r}")

    def count(self, system: str, ids: list[str]) -> int:
        with self.lock:
            return sum(1 for i in ids if i in self.arrivals[system])


def serve(rx: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.monotonic()
            try:
                rx.record(self.path, body, at)
            except (ValueError, AttributeError) as exc:
                with rx.lock:
                    rx.bad.append(f"{self.path}: {exc!r}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    rx.port = int(httpd.server_address[1])
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


# ---- the two systems --------------------------------------------------------------------------------------

def alertmanager_binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        if found := shutil.which(name):
            return found
    raise BenchError("no Alertmanager: apt-get install prometheus-alertmanager")


def start_alertmanager(tmp: Path, rx: Receiver) -> tuple[Child, int, str]:
    config = {
        "route": {"receiver": "bench", "group_by": ["..."], "group_wait": "0s", "group_interval": "5m",
                  "repeat_interval": "4h"},
        "receivers": [{"name": "bench", "webhook_configs": [
            {"url": f"http://127.0.0.1:{rx.port}/am", "send_resolved": False}]}],
    }
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    binary = alertmanager_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    first = (version.stdout + version.stderr).splitlines()
    am = Child("alertmanager", [binary, f"--config.file={tmp / 'alertmanager.yml'}",
                                f"--storage.path={tmp / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--cluster.listen-address="], clean_env(), tmp / "alertmanager.log")
    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200
        return False

    wait_for(ready, 30, "Alertmanager's /-/ready", alive=am)
    return am, port, first[0] if first else "?"


def bench_plans(tmp: Path, rx: Receiver) -> Path:
    """The shipped directory with one webhook recipient, and one plan that sends it one webhook per incident."""
    plans_dir = tmp / "plans"
    shutil.copytree(PLANS_DIR / "directory", plans_dir / "directory")
    people_file = plans_dir / "directory" / "people.yaml"
    doc = yaml.safe_load(people_file.read_text(encoding="utf-8"))
    for person in doc["people"]:
        if person["id"] == PERSON:
            person["contacts"]["webhook"] = f"http://127.0.0.1:{rx.port}/pingan"
    people_file.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    levels = [{"grade": grade, "response_level": "测试响应", "notify": [{
        "id": "hook", "targets": [{"person": PERSON}], "channels": ["webhook"], "delay_min": 0,
        "template": {"zh": "{title}"}}]} for grade in ("I", "II", "III", "IV")]
    plan = {"id": PLAN_ID, "title": {"zh": "对比基准 Webhook 预案", "en": "Benchmark webhook plan"}, "version": 1,
            "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
            "approved_by": ["huang-liping"], "last_editor": PERSON,
            "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]}, "levels": levels}
    (plans_dir / f"{PLAN_ID}.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True, sort_keys=False),
                                               encoding="utf-8")
    if [p.id for p in load_plans(plans_dir).plans] != [PLAN_ID]:
        raise BenchError(f"the bench plan set in {plans_dir} does not load as one plan")
    return plans_dir


def start_pingan(tmp: Path, rx: Receiver, db_url: str | None = None) -> tuple[Child, int, str, float]:
    port = free_port()
    data = tmp / "data"
    env = clean_env(PINGAN_DATA_DIR=str(data), PINGAN_HTTP_PORT=str(port), PINGAN_METRICS_PORT="0",
                    PINGAN_PLANS_DIR=str(bench_plans(tmp, rx)), PINGAN_WEBHOOK_SECRET=SECRET,
                    PINGAN_INTAKE_RATE_PER_MINUTE="100000000")
    if db_url:
        env["PINGAN_DATABASE_URL"] = db_url  # else SQLite in the data dir
    started = time.monotonic()
    up = Child("pingan up", [sys.executable, "-m", "pingan.cli.main", "up"], env, tmp / "up.log")
    wait_for(lambda: "pingan up: ready" in up.log_path.read_text(errors="replace"), 300, "pingan up's ready line",
             interval_s=0.05, alive=up)
    token = json.loads((data / "intake-tokens.json").read_text())["alertmanager"]
    return up, port, token, time.monotonic() - started


def parts_cpu(pid: int) -> dict[str, float]:
    """CPU-seconds of `pingan up` (pid) and each of its descendants, by part: the worker, the api, the broker
    (tansu) and the supervisor itself; whatever else they start counts under "other"."""
    out: dict[str, float] = defaultdict(float)
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        part = ("supervisor" if p == pid else "worker" if "worker" in words else "api" if "api" in words
                else "broker" if any("tansu" in w for w in words) else "other")
        out[part] += cpu_seconds(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return dict(out)

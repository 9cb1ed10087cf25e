"""`pingan up`: the whole stack in one process tree, restarted part by part when a part dies, and the API also when
it is alive but no longer answers its health check (a blocked event loop answers nothing, yet never exits)."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pingan.settings import Settings

log = logging.getLogger(__name__)
# A worker whose broker died cannot commit or leave its group, and its stop can hang on that; the store has all its
# work, so it gets this long (a send in flight finishes) before SIGKILL. A send still unsettled then is settled by
# the next worker once PINGAN_SENDING_LEASE_S has passed since its claim.
WORKER_STOP_S = 5.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        from pingan.streams.process import die_with_parent

        log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        log_file.close()
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class HealthWatch:
    """When a part that is alive must be restarted: `failures` health checks in a row failed, counted once it has
    answered once or its start-up grace is over (a slow start is not a hang). Pure, so it is tested without one."""

    failures: int
    grace_s: float
    started_at: float = 0.0
    answered: bool = False
    failed_in_row: int = 0

    def started(self, now: float) -> None:
        self.started_at, self.answered, self.failed_in_row = now, False, 0

    def record(self, ok: bool, now: float) -> bool:
        """One check's result; True when the part should be restarted now."""
        if ok:
            self.answered, self.failed_in_row = True, 0
            return False
        if not self.answered and now - self.started_at < self.grace_s:
            return False
        self.failed_in_row += 1
        return self.failed_in_row >= self.failures


class HealthProbe:
    """Asks a URL every `interval_s` in a thread of its own (a hung part must not hold up the supervisor's loop), and
    sets `hung` once the watch says so; the supervisor restarts the part and calls `restarted`."""

    def __init__(self, url: str, interval_s: float, timeout_s: float, watch: HealthWatch) -> None:
        self.url, self.interval_s, self.timeout_s, self.watch = url, interval_s, timeout_s, watch
        self.hung = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # No proxy: the part is on this machine, whatever http_proxy says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def start(self) -> None:
        self.restarted()
        self._thread.start()

    def restarted(self) -> None:
        with self._lock:
            self.watch.started(time.monotonic())
            self.hung.clear()

    def stop(self) -> None:
        self._stop.set()

    def _check(self) -> bool:
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as response:
                return bool(response.status == 200)
        except (OSError, ValueError):  # refused, timed out, reset: all "did not answer"
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            ok = self._check()
            with self._lock:
                if not self.hung.is_set() and self.watch.record(ok, time.monotonic()):
                    self.hung.set()


def _health_url(settings: Settings) -> str:
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(settings.http_host, settings.http_host)
    return f"http://{host}:{settings.http_port}/healthz"


def announce_ready(url: str, out, started: float, stop: threading.Event) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Print one "ready" line the first time /readyz answers 200 (the worker holds its partitions and a heartbeat made
    the round trip): what a script or a person starting `pingan up` waits for before sending the first report."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _wait() -> None:
        while not stop.wait(0.1):
            try:
                with opener.open(url, timeout=2) as response:
                    if response.status == 200:
                        print(f"pingan up: ready    in {time.monotonic() - started:.1f} s ({url})", file=out,
                              flush=True)
                        return
            except (OSError, ValueError):
                pass  # 503 (urllib raises HTTPError, an OSError) or not listening yet

    thread = threading.Thread(target=_wait, name="ready-announcer", daemon=True)
    thread.start()
    return thread


def run_stack(settings: Settings, out=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    from pingan.streams.broker import EmbeddedBroker
    from pingan.streams.topics import ensure_topics

    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)

    broker: EmbeddedBroker | None = None
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker(log_path=logs / "broker.log")
        broker.start()
        bootstrap = broker.bootstrap
    ensure_topics(bootstrap, settings)
    # CLI commands (tail) find the embedded broker through this file.
    settings.broker_address_path.write_text(bootstrap + "\n")

    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINGAN_DATA_DIR=str(data_dir),
               PINGAN_METRICS_PORT=str(settings.metrics_port))  # the worker's; the API serves /metrics itself
    python = sys.executable
    children = [
        Child("worker", [python, "-m", "pingan.cli.main", "worker"], env, logs / "worker.log"),
        Child("api", [python, "-m", "pingan.cli.main", "api"], env, logs / "api.log"),
    ]
    for child in children:
        child.start()
    api = children[1]
    probe: HealthProbe | None = None
    if settings.supervisor_health_interval_s > 0:
        probe = HealthProbe(_health_url(settings), settings.supervisor_health_interval_s,
                            settings.supervisor_health_timeout_s,
                            HealthWatch(settings.supervisor_health_failures, settings.supervisor_health_grace_s))
        probe.start()
    print(f"pingan up: broker   {bootstrap}" + (" (embedded tansu)" if broker else " (external)"), file=out)
    print(f"pingan up: http     http://{settings.http_host}:{settings.http_port}", file=out)
    worker_metrics = f"http://{settings.http_host}:{settings.metrics_port}/metrics" if settings.metrics_port else "off"
    print(f"pingan up: metrics  http://{settings.http_host}:{settings.http_port}/metrics (api), "
          f"{worker_metrics} (worker)", file=out)
    print(f"pingan up: database {settings.resolved_database_url}", file=out)
    print(f"pingan up: console  {settings.console_sink_path.resolve()}", file=out)
    print(f"pingan up: logs     {logs}", file=out)
    print("pingan up: Ctrl-C stops everything", file=out, flush=True)
    announcing = threading.Event()  # set: stop waiting for "ready"
    announce_ready(_health_url(settings).removesuffix("/healthz") + "/readyz", out, started, announcing)

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
            if broker is not None and not broker.is_alive():
                print("pingan up: broker died; stopping the worker, restarting the broker, then a new worker "
                      "(which re-publishes)", file=out, flush=True)
                # The worker goes before the broker comes back. Left running, it reconnected to the new broker by
                # itself, joined the new consumer group and relayed there: the new worker's join then took two
                # rebalances, and the backlog went out two or three times (issue 14, finding 8).
                old = children[0].proc
                if old is not None and old.poll() is None:
                    old.send_signal(signal.SIGTERM)
                # Its successor starts at once: its imports (1-8 s, the longer under load) overlap the old one's
                # stop, and it waits for the broker by itself (streams/broker_profile.py). Its first assignment
                # re-publishes everything accepted but unfinished, once (streams/takeover.py).
                children[0].start()
                if old is not None:
                    try:
                        old.wait(WORKER_STOP_S)
                    except subprocess.TimeoutExpired:
                        old.kill()
                        old.wait()
                broker.restart()
                ensure_topics(bootstrap, settings)
            if probe is not None and probe.hung.is_set() and not stopping:
                api.restarts += 1
                message = (f"api did not answer {probe.url} {settings.supervisor_health_failures} times in a row "
                           f"(every {settings.supervisor_health_interval_s:g} s, timeout "
                           f"{settings.supervisor_health_timeout_s:g} s); restart #{api.restarts}")
                log.warning(message)
                print(f"pingan up: {message}", file=out, flush=True)
                api.stop(timeout_s=5)  # a blocked event loop never runs its SIGTERM handler: SIGKILL after 5 s
                api.start()
                probe.restarted()
            for child in children:
                if not child.alive() and not stopping:
                    code = child.proc.returncode if child.proc else None
                    child.restarts += 1
                    print(f"pingan up: {child.name} exited ({code}); restart #{child.restarts}",
                          file=out, flush=True)
                    time.sleep(min(child.restarts, 5))
                    child.start()
                    if child is api and probe is not None:
                        probe.restarted()
    finally:
        announcing.set()
        if probe is not None:
            probe.stop()
        for child in reversed(children):
            child.stop()
        if broker is not None:
            broker.stop()
        print("pingan up: stopped", file=out, flush=True)

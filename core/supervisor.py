"""`pingan up`: the whole stack in one process tree, restarted part by part when a part dies."""

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pingan.settings import Settings

log = logging.getLogger(__name__)


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


def run_stack(settings: Settings, out=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    from pingan.streams.broker import EmbeddedBroker
    from pingan.streams.topics import ensure_topics

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
    print(f"pingan up: broker   {bootstrap}" + (" (embedded tansu)" if broker else " (external)"), file=out)
    print(f"pingan up: http     http://{settings.http_host}:{settings.http_port}", file=out)
    worker_metrics = f"http://{settings.http_host}:{settings.metrics_port}/metrics" if settings.metrics_port else "off"
    print(f"pingan up: metrics  http://{settings.http_host}:{settings.http_port}/metrics (api), "
          f"{worker_metrics} (worker)", file=out)
    print(f"pingan up: database {settings.resolved_database_url}", file=out)
    print(f"pingan up: console  {settings.console_sink_path.resolve()}", file=out)
    print(f"pingan up: logs     {logs}", file=out)
    print("pingan up: Ctrl-C stops everything", file=out, flush=True)

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
                print("pingan up: broker died; restarting it, then the worker (which re-publishes)",
                      file=out, flush=True)
                broker.restart()
                ensure_topics(bootstrap, settings)
                # The worker's start-up recovery re-publishes everything accepted but unfinished.
                children[0].stop()
                children[0].start()
            for child in children:
                if not child.alive() and not stopping:
                    code = child.proc.returncode if child.proc else None
                    child.restarts += 1
                    print(f"pingan up: {child.name} exited ({code}); restart #{child.restarts}",
                          file=out, flush=True)
                    time.sleep(min(child.restarts, 5))
                    child.start()
    finally:
        for child in reversed(children):
            child.stop()
        if broker is not None:
            broker.stop()
        print("pingan up: stopped", file=out, flush=True)

"""Shared by the failure tests on Kafka: a rig over tests/integration/two_workers_rig.py (its plan: one console line
per incident, the incident id in the text) pointed at the cluster, a steady loader, and the counts every failure test
prints: accepted, notified, duplicates, lost."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from pingan.handlers.channels.console import read_sink
from pingan.plans import PLANS_DIR
from pingan.store.repository import Store
from tests.fixtures.stack import Proc, pingan_env
from tests.integration.two_workers_rig import LEASE_S, PLAN_ID, SCALE, Rig, Worker, plan_yaml, report


def make_rig(tmp_path: Path, bootstrap: str) -> Iterator[Rig]:
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "directory").symlink_to(PLANS_DIR / "directory", target_is_directory=True)
    (plans_dir / f"{PLAN_ID}.yaml").write_text(plan_yaml(), encoding="utf-8")
    (tmp_path / "shared").mkdir()
    sink = tmp_path / "shared" / "console.log"
    db_url = f"sqlite:///{tmp_path / 'shared' / 'pingan.db'}"
    # The heartbeat is off: it is the API's, and these rigs run workers alone.
    env = pingan_env(tmp_path / "shared", KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_PLANS_DIR=str(plans_dir), PINGAN_CONSOLE_SINK=str(sink),
                     PINGAN_ESCALATION_TIME_SCALE=str(SCALE), PINGAN_METRICS_PORT="0",
                     PINGAN_SENDING_LEASE_S=str(LEASE_S))
    store = Store(db_url)
    yield Rig(env, store, sink)
    store.close()


def start_worker(rig: Rig, factory: Callable[[dict[str, str]], Proc], name: str) -> Worker:
    """Start a worker and see one incident through it, so its consumer group has joined."""
    worker = rig.start(factory, name)
    warm = rig.accept([report("预热", f"warm-up-{name}")])[0]
    rig.wait(lambda: rig.kinds("notified")[warm] == 1, 120, f"{name}'s warm-up incident to be notified")
    return worker


def workarounds_fired(log: str) -> dict[str, int]:
    """How often each tansu workaround acted in a worker's log: the evidence for docs/architecture.md's table."""
    return {"gap fill": log.count("the broker skipped offsets"),
            "sweep": log.count("item(s) the consumer passed without doing"),
            "takeover re-publish": log.count("] resume {")}


def notified_total(rig: Rig) -> int:
    """Incidents with a `notified` entry, all of them: one cheap query. The progress loops ask every second, and
    counts() below (every log entry grouped, the whole console sink parsed) took CPU the worker needed."""
    return rig.count("SELECT COUNT(DISTINCT incident_id) FROM actions WHERE kind = 'notified'")


def wait_all_notified(rig: Rig, base: int, ids: list[str], what: str) -> None:
    """Until base + len(ids) incidents are notified (base: those notified before ids were accepted)."""
    rig.progress(lambda: notified_total(rig), base + len(ids), 120, what)


def counts(rig: Rig, ids: list[str]) -> dict[str, int]:
    """accepted: in the store's outbox; notified: with a `notified` entry; duplicates: incidents notified more than
    once or whose console line was written more than once; lost: accepted and never notified."""
    wanted = set(ids)
    notified = rig.kinds("notified")
    keys = {r.idempotency_key: r.incident_id for r in rig.sql("SELECT incident_id, idempotency_key FROM notifications")
            if r.incident_id in wanted}
    lines = Counter(keys[r["idempotency_key"]] for r in read_sink(rig.sink) if r["idempotency_key"] in keys)
    twice = {i for i in wanted if notified[i] > 1} | {i for i, c in lines.items() if c > 1}
    return {"accepted": len(wanted), "notified": sum(1 for i in wanted if notified[i]),
            "duplicates": len(twice), "lost": sum(1 for i in wanted if not notified[i])}


class Loader(threading.Thread):
    """Accepts incidents into the store's outbox at a steady rate (what the API does per request), until stopped
    or `total` are in."""

    def __init__(self, rig: Rig, rate_per_s: float, total: int | None = None, tag: str = "load",
                 batch: int = 5) -> None:
        super().__init__(name=f"loader-{tag}", daemon=True)
        self.rig, self.rate, self.total, self.tag, self.batch = rig, rate_per_s, total, tag, batch
        self.ids: list[str] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> list[str]:
        self._stop_event.set()
        self.join(30)
        if self.error is not None:
            raise self.error
        return self.ids

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            while not self._stop_event.is_set() and (self.total is None or len(self.ids) < self.total):
                n = len(self.ids)
                size = self.batch if self.total is None else min(self.batch, self.total - n)
                self.ids += self.rig.accept([report(f"{self.tag} {i}", f"{self.tag}-{i}") for i in range(n, n + size)])
                # Paced by the clock, not by sleeps alone, so a slow commit does not lower the rate.
                delay = t0 + len(self.ids) / self.rate - time.monotonic()
                if delay > 0:
                    self._stop_event.wait(delay)
        except BaseException as exc:  # noqa: BLE001 - re-raised in stop()
            self.error = exc

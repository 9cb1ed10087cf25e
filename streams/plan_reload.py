"""Hot reload: a running worker picks up changed plans; a bad set is refused whole and the last good one serves."""

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pingan import metrics
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanLoadError

log = logging.getLogger(__name__)


def fingerprint(directory: Path) -> str:
    """Changes when any YAML file under the plans directory is added, removed or edited."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(directory)}|{stat.st_mtime_ns}|{stat.st_size}\n".encode())
    return digest.hexdigest()


def _newest_mtime_ns(directory: Path) -> int:
    return max((p.stat().st_mtime_ns for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()),
               default=0)


class PlanWatcher(threading.Thread):
    """Polls the plans directory (a file watch that works on every filesystem, NFS included)."""

    def __init__(self, directory: Path, on_reload: Callable[[PlanSet], None], interval_s: float = 1.0,
                 on_failure: Callable[[PlanLoadError], None] | None = None, loaded_since_ns: int | None = None) -> None:
        super().__init__(name="plan-watcher", daemon=True)
        self.directory = directory
        self.on_reload = on_reload
        self.on_failure = on_failure
        self.interval_s = interval_s
        self._seen = fingerprint(directory)
        # A file changed between the serving set's load (`loaded_since_ns`, taken just before it) and this watcher's
        # first look would otherwise be its baseline, never reloaded: the first check reloads instead.
        if loaded_since_ns is not None and _newest_mtime_ns(directory) >= loaded_since_ns:
            self._seen = ""
        self._stop_event = threading.Event()
        self.reloads = 0
        self.failures = 0

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.check()

    def check(self) -> bool:
        """Reload if anything changed; True when a new set was taken."""
        try:
            current = fingerprint(self.directory)
        except OSError as exc:
            log.error("plans directory unreadable: %s", exc)
            return False
        if current == self._seen:
            return False
        self._seen = current
        try:
            plans = load_plans(self.directory)
        except PlanLoadError as exc:
            self.failures += 1
            metrics.plan_reload(False)
            log.error("plan reload refused; the last good set keeps serving:\n%s", exc)
            if self.on_failure:
                self.on_failure(exc)
            return False
        self.reloads += 1
        metrics.plan_reload(True)
        log.info("plans reloaded: %d plans (%s)", len(plans),
                 ", ".join(f"{p.id}@v{p.version}" for p in plans))
        self.on_reload(plans)
        return True

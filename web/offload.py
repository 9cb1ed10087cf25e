"""CPU-heavy intake parsing off the event loop, each parse under a CPU budget.

One CAP message parsed on the event loop once stopped the whole API (hotline, health check) for minutes: while a
coroutine computes, no other request is even read. Parsing CAP and Alertmanager bodies, and large JSON bodies, runs
here instead, in a small pool of its own threads (not the one FastAPI's sync routes and /healthz use, so a queue of
big bodies never delays them), each under `cpu_budget` (schemas/adapters/limits.py): the adapters' loops stop the
parse once its thread has used the budget. The pool's queue is bounded too: past it, 503 with Retry-After, rather
than holding megabytes of bodies while each waits its turn.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import HTTPException

from pingan import metrics
from pingan.schemas.adapters.limits import cpu_budget

log = logging.getLogger("pingan.intake")
T = TypeVar("T")

WORKERS = 2  # parses at once: the API's other work keeps the rest of a small machine
MAX_WAITING = 32  # parses queued or running; a body waits at most this many budgets
OFFLOAD_BYTES = 32 * 1024  # smaller JSON bodies validate in well under a millisecond: a thread hop costs more


class ParsePool:
    def __init__(self, cpu_budget_s: float, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self.cpu_budget_s = cpu_budget_s
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="intake-parse")
        self._waiting = 0
        self._lock = threading.Lock()

    async def run(self, source: str, parse: Callable[[bytes], T], body: bytes) -> T:
        """parse(body) in the pool under the CPU budget; what it raises is raised here."""
        with self._lock:
            if self._waiting >= self.max_waiting:
                log.warning("intake %s: 503 %d parses already waiting", source, self._waiting)
                metrics.intake(source, "unavailable")
                raise HTTPException(503, f"{source}: too many messages are being read right now; retry",
                                    headers={"Retry-After": "5"})
            self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._budgeted, parse, body)
        finally:
            with self._lock:
                self._waiting -= 1

    def _budgeted(self, parse: Callable[[bytes], T], body: bytes) -> T:
        with cpu_budget(self.cpu_budget_s):
            return parse(body)

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

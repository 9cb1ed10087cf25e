"""The store side of the intake bench: the database's facts, Store.accept() ceilings in-process, and the run's
outbox rows (counted for the check, deleted afterwards).

Used by intake.py (it runs as `python bench/intake.py`, so this is imported as `intake_store`).
"""

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common import BenchError, lib_version, percentile
from sqlalchemy import delete, func, or_, select, text

from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.store.tables import outbox

MakeItem = Callable[[int], IncidentReport | IntakeItem]


def database_facts(store: Store) -> str:
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            server = conn.scalar(text("SHOW server_version"))
            sync = conn.scalar(text("SHOW synchronous_commit"))
            fsync = conn.scalar(text("SHOW fsync"))
            return f"PostgreSQL {server} (synchronous_commit={sync}, fsync={fsync}), psycopg {lib_version('psycopg')}"
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        return f"SQLite {sqlite3.sqlite_version} (journal_mode={journal}, synchronous={sync}; 2 = FULL)"


# ---- in-process ceilings ----------------------------------------------------------------------------------

@dataclass
class RawResult:
    n: int
    elapsed_s: float
    latencies: list[float]
    cpu_s: float  # this process's CPU meanwhile (all threads)

    @property
    def rate(self) -> float:
        return self.n / self.elapsed_s

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


def raw_accept(store: Store, topic: str, make_item: MakeItem, duration_s: float) -> RawResult:
    """Store.accept() in a loop on one thread, each item new: the commit ceiling of one serial writer."""
    latencies = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + duration_s
    i = 0
    while time.perf_counter() < deadline:
        item = make_item(i)
        t0 = time.perf_counter()
        store.accept(item, topic)
        latencies.append(time.perf_counter() - t0)
        i += 1
    elapsed = time.perf_counter() - start
    latencies.sort()
    return RawResult(i, elapsed, latencies, time.process_time() - cpu0)


def raw_accept_threads(store: Store, topic: str, make_item: MakeItem, duration_s: float,
                       threads: int) -> RawResult:
    """The same from `threads` threads at once: what the database gives writers that overlap."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + duration_s

    def loop() -> None:
        mine = []
        try:
            while time.perf_counter() < deadline:
                item = make_item(next(counter))
                t0 = time.perf_counter()
                store.accept(item, topic)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, name=f"bench-accept-{n}", daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise BenchError(f"accept() from {threads} threads failed: {errors[0]!r}")
    latencies.sort()
    return RawResult(len(latencies), elapsed, latencies, time.process_time() - cpu0)


def cpu_rate(fn: Callable[[int], object], duration_s: float = 2.0) -> float:
    """Calls fn(i) for duration_s in-process (no I/O): the CPU ceiling of that step on one core."""
    start = time.perf_counter()
    deadline = start + duration_s
    i = 0
    while time.perf_counter() < deadline:
        fn(i)
        i += 1
    return i / (time.perf_counter() - start)


def bench_rows(store: Store, topic_list: list[str], run: str) -> int:
    """The run's rows only: the api may write others of its own to the outbox (heartbeats)."""
    mark = f"%bench-{run}-%"
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.topic.in_(topic_list), or_(outbox.c.payload.like(mark), outbox.c.source_key.like(mark)))) or 0)


def delete_bench_rows(store: Store, topic_list: list[str]) -> int:
    with store.engine.begin() as conn:
        return int(conn.execute(delete(outbox).where(outbox.c.topic.in_(topic_list))).rowcount or 0)


"""Group commit for intake: one writer thread commits the items of every request waiting at that moment in one
transaction, and then answers each request with its own results.

Why: each intake request must be durable before it is answered, and SQLite has one writer. A commit per request on
the event loop stalls every other connection while it waits for the lock and the fsync; a commit per request in a
thread pool makes the threads queue on the lock (SQLite's busy handler sleeps up to 100 ms per retry). One writer
that takes whatever has queued up pays one fsync for a whole surge of hotline reports, and the event loop keeps
parsing and validating the next requests meanwhile. Each request's items stay all or nothing (they are in one
transaction with others'); a failed transaction fails every request in it, and each answers 503, so nothing
accepted is ever lost and nothing unanswered is ever kept.
"""

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.store.outbox import Accepted
from pingan.store.repository import Store

log = logging.getLogger(__name__)

MAX_ITEMS_PER_COMMIT = 500  # bounds one transaction's time, so the first request in a burst is not kept long


@dataclass
class _Pending:
    items: Sequence[IntakeItem | IncidentReport]
    future: concurrent.futures.Future[list[Accepted]]


class GroupCommitter:
    def __init__(self, store: Store, raw_topic: str) -> None:
        self.store = store
        self.raw_topic = raw_topic
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.commits = 0
        self.requests = 0

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="intake-group-commit", daemon=True)
                self._thread.start()

    def submit(self, items: Sequence[IntakeItem | IncidentReport]) -> concurrent.futures.Future[list[Accepted]]:
        self._ensure_started()
        future: concurrent.futures.Future[list[Accepted]] = concurrent.futures.Future()
        self._queue.put(_Pending(items, future))
        return future

    async def commit(self, items: Sequence[IntakeItem | IncidentReport]) -> list[Accepted]:
        """The request's own results once they are durable; raises what the store raised."""
        return await asyncio.wrap_future(self.submit(items))

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size = [first], len(first.items)
            while size < MAX_ITEMS_PER_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
                size += len(more.items)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        items = [item for pending in batch for item in pending.items]
        try:
            accepted = self.store.accept_many(items, self.raw_topic)
        except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer, whatever happened
            for pending in batch:
                pending.future.set_exception(exc)
            return
        self.commits += 1
        self.requests += len(batch)
        start = 0
        for pending in batch:
            end = start + len(pending.items)
            pending.future.set_result(accepted[start:end])
            start = end

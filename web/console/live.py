"""Live boards: server-sent events from the command-chain log.

Every log entry is written by some process (the worker, the API, the CLI) into the store, so the store is where the
API process learns of them: one poller per process reads entries after the last seq it saw, every POLL_S, in a
thread (a store read must never block the event loop), and fans each batch out to the connected boards through one
asyncio queue per board. The poller runs only while a board is connected. A board that falls behind loses events
(its queue is bounded) and is told to reload its rows, which is all an event makes it do anyway.

An event stream never ends by itself, and uvicorn waits for open responses before it exits; so the broadcaster
chains itself in front of the server's SIGTERM/SIGINT handler and ends every stream at once when asked to stop
(browsers reconnect to the next process by themselves)."""

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pingan.store.console import LogEntry, entries_after, grades_of, latest_seq
from pingan.store.repository import Store

log = logging.getLogger(__name__)

POLL_S = 0.2
KEEPALIVE_S = 15.0
QUEUE_SIZE = 256
ALERT_GRADES = frozenset({"I", "II"})
CLOSE: dict[str, Any] = {"close": True}  # put in every queue when the process stops: the stream ends


@dataclass(eq=False)  # compared and hashed by identity: each connection is its own board
class Board:
    """One connected board: what it may see, and its queue."""

    visible: Callable[[list[str]], bool]  # the incident's departments -> whether this person sees it
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


class Broadcaster:
    def __init__(self, store: Store, departments: Callable[[list[str]], dict[str, list[str]]],
                 poll_s: float = POLL_S) -> None:
        """`departments`: the departments each incident's active plan level involves (read in a thread)."""
        self.store = store
        self.departments = departments
        self.poll_s = poll_s
        self.boards: set[Board] = set()
        self.opened: set[str] = set()  # incidents someone has opened in the console: they alert no more
        self._task: asyncio.Task[None] | None = None
        self._seq: int | None = None
        self.closing = False
        self._hooked = False
        self._started = asyncio.Event()  # set once the poller knows where the log stands

    def subscribe(self, visible: Callable[[list[str]], bool]) -> Board:
        board = Board(visible)
        if self.closing:
            board.queue.put_nowait(CLOSE)
            return board
        self._hook_signals()
        self.boards.add(board)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return board

    async def started(self) -> None:
        await self._started.wait()

    def close_all(self) -> None:
        """End every open stream (the process is stopping)."""
        self.closing = True
        self._started.set()  # a stream still waiting to say hello goes on to read its CLOSE
        for board in list(self.boards):
            with contextlib.suppress(asyncio.QueueEmpty):
                while board.queue.full():  # the news it has not read yet no longer matters
                    board.queue.get_nowait()
            board.queue.put_nowait(CLOSE)

    def _hook_signals(self) -> None:
        if self._hooked:
            return
        self._hooked = True
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                previous = signal.getsignal(sig)

                def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                    loop.call_soon_threadsafe(self.close_all)
                    if callable(previous):
                        previous(signum, frame)

                signal.signal(sig, handler)
            except ValueError:  # not the main thread (a test client's portal): nobody to wait for anyway
                return

    def unsubscribe(self, board: Board) -> None:
        self.boards.discard(board)
        if not self.boards and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _poll(self) -> None:
        while self.boards:
            try:
                if self._seq is None:
                    self._seq = await asyncio.to_thread(latest_seq, self.store.engine)
                    self._started.set()
                    await asyncio.to_thread(self.departments, [])  # loads the plan set now, not at the first news
                entries = await asyncio.to_thread(entries_after, self.store.engine, self._seq)
                if entries:
                    self._seq = entries[-1].seq
                    await self._fan_out(entries)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store was briefly away: keep polling, the boards reload when it is back
                log.exception("console: reading new log entries failed")
            await asyncio.sleep(self.poll_s)

    async def _fan_out(self, entries: list[LogEntry]) -> None:
        ids = sorted({e.incident_id for e in entries if e.incident_id.startswith("INC-")})
        grades, involved = await asyncio.to_thread(self._read, ids) if ids else ({}, {})
        shift = any(e.kind == "shift_handover" for e in entries)
        for board in list(self.boards):
            seen = [i for i in ids if board.visible(involved.get(i, []))]
            if not seen and not shift:
                continue
            alert = [i for i in seen if _alerting(grades.get(i), i, self.opened)]
            event = {"incidents": seen, "kinds": sorted({e.kind for e in entries if e.incident_id in seen}),
                     "alert": alert, "seq": entries[-1].seq}
            self._offer(board, event)

    def _read(self, ids: list[str]) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
        return grades_of(self.store.engine, ids), self.departments(ids)

    def _offer(self, board: Board, event: dict[str, Any]) -> None:
        try:
            board.queue.put_nowait(event)
        except asyncio.QueueFull:
            if self.closing:
                return
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    board.queue.get_nowait()
            board.queue.put_nowait({"incidents": [], "kinds": ["reload"], "alert": [], "seq": self._seq})

    def alerting(self, incident_id: str, grade: str, state: str) -> bool:
        return _alerting((grade, state), incident_id, self.opened)


def _alerting(grade_state: tuple[str, str] | None, incident_id: str, opened: set[str]) -> bool:
    """A grade I or II incident alerts until someone opens it (or acknowledges it, which needs opening too)."""
    if grade_state is None:
        return False
    grade, state = grade_state
    return grade in ALERT_GRADES and state == "open" and incident_id not in opened


async def stream(broadcaster: Broadcaster, visible: Callable[[list[str]], bool],
                 disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """The text/event-stream of one board: a `hello`, then an `update` per batch, and a comment now and then so
    proxies keep the connection open."""
    board = broadcaster.subscribe(visible)
    if broadcaster.closing:
        return
    try:
        # `hello` only once the poller has read where the log stands: the board loads its rows on `hello`, so every
        # entry after that read reaches it as an update, and none falls between the two.
        await broadcaster.started()
        yield "retry: 1000\nevent: hello\ndata: {}\n\n"
        while True:
            try:
                event = await asyncio.wait_for(board.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await disconnected():
                    return
                yield ": keepalive\n\n"
                continue
            if event is CLOSE:
                return
            yield f"event: update\ndata: {json.dumps(event)}\n\n"
    finally:
        broadcaster.unsubscribe(board)

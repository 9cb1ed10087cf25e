"""The intake bench's load: request bodies, each a new event, and the HTTP clients that POST them.

Used by intake.py (it runs as `python bench/intake.py`, so this is imported as `intake_load`).
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from common import BenchError, Child, CpuMeter, RawHttp, percentile

TOKEN = "bench"
WARMUP_S = 1.0
REQUEST_TIMEOUT_S = 30.0
IDENTIFIER = re.compile(rb"<identifier>\s*([^<\s]+)\s*</identifier>")


class Termination:
    """SIGTERM: outside the event loop it raises KeyboardInterrupt; during a load it cancels the load task, as
    asyncio.run does for Ctrl-C, and the task then raises KeyboardInterrupt once its clients are closed."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.task: asyncio.Task[LoadResult] | None = None

    def handler(self, signum: int, _frame: object) -> None:
        self.signal = signal.Signals(signum).name
        task = self.task
        if task is not None and not task.done():
            task.get_loop().call_soon_threadsafe(task.cancel)
        else:
            raise KeyboardInterrupt(self.signal)

    def check(self) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt(self.signal)


TERMINATION = Termination()


# ---- request bodies ---------------------------------------------------------------------------------------

def json_body_factory(run: str) -> "BodyFactory":
    template = json.dumps({
        "category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "仓库起火 bench",
        "description": "bench: intake throughput", "location": {"area_code": "440305", "area_name": "南山区"},
        "dedup_key": "@@KEY@@",
    }, ensure_ascii=False).encode()

    def make(i: int) -> bytes:
        return template.replace(b"@@KEY@@", f"bench-{run}-{i}".encode())

    return BodyFactory("application/json", make)


def cap_body_factory(sample: bytes, run: str) -> "BodyFactory":
    match = IDENTIFIER.search(sample)
    if match is None:
        raise BenchError("the CAP sample has no <identifier>")
    head, original, tail = sample[:match.start(1)], match.group(1), sample[match.end(1):]

    def make(i: int) -> bytes:
        return head + original + f"-bench-{run}-{i}".encode() + tail

    return BodyFactory("application/xml", make)


@dataclass
class BodyFactory:
    content_type: str
    make: Callable[[int], bytes]

    def __call__(self, i: int) -> bytes:
        return self.make(i)


# ---- HTTP load --------------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    ok: int = 0
    bad: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    warmup_ok: int = 0  # 2xx answers during the warm-up before it (not in the figures; they are in the outbox)
    warmup_errors: int = 0  # requests of the warm-up that got no answer

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


async def drive(url: str, path: str, bodies: BodyFactory, counter: "itertools.count[int]", duration_s: float,
                concurrency: int, client_kind: str) -> LoadResult:
    """`concurrency` clients POST new events for `duration_s`; each client waits for its answer before the next."""
    TERMINATION.task = asyncio.current_task()  # type: ignore[assignment]
    try:
        return await _drive(url, path, bodies, counter, duration_s, concurrency, client_kind)
    except asyncio.CancelledError:
        TERMINATION.check()
        raise
    finally:
        TERMINATION.task = None


async def _drive(url: str, path: str, bodies: BodyFactory, counter: "itertools.count[int]", duration_s: float,
                 concurrency: int, client_kind: str) -> LoadResult:
    result = LoadResult()
    parsed = httpx.URL(url)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": bodies.content_type}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with contextlib.AsyncExitStack() as stack:
        if client_kind == "httpx":
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S))

            async def httpx_post(body: bytes) -> int:
                return (await client.post(path, content=body, headers=headers)).status_code

            posts = [httpx_post] * concurrency
        else:
            connections = [RawHttp(parsed.host, parsed.port or 80, path, headers) for _ in range(concurrency)]
            for connection in connections:
                stack.push_async_callback(connection.close)

            def raw_post(connection: RawHttp) -> Callable[[bytes], Awaitable[int]]:
                async def post(body: bytes) -> int:
                    return (await connection.post(body))[0]
                return post

            posts = [raw_post(c) for c in connections]
        start = time.perf_counter()
        deadline = start + duration_s

        async def one_client(post: Callable[[bytes], Awaitable[int]]) -> None:
            while time.perf_counter() < deadline:
                body = bodies(next(counter))
                sent = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        status = await post(body)
                except (httpx.HTTPError, OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    result.errors += 1
                    kind = type(exc).__name__
                    result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                    continue
                took = time.perf_counter() - sent
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    result.ok += 1
                    result.latencies.append(took)
                else:
                    result.bad += 1

        await asyncio.gather(*(one_client(post) for post in posts))
        result.elapsed_s = time.perf_counter() - start
    result.latencies.sort()
    return result


def run_endpoint(name: str, url: str, path: str, bodies: BodyFactory, args: argparse.Namespace,
                 api: Child) -> tuple[LoadResult, CpuMeter]:
    duration_s, concurrency = args.duration, args.concurrency
    counter = itertools.count()
    warm = asyncio.run(drive(url, path, bodies, counter, min(WARMUP_S, duration_s), concurrency, args.client))
    TERMINATION.check()
    api.check_alive()
    if warm.ok == 0:
        raise BenchError(f"{name}: no 2xx answer during the warm-up (statuses {warm.statuses}, errors "
                         f"{warm.error_kinds})\n{api.log_tail()}")
    meter = CpuMeter(api.pid)
    meter.start()
    result = asyncio.run(drive(url, path, bodies, counter, duration_s, concurrency, args.client))
    TERMINATION.check()
    meter.stop()
    api.check_alive()
    result.statuses = dict(sorted(result.statuses.items()))
    result.warmup_ok = warm.ok
    result.warmup_errors = warm.errors
    print(f"{name}: {result.ok} x 2xx, {result.bad} non-2xx {dict(result.statuses)}, {result.errors} errors in "
          f"{result.elapsed_s:.1f} s = {result.rate:,.0f} req/s; p50 {result.p50_ms:.1f} ms, "
          f"p99 {result.p99_ms:.1f} ms (warm-up: {warm.ok} x 2xx)", flush=True)
    return result, meter


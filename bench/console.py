"""The duty console under load: the board with 500 open incidents, and one live update reaching 50 boards.

    python bench/console.py                       # 500 incidents, 50 boards, 20 renders
    python bench/console.py --incidents 200 --boards 20 --json /tmp/console.json

1. A fresh SQLite store gets N open incidents through the real triage and response stages (every one planned, with
   its notifications and escalation deadlines, as the worker would leave them), of all four grades.
2. Board render, server-side: GET /console/ in process (ASGI, no network) as a signed-in duty officer, timed over
   --renders requests after one warm-up (wall time inside the app, and the process's CPU time a request, which
   other processes on a busy machine do not inflate); also the rows fragment a live board fetches after each event.
3. Live fan-out: the API runs under uvicorn in a child process (the console's poller reads the store every 200 ms);
   --boards clients hold /console/events open; this process then writes one log entry to the store, as a worker
   would, and measures when each board receives its `update` event, and when it has fetched its new rows (what
   the board's script does next; the person sees the change then).

The signed-in person is given by overriding web.auth.principal (sessions are measured elsewhere); everything else
is the real code path."""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clean_env, free_port, percentile, wait_for, write_json  # noqa: E402

GRADES = ["I", "II", "III", "IV"]
KINDS = [("accident_disaster", "fire", None), ("natural_disaster", "meteorological", "typhoon"),
         ("public_health", "infectious_disease", None), ("accident_disaster", "hazardous_chemicals", None)]


def seed(url: str, n: int) -> float:
    """N open incidents through triage and the response; returns the seconds it took."""
    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR
    from pingan.schemas.events import IntakeItem, RawEvent
    from pingan.schemas.incident import IncidentReport
    from pingan.store.repository import Store
    from pingan.streams.stages import response_stage, triage_stage

    plans, store, started = load_plans(PLANS_DIR), Store(url), time.monotonic()
    for i in range(n):
        category, subtype, hazard = KINDS[i % len(KINDS)]
        store.accept(IntakeItem(report=IncidentReport(
            category=category, subtype=subtype, hazard=hazard, grade=GRADES[i % 4], title=f"压测事件 {i}",
            dedup_key=f"bench-console-{i}", location={"area_name": "唐家"})), "raw")
        for row in store.unpublished():
            store.mark_published([row.event_id])
            for event in triage_stage(store, RawEvent.model_validate_json(row.payload),
                                      timedelta(hours=1)).incident_events:
                response_stage(store, plans, event, time_scale=1.0)
    store.close()
    return time.monotonic() - started


SERVER_MS: list[float] = []  # each request's time inside the app (handler and rendering), by a middleware


def app_for(data_dir: Path):  # type: ignore[no-untyped-def]
    from fastapi import Request

    from pingan.handlers.access.permissions import Role
    from pingan.settings import Settings
    from pingan.store.repository import Store
    from pingan.web import auth
    from pingan.web.app import create_api

    settings = Settings(data_dir=data_dir, heartbeat_interval_s=0)
    api = create_api(settings, Store(settings.resolved_database_url), tokens={"api": "bench-token"})
    officer = auth.Principal("lin-xiaodong", frozenset({Role.duty_officer}), "session")

    def signed_in(_: Request) -> auth.Principal:
        return officer

    api.dependency_overrides[auth.principal] = signed_in

    @api.middleware("http")
    async def timed(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        SERVER_MS.append((time.perf_counter() - started) * 1000)
        return response

    return api


def render_times(data_dir: Path, renders: int) -> dict[str, float]:
    from fastapi.testclient import TestClient

    with TestClient(app_for(data_dir)) as client:
        out: dict[str, float] = {}
        for path, name in (("/console/", "board"), ("/console/board/rows", "rows")):
            page = client.get(path)  # warm-up: templates compiled, plans loaded
            assert page.status_code == 200, page.text[:300]
            SERVER_MS.clear()
            client_ms = []
            cpu0 = time.process_time()  # CPU of this process, all threads: the app runs in the test client's thread
            for _ in range(renders):
                t0 = time.perf_counter()
                page = client.get(path)
                client_ms.append((time.perf_counter() - t0) * 1000)
            out[f"{name}_cpu_ms"] = round((time.process_time() - cpu0) * 1000 / renders, 1)
            assert page.text.count('class="grade-') >= 1
            times = sorted(SERVER_MS)
            out[f"{name}_p50_ms"] = round(statistics.median(times), 1)
            out[f"{name}_p95_ms"] = round(percentile(times, 95), 1)
            out[f"{name}_max_ms"] = round(times[-1], 1)
            out[f"{name}_client_p50_ms"] = round(statistics.median(client_ms), 1)
            out[f"{name}_bytes"] = len(page.content)
        out["rows_on_board"] = page.text.count("data-id=")
    return out


def serve(data_dir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(app_for(data_dir), host="127.0.0.1", port=port, log_level="warning")


async def fan_out(url: str, data_dir: Path, boards: int) -> dict[str, float]:
    from pingan.commands import add_note
    from pingan.settings import Settings
    from pingan.store.repository import Store

    arrived: list[float] = []
    shown: list[float] = []
    ready = asyncio.Event()
    hellos = 0
    written = 0.0

    async def board(client: httpx.AsyncClient) -> None:
        nonlocal hellos
        async with client.stream("GET", url + "/console/events") as response:
            async for line in response.aiter_lines():
                if line == "event: hello":
                    hellos += 1
                    if hellos == boards:
                        ready.set()
                elif line == "event: update":
                    arrived.append(time.perf_counter() - written)
                    # What a board's script does next: fetch its rows, which now show the change.
                    rows = await client.get(url + "/console/board/rows")
                    assert rows.status_code == 200 and "data-id=" in rows.text
                    shown.append(time.perf_counter() - written)
                    return

    limits = httpx.Limits(max_connections=boards + 5)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        # A board's page load comes first (it loads the plan set in the API process), then its event stream.
        assert (await client.get(url + "/console/board/rows")).status_code == 200
        tasks = [asyncio.create_task(board(client)) for _ in range(boards)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)  # the poller has read the log's head: only what comes next is news
        store = Store(Settings(data_dir=data_dir).resolved_database_url)
        incident = store.list_incidents(limit=1).items[0].id
        written = time.perf_counter()
        await asyncio.to_thread(add_note, store, incident, "bench", "压测：一条新的日志")
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        store.close()
    arrived.sort()
    shown.sort()
    return {"boards": boards, "reached": len(arrived), "p50_ms": round(statistics.median(arrived) * 1000, 1),
            "max_ms": round(arrived[-1] * 1000, 1), "rows_p50_ms": round(statistics.median(shown) * 1000, 1),
            "rows_max_ms": round(shown[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--boards", type=int, default=50)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="pingan-bench-console-") as tmp:
        data_dir = Path(tmp)
        from pingan.settings import Settings

        seeded = seed(Settings(data_dir=data_dir).resolved_database_url, args.incidents)
        print(f"seeded {args.incidents} open incidents in {seeded:.1f} s")
        rendered = render_times(data_dir, args.renders)
        print(f"board, server-side: p50 {rendered['board_p50_ms']} ms, p95 {rendered['board_p95_ms']} ms, max "
              f"{rendered['board_max_ms']} ms, CPU {rendered['board_cpu_ms']} ms a request "
              f"({rendered['rows_on_board']} rows, {rendered['board_bytes']} bytes; in-process client p50 "
              f"{rendered['board_client_p50_ms']} ms); rows fragment p50 {rendered['rows_p50_ms']} ms")
        port = free_port()
        env = clean_env()
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir), str(port)], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(url), 30, "the API to answer")
            live = asyncio.run(fan_out(url, data_dir, args.boards))
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        print(f"live update: {live['reached']}/{live['boards']} boards, p50 {live['p50_ms']} ms, "
              f"max {live['max_ms']} ms after the log entry was written; their rows fetched and shown: p50 "
              f"{live['rows_p50_ms']} ms, max {live['rows_max_ms']} ms")
        result = {"incidents": args.incidents, "seed_s": round(seeded, 1), **rendered, "live": live}
        write_json(args.json_path, result)
        print(json.dumps(result, ensure_ascii=False))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()

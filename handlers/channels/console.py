"""Console channel: a line on stdout for people, and a durable append-only JSON-lines sink as the record.

The sink is what makes the console exactly-once across a crash: a notification counts as delivered once its
line is in the sink, and reconcile() looks there for its idempotency key.
"""

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pingan.schemas.delivery import ReconcileOutcome, ReconcileResult, SendOutcome, SendResult
from pingan.schemas.notification import Notification
from pingan.schemas.printable import printable

# Every record starts with this, and it cannot occur inside a JSON string (quotes there are escaped), so a
# reader can find the start of a good record glued behind a line torn by a crash mid-write.
_RECORD_START = '{"idempotency_key": '


def _parse_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        start = line.rfind(_RECORD_START)
        if start <= 0:
            return None  # only a torn record: it never counted as delivered
        try:
            record = json.loads(line[start:])
        except ValueError:
            return None
    return record if isinstance(record, dict) else None


def _iter_sink(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    record = _parse_line(line)
                    if record is not None:
                        yield record
    except FileNotFoundError:
        return


def read_sink(path: Path) -> list[dict[str, Any]]:
    """All whole records in the sink, oldest first; a missing sink reads as empty."""
    return list(_iter_sink(Path(path)))


class ConsoleChannel:
    name = "console"
    guarantee = "exactly_once"  # reconcile reads the sink: a line written is found, never written twice

    def __init__(self, sink_path: Path, stream: TextIO | None = None) -> None:
        self.sink_path = Path(sink_path)
        # None means "sys.stdout at send time", so redirections made after construction (pytest) still apply.
        self._stream = stream
        self._seen: set[str] = set()  # keys found in the sink; the sink only grows, so a hit stays true

    def send(self, notification: Notification) -> SendResult:
        n = notification
        at = datetime.now(UTC)
        record = {
            "idempotency_key": n.idempotency_key,
            "incident_id": n.incident_id,
            "recipient_id": n.recipient.id,
            "recipient": n.recipient.name,
            "text": n.text,
            "at": at.isoformat(),
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self._append(line)
        except OSError as e:
            # Disk full or unwritable: nothing durable was recorded, so a retry may succeed.
            return SendResult(SendOutcome.transient_failure, detail=f"console sink {self.sink_path}: {e}")
        self._seen.add(n.idempotency_key)
        # The sink is written first because it is the record reconcile trusts; stdout is a courtesy view.
        # A screen line, and in a worker the log's: a title's newline or ANSI escape is shown escaped, never obeyed.
        self._print(printable(f"[{at:%Y-%m-%d %H:%M:%S}Z] {n.recipient.name}: {n.text}"))
        return SendResult(SendOutcome.delivered, provider_id=f"console:{n.idempotency_key}",
                          extra={"sink": str(self.sink_path)})

    def reconcile(self, notification: Notification) -> ReconcileResult:
        key = notification.idempotency_key
        if key not in self._seen:
            try:
                found = any(r.get("idempotency_key") == key for r in _iter_sink(self.sink_path))
            except OSError as e:
                return ReconcileResult(ReconcileOutcome.unknown, detail=f"console sink unreadable: {e}")
            if not found:
                return ReconcileResult(ReconcileOutcome.not_sent, detail="not in the console sink")
            self._seen.add(key)
        return ReconcileResult(ReconcileOutcome.sent, provider_id=f"console:{key}")

    def _append(self, line: bytes) -> None:
        self.sink_path.parent.mkdir(parents=True, exist_ok=True)
        # One write() of the whole line on an O_APPEND descriptor: the kernel places it at the end atomically,
        # so lines from several processes never interleave. fsync before we report "delivered".
        fd = os.open(self.sink_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to console sink ({written} of {len(line)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _print(self, text: str) -> None:
        stream = self._stream or sys.stdout
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stdout must not undo a delivery the sink already records


class SandboxChannel(ConsoleChannel):
    """Where exercise and test traffic goes: recorded like the console, never sent to anyone."""

    name = "sandbox"

    def _print(self, line: str) -> None:  # the sandbox is a record, not a screen
        return None

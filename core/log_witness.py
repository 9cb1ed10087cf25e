"""The log's witnesses: the worker signs the head at an interval and appends it to a checkpoint file (and sends it to
a webhook witness, if set), so that `pingan log verify --checkpoints FILE` can see a truncated or rewritten tail.

What it protects: entries witnessed by a checkpoint cannot be removed, or rewritten with their hashes recomputed,
without `verify --checkpoints` naming it, as long as the key and the checkpoint file (or the witness) are out of the
reach of whoever changes the database. What it does not: entries written after the last checkpoint (up to one
interval) can vanish unseen; someone who holds the key and can edit the file can forge checkpoints (the witness,
on another machine, is the answer to that).
"""

import hashlib
import hmac
import logging
import os
import threading
from pathlib import Path

import httpx

from pingan.handlers.audit.checkpoints import Checkpoint, sign
from pingan.schemas.common import utcnow
from pingan.settings import Settings
from pingan.store.log import log_head
from pingan.store.repository import Store

log = logging.getLogger(__name__)


class CheckpointFileError(ValueError):
    """A checkpoint file line that is not a checkpoint; the message names the file and line."""


def checkpoint_key(settings: Settings) -> bytes | None:
    if settings.log_checkpoint_key:
        return settings.log_checkpoint_key.encode()
    if settings.log_checkpoint_key_file:
        return settings.log_checkpoint_key_file.read_bytes().strip()
    return None


def read_checkpoints(path: Path) -> list[Checkpoint]:
    found: list[Checkpoint] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.model_validate_json(line))
        except ValueError as exc:
            first = str(exc).splitlines()[1:2] or [str(exc)]
            raise CheckpointFileError(f"{path}:{number}: not a checkpoint: {first[0].strip()}") from None
    return found


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """One line, appended and flushed to disk before anyone is told it was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (checkpoint.model_dump_json() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(store: Store, settings: Settings, key: bytes) -> Checkpoint:
    seq, head_hash = log_head(store.engine)
    checkpoint = sign(seq, head_hash, utcnow(), key)
    append_checkpoint(settings.log_checkpoint_path, checkpoint)
    if settings.log_witness_url:
        body = checkpoint.model_dump_json().encode()
        signature = hmac.new(key, body, hashlib.sha256).hexdigest()
        try:
            httpx.post(settings.log_witness_url, content=body, timeout=5.0,
                       headers={"content-type": "application/json", "x-pingan-signature": f"sha256={signature}"})
        except httpx.HTTPError as exc:  # the file has it; a witness that is down must not stop the worker
            log.warning("log witness %s: %s", settings.log_witness_url, exc)
    return checkpoint


class LogWitness:
    """A thread in the worker that writes a checkpoint whenever the head has moved since the last one."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.key = checkpoint_key(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-witness", daemon=True)
        self._last: tuple[int, str] | None = None

    def start(self) -> None:
        if self.key is None:
            log.info("log checkpoints off: PINGAN_LOG_CHECKPOINT_KEY is not set")
            return
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def tick(self) -> Checkpoint | None:
        assert self.key is not None
        if log_head(self.store.engine) == self._last:
            return None
        checkpoint = write_checkpoint(self.store, self.settings, self.key)
        self._last = (checkpoint.seq, checkpoint.hash)
        return checkpoint

    def _run(self) -> None:
        while not self._stop.wait(self.settings.log_checkpoint_interval_s):
            try:
                self.tick()
            except Exception:  # a full disk or a database hiccup: say so, try again next interval
                log.exception("log checkpoint failed")

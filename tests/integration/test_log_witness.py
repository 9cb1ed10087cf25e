"""The worker's log witness signs the head only when it moved, and sends it to a webhook witness (both databases)."""

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pingan.handlers.audit.checkpoints import Checkpoint, genuine
from pingan.log_witness import LogWitness, read_checkpoints
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.settings import Settings
from pingan.store.engine import write_tx
from pingan.store.log import append_actions
from pingan.store.repository import Store

KEY = "witness-key"


@pytest.fixture
def witness_server() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    received: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, self.headers.get("x-pingan-signature", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/witness", received
    server.shutdown()


def test_the_witness_signs_a_moved_head_once(store: Store, tmp_path: Path,
                                             witness_server: tuple[str, list[tuple[bytes, str]]]) -> None:
    url, received = witness_server
    settings = Settings(data_dir=tmp_path, log_checkpoint_key=KEY, log_witness_url=url)
    witness = LogWitness(store, settings)

    def entry() -> None:
        with write_tx(store.engine) as conn:
            append_actions(conn, [ActionDraft(incident_id="INC-W", at=datetime.now(UTC), actor="a",
                                              kind=ActionKind.created)])

    entry()
    assert witness.tick() is not None and witness.tick() is None  # nothing new: nothing written
    entry()
    assert witness.tick() is not None
    written = read_checkpoints(settings.log_checkpoint_path)
    assert [c.seq for c in written] == [1, 2] and all(genuine(c, KEY.encode()) for c in written)
    assert len(received) == 2
    body, signature = received[-1]
    assert Checkpoint.model_validate(json.loads(body)) == written[-1]
    assert signature == "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()

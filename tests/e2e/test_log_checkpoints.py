"""`pingan log verify --checkpoints`: a truncated or rewritten tail, invisible to the chain alone, is named."""

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pingan.handlers.audit.log_chain import entry_hash, hashed_fields
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.store.engine import write_tx
from pingan.store.log import append_actions
from pingan.store.repository import Store
from tests.fixtures.stack import cli, pingan_env

KEY = "test-checkpoint-key-kept-outside-the-db"


def log_entries(store: Store, n: int, start: int = 0) -> None:
    with write_tx(store.engine) as conn:
        append_actions(conn, [ActionDraft(incident_id="INC-TESTLOG001", at=datetime.now(UTC), actor="wang-fang",
                                          kind=ActionKind.acknowledged, details={"n": start + i})
                              for i in range(n)])


def test_verify_names_a_truncated_and_a_rewritten_tail(tmp_path: Path) -> None:
    env = pingan_env(tmp_path, PINGAN_LOG_CHECKPOINT_KEY=KEY)
    db = tmp_path / "pingan.db"
    store = Store(f"sqlite:///{db}")
    log_entries(store, 10)
    first = cli(env, "log", "checkpoint")
    assert first.returncode == 0 and "seq 10" in first.stdout, first.stderr
    log_entries(store, 50, start=10)
    assert cli(env, "log", "checkpoint").returncode == 0
    checkpoints = tmp_path / "log-checkpoints.jsonl"
    assert [json.loads(line)["seq"] for line in checkpoints.read_text().splitlines()] == [10, 60]

    ok = cli(env, "log", "verify", "--checkpoints", str(checkpoints))
    assert ok.returncode == 0 and "2 checkpoint(s) agree" in ok.stdout and "head seq 60 hash " in ok.stdout

    # Delete the last 50 entries, then rewrite the last one left and recompute its hash: the chain still verifies…
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM actions WHERE seq > 10")
        row = conn.execute("SELECT * FROM actions WHERE seq = 10").fetchone()
        names = [d[0] for d in conn.execute("SELECT * FROM actions LIMIT 0").description]
        stored = dict(zip(names, row, strict=True))
        forged = ActionDraft.model_construct(incident_id=stored["incident_id"], at=stored["at"], actor="mallory",
                                             kind=stored["kind"], details=json.loads(stored["details"]),
                                             plan_id=None, plan_version=None, idempotency_key=None)
        new_hash = entry_hash(stored["prev_hash"], hashed_fields(10, forged))
        conn.execute("UPDATE actions SET actor = 'mallory', hash = ? WHERE seq = 10", (new_hash,))
    plain = cli(env, "log", "verify")
    assert plain.returncode == 0 and "head seq 10" in plain.stdout  # what the chain alone cannot see

    # …but not against its checkpoints: both the rewrite and the truncation are named.
    bad = cli(env, "log", "verify", "--checkpoints", str(checkpoints))
    assert bad.returncode == 1, bad.stdout
    assert "REWRITTEN: seq 10 does not have the hash its checkpoint" in bad.stderr
    assert "seq 1..10 was rewritten" in bad.stderr
    assert "TRUNCATED: the log ends at seq 10, but a checkpoint of" in bad.stderr
    assert "witnessed seq 60: 50 entries were removed from its tail" in bad.stderr


def test_a_forged_or_unreadable_checkpoint_is_named(tmp_path: Path) -> None:
    env = pingan_env(tmp_path, PINGAN_LOG_CHECKPOINT_KEY=KEY)
    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    log_entries(store, 3)
    assert cli(env, "log", "checkpoint").returncode == 0
    checkpoints = tmp_path / "log-checkpoints.jsonl"
    line = json.loads(checkpoints.read_text())
    line["seq"] = 99  # a checkpoint made up without the key
    checkpoints.write_text(checkpoints.read_text() + json.dumps(line) + "\n")
    forged = cli(env, "log", "verify", "--checkpoints", str(checkpoints))
    assert forged.returncode == 1 and "FORGED: checkpoint of seq 99" in forged.stderr, forged.stderr
    checkpoints.write_text(checkpoints.read_text() + "not json\n")
    broken = cli(env, "log", "verify", "--checkpoints", str(checkpoints))
    assert broken.returncode == 2 and f"{checkpoints}:3: not a checkpoint" in broken.stderr, broken.stderr


def test_checkpoint_needs_a_key(tmp_path: Path) -> None:
    result = cli(pingan_env(tmp_path), "log", "checkpoint")
    assert result.returncode == 2 and "PINGAN_LOG_CHECKPOINT_KEY" in result.stderr

"""`pingan backup` and `pingan restore` (SQLite): an online backup of a running stack, restored on a fresh data dir,
verifies its log, and the stack started on it finishes the work the backup caught unfinished."""

from pathlib import Path

from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from tests.fixtures.stack import Stack, cli, wait_for

FIRE = {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "仓库起火"}


def test_backup_online_restore_and_resume(tmp_path: Path) -> None:
    (tmp_path / "original").mkdir()
    (tmp_path / "restored").mkdir()
    stack = Stack(tmp_path / "original")
    stack.up()
    try:
        first = stack.post("/v1/incidents", json=FIRE).json()["id"]
        wait_for(lambda: stack.delivered(first), 60, 0.2, "delivered")
        online = cli(stack.env, "backup", str(tmp_path / "online.db"))  # while the stack runs
        assert online.returncode == 0 and "log entries" in online.stdout, online.stderr
        assert cli(stack.env, "backup", str(tmp_path / "online.db")).returncode == 2  # never overwritten
    finally:
        stack.stop()
    # Work accepted but never relayed (the stack is down): the backup must carry it, and a restore must finish it.
    data = Path(stack.env["PINGAN_DATA_DIR"])
    store = Store(f"sqlite:///{data / 'pingan.db'}")
    pending = store.accept(IntakeItem(report=IncidentReport(**{**FIRE, "title": "备份时未处理的火情"})),
                           stack.env["PINGAN_TOPIC_PREFIX"] + "incidents.raw")
    store.close()
    assert cli(stack.env, "backup", str(tmp_path / "offline.db")).returncode == 0

    restored = Stack(tmp_path / "restored")
    result = cli(restored.env, "restore", str(tmp_path / "offline.db"))
    assert result.returncode == 0 and "hash chain intact" in result.stdout, result.stderr
    again = cli(restored.env, "restore", str(tmp_path / "online.db"))
    assert again.returncode == 2 and "--force" in again.stderr  # a store with data is not replaced by accident
    restored.up()
    try:
        assert restored.delivered(first) is not None
        wait_for(lambda: restored.delivered(pending.incident_id), 60, 0.2, "the unfinished report delivered")
        verify = cli(restored.env, "log", "verify")
        assert verify.returncode == 0 and "intact" in verify.stdout
    finally:
        restored.stop()


def test_restore_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database")
    result = cli(stack.env, "restore", str(junk))
    assert result.returncode == 2 and "not a Pingan store" in result.stderr

"""Backups of the store. SQLite: an online copy through SQLite's backup API (consistent while the stack writes, WAL
included), and a restore that refuses to overwrite a store that has data unless told to. PostgreSQL: pg_dump and
pg_restore do it better than we could (README "Backups")."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """Why a backup or restore cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class Copied:
    path: Path
    pages: int
    log_entries: int


def sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(f"{parsed.get_backend_name()} store: use pg_dump / pg_restore (README \"Backups\")")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite store has nothing to back up")
    return Path(parsed.database)


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> int:
    pages = 0

    def progress(_status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total

    # Pages in steps, so a live writer waits at most one step; SQLite restarts the copy if a page changes under it.
    source.backup(target, pages=256, progress=progress)
    return pages


def _log_entries(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM actions").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a Pingan store: {exc}") from None


def backup(url: str, dest: Path) -> Copied:
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no store at {source_path}")
    if dest.exists():
        raise BackupError(f"{dest} exists; a backup never overwrites a file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source_path, timeout=30) as source, sqlite3.connect(dest) as target:
        pages = _copy(source, target)
    return Copied(dest, pages, _log_entries(dest))


def restore(src: Path, url: str, force: bool = False) -> Copied:
    target_path = sqlite_path(url)
    if not src.is_file():
        raise BackupError(f"no backup at {src}")
    entries = _log_entries(src)  # refuses a file that is not a store before anything is touched
    if target_path.exists() and not force:
        try:
            existing = _log_entries(target_path)
        except BackupError:
            existing = 1
        if existing:
            raise BackupError(f"{target_path} already holds a store with {existing} log entries; stop the stack "
                              "and pass --force to replace it")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as source, sqlite3.connect(target_path, timeout=30) as target:
        pages = _copy(source, target)
    return Copied(target_path, pages, entries)

"""Engine set-up for SQLite (WAL, the default) and PostgreSQL (production)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from pingan.store.tables import metadata

# Every transaction that appends to the hash chain holds this lock, so the chain has one writer at a time.
_PG_CHAIN_LOCK = 7_243_001


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A bounded wait for the write lock: intake answers 503 rather than hang (stages retry).
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})
        engine._connection_cls = _SqliteConnection  # type: ignore[attr-defined]
        engine._pingan_write_lock = threading.RLock()  # type: ignore[attr-defined]
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=10,
                               connect_args={"connect_timeout": 5})
    metadata.create_all(engine)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, open transactions, so that we can make them IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front: two writers never both read the chain head. A read
        # (`engine.connect()`, never committed) begins DEFERRED: in WAL it takes no lock, so reads never queue
        # behind writers, nor writers behind reads (SQLite's busy handler sleeps up to 100 ms per retry).
        conn.exec_driver_sql("BEGIN" if getattr(conn, "_pingan_read", False) else "BEGIN IMMEDIATE")


class _SqliteConnection(Connection):
    """Marks transactions begun implicitly (a read through `engine.connect()`) apart from `engine.begin()`, and
    queues this process's write transactions on one lock.

    SQLite has one writer. Threads of one process that meet at BEGIN IMMEDIATE wait in SQLite's busy handler,
    which sleeps 1, 2, 5, 10 … up to 100 ms between tries, however soon the lock is free. A Python lock hands the
    write over as soon as it is released (4 threads × 300 small write transactions: 530 → 570 per second);
    SQLite's own lock still arbitrates between processes (the API and the worker).
    """

    _pingan_read = False
    _pingan_locked = False

    def _autobegin(self) -> None:
        self._pingan_read = True
        try:
            super()._autobegin()
        finally:
            self._pingan_read = False

    def _begin_impl(self, transaction):  # type: ignore[no-untyped-def]
        if not self._pingan_read:
            self.engine._pingan_write_lock.acquire()  # type: ignore[attr-defined]
            self._pingan_locked = True
        try:
            super()._begin_impl(transaction)
        except BaseException:
            self._release_write_lock()
            raise

    def _commit_impl(self) -> None:
        try:
            super()._commit_impl()
        finally:
            self._release_write_lock()

    def _rollback_impl(self) -> None:
        try:
            super()._rollback_impl()
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self._pingan_locked:
            self._pingan_locked = False
            self.engine._pingan_write_lock.release()  # type: ignore[attr-defined]


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction that owns the log chain until it commits."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        yield conn

"""A thin DB-API layer for SQLite (``sqlite3``) and PostgreSQL (``psycopg2``).

Why not SQLAlchemy at run time: importing SQLAlchemy 2.1 costs 250-650 ms on our
machines, more than the whole budget of an ``mlk`` command (100 ms) or a no-op pipeline
rerun (160 ms). The schema is still declared with SQLAlchemy (``schema.py``) and created
by Alembic migrations, which are imported only when a database is behind; queries at run
time are plain SQL written once with ``:name`` placeholders and go straight to the driver.

Writes: SQLite uses ``BEGIN IMMEDIATE`` with a long busy timeout, so concurrent processes
queue for the write lock instead of failing with "database is locked"; one lock per
process serialises its writer threads (datasette's single-writer idea).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from mlkernel.errors import StorageError, UsageError

__all__ = ["BUSY_TIMEOUT_S", "PostgresDatabase", "SQLiteDatabase", "Tx", "connect"]

BUSY_TIMEOUT_S = 120.0
_NAMED = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@lru_cache(maxsize=512)
def _to_pyformat(sql: str) -> str:
    """``:name`` placeholders to psycopg2's ``%(name)s`` (and literal ``%`` escaped)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class Tx(Protocol):
    """What a transaction offers to the queries in ``store.py``."""

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[dict[str, Any]]) -> None: ...
    def insert(self, sql: str, params: dict[str, Any]) -> int: ...
    def insert_rows(self, table: str, columns: str, rows: Sequence[tuple[Any, ...]]) -> None: ...


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Cursor:
        return self._conn.execute(sql, params or {})

    def executemany(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        self._conn.executemany(sql, rows)

    def insert(self, sql: str, params: dict[str, Any]) -> int:
        cursor = self._conn.execute(sql, params)
        return int(cursor.lastrowid or 0)

    def insert_rows(self, table: str, columns: str, rows: Sequence[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * (columns.count(",") + 1))
        self._conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


class SQLiteDatabase:
    is_sqlite = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url[len("sqlite:///") :]
        if not Path(self.path).parent.exists():
            raise StorageError(
                f"metadata folder {Path(self.path).parent} is missing; run `mlk init`"
            )
        self._writer = self._connect()
        self._reader = self._connect()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self.closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":  # pragma: no cover - file systems without shared memory
            raise StorageError(f"cannot put {self.path} in WAL mode (got {mode}); use a local disk")
        return conn

    @contextmanager
    def write(self) -> Iterator[_SQLiteTx]:
        with self._write_lock:
            _check_open(self)
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_SQLiteTx]:
        with self._read_lock:
            _check_open(self)
            yield _SQLiteTx(self._reader)

    def integrity_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.IntegrityError,)

    def storage_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.DatabaseError,)

    def close(self) -> None:
        self.closed = True
        self._writer.close()
        self._reader.close()


class _PostgresTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._cur = conn.cursor()

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        self._cur.execute(_to_pyformat(sql), params or {})
        return self._cur

    def executemany(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        from psycopg2.extras import execute_batch

        execute_batch(self._cur, _to_pyformat(sql), rows, page_size=1000)

    def insert(self, sql: str, params: dict[str, Any]) -> int:
        self._cur.execute(_to_pyformat(sql) + " RETURNING id", params)
        return int(self._cur.fetchone()[0])

    def insert_rows(self, table: str, columns: str, rows: Sequence[tuple[Any, ...]]) -> None:
        from psycopg2.extras import execute_values

        execute_values(
            self._cur, f"INSERT INTO {table} ({columns}) VALUES %s", rows, page_size=5000
        )


class PostgresDatabase:
    is_sqlite = False

    def __init__(self, url: str) -> None:
        import psycopg2

        self.url = url
        self._dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
        self._psycopg2 = psycopg2
        self._writer = self._connect(autocommit=False)
        self._reader = self._connect(autocommit=True)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self.closed = False

    def _connect(self, *, autocommit: bool) -> Any:
        conn = self._psycopg2.connect(self._dsn, connect_timeout=10)
        conn.autocommit = autocommit
        return conn

    @contextmanager
    def write(self) -> Iterator[_PostgresTx]:
        with self._write_lock:
            _check_open(self)
            # A connection the server dropped (a restart, an idle timeout) is replaced at
            # the next transaction, so one failure does not fail every later write.
            if self._writer.closed:
                self._writer = self._connect(autocommit=False)
            conn = self._writer
            try:
                yield _PostgresTx(conn)
            except BaseException:
                if not conn.closed:  # else it broke: the original error says more
                    with contextlib.suppress(self._psycopg2.Error):
                        conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def read(self) -> Iterator[_PostgresTx]:
        with self._read_lock:
            _check_open(self)
            if self._reader.closed:
                self._reader = self._connect(autocommit=True)
            yield _PostgresTx(self._reader)

    def integrity_errors(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg2.IntegrityError,)

    def storage_errors(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg2.Error,)

    def close(self) -> None:
        self.closed = True
        self._writer.close()
        self._reader.close()


def _check_open(db: SQLiteDatabase | PostgresDatabase) -> None:
    """Refuse use after close in one line, the same on both backends (SQLite said
    "Cannot operate on a closed database"; PostgreSQL quietly opened new connections)."""
    if db.closed:
        raise closed_error()


def closed_error() -> UsageError:
    return UsageError(
        "this project handle is closed (k.close(), or the end of `with mlk.open() as k:`); "
        "use it inside the block, or open the project again with mlk.open()"
    )


def connect(url: str) -> SQLiteDatabase | PostgresDatabase:
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(url)
    return PostgresDatabase(url)

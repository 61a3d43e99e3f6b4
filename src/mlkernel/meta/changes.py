"""Cheap "has another process changed the metadata?" checks for the in-memory table.

SQLite: ``PRAGMA data_version`` on a dedicated read connection changes whenever another
connection commits (https://www.sqlite.org/pragma.html#pragma_data_version). Before that
query we compare the 48-byte WAL-index header in ``meta.db-shm``, which every commit
rewrites (https://www.sqlite.org/walformat.html, section 2.1), so the common "nothing
changed" answer costs a memory compare instead of a query.

SQLite keeps its WAL locks (POSIX ``fcntl`` locks) on that very file, and closing *any*
descriptor of a file drops every such lock the process holds on it (fcntl(2)). A
descriptor opened and closed here once did just that: the process went on reading
without its locks, so another process could take the WAL index for abandoned and
truncate it under the connections that map it (they died of SIGBUS), or checkpoint over
pages a reader still used. So the map and its descriptors are opened once per file and
kept for the life of the process (:func:`_wal_header`), never closed.

PostgreSQL: one primary-key query per check (see :class:`PostgresWatcher` for why not
LISTEN/NOTIFY alone).
"""

from __future__ import annotations

import mmap
import os
import re
import sqlite3
import threading
from typing import Any, Protocol

from mlkernel.meta.db import BUSY_TIMEOUT_S

__all__ = ["ChangeWatcher", "watcher_for"]

_WAL_HEADER = 48
_MAPS: dict[tuple[int, int], mmap.mmap] = {}  # (device, inode) -> map, for the process's life
_MAPS_LOCK = threading.Lock()


def _wal_header(path: str) -> mmap.mmap | None:
    """A read-only map of the WAL-index header in ``path``; None if it has none yet.

    One per file (device and inode) per process, and never closed, with its descriptor:
    see the module's docstring. A file SQLite replaced is a new inode and gets a map of
    its own; the old one stays, a page and two descriptors, until the process ends.
    """
    try:
        found = os.stat(path)
    except OSError:
        return None
    if found.st_size < _WAL_HEADER:
        return None
    with _MAPS_LOCK:
        held = _MAPS.get((found.st_dev, found.st_ino))
        if held is not None:
            return held
        try:
            fd = os.open(path, os.O_RDONLY)  # never closed (nor the map's own copy of it)
        except OSError:
            return None
        opened = os.fstat(fd)
        mapped = _MAPS.get((opened.st_dev, opened.st_ino))
        if mapped is None:  # else the file was replaced meanwhile by one mapped already
            mapped = mmap.mmap(fd, _WAL_HEADER, prot=mmap.PROT_READ)
            _MAPS[(opened.st_dev, opened.st_ino)] = mapped
        return mapped


class ChangeWatcher(Protocol):
    def changed(self) -> bool: ...
    def close(self) -> None: ...


class SQLiteWatcher:
    def __init__(self, path: str) -> None:
        # The store's readers' long busy timeout: under heavy writing a reader can meet a
        # busy WAL index, and sqlite3's default (5 s) would give up.
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            check_same_thread=False,
            isolation_level=None,
        )
        self._version = self._data_version()
        # Mapped after the connection has read: its lock keeps the file from being
        # truncated while this watcher reads the map.
        self._map = _wal_header(f"{path}-shm")
        self._header = self._map[:_WAL_HEADER] if self._map is not None else b""

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        mapped = self._map
        if mapped is not None and mapped[:_WAL_HEADER] == self._header:
            return False
        if mapped is not None:
            self._header = mapped[:_WAL_HEADER]
        version = self._data_version()
        if version == self._version:
            return False
        self._version = version
        return True

    def close(self) -> None:
        self._map = None  # the map stays open: see _wal_header
        self._conn.close()


class PostgresWatcher:
    """One round trip per check: the newest artifact and alias-move ids.

    Artifacts are only ever inserted and every alias move (set or removal) appends to
    ``alias_history``, so the pair of maxima changes with every change the table holds.
    Both are primary-key lookups (~0.1 ms on a local server). LISTEN/NOTIFY alone is not
    enough: a notification can reach this connection after the writer's commit has
    returned, and a resolve in that gap would answer from stale memory.
    """

    _QUERY = "SELECT (SELECT MAX(id) FROM artifact), (SELECT MAX(id) FROM alias_history)"

    def __init__(self, url: str) -> None:
        import psycopg2

        dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
        self._conn: Any = psycopg2.connect(dsn, connect_timeout=10)
        self._conn.autocommit = True
        self._cur = self._conn.cursor()
        self._last = self._read()

    def _read(self) -> tuple[Any, ...]:
        self._cur.execute(self._QUERY)
        return tuple(self._cur.fetchone())

    def changed(self) -> bool:
        now = self._read()
        if now == self._last:
            return False
        self._last = now
        return True

    def close(self) -> None:
        self._conn.close()


def watcher_for(url: str) -> ChangeWatcher:
    if url.startswith("sqlite:///"):
        return SQLiteWatcher(url[len("sqlite:///") :])
    return PostgresWatcher(url)

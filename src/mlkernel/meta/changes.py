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
shared by the process's watchers of it (:func:`_wal_header`), and closed only when the last
of them closes, after its kernel's own connections (``Kernel.close``).

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
_Key = tuple[int, int]  # the WAL-index file's device and inode


class _Held:
    def __init__(self, fd: int, mapped: mmap.mmap) -> None:
        self.fd, self.map, self.users = fd, mapped, 0


_MAPS: dict[_Key, _Held] = {}
_MAPS_LOCK = threading.Lock()


def _wal_header(path: str) -> tuple[_Key, mmap.mmap] | None:
    """A read-only map of the WAL-index header in ``path``, for one more watcher; None if
    the file has none yet. Give it back with :func:`_release`.

    One map per file (device and inode) per process, shared, its descriptor held open
    while a watcher uses it: see the module's docstring. A file SQLite replaced is a new
    inode and gets a map of its own.
    """
    try:
        found = os.stat(path)
    except OSError:
        return None
    if found.st_size < _WAL_HEADER:
        return None
    with _MAPS_LOCK:
        key = (found.st_dev, found.st_ino)
        held = _MAPS.get(key)
        if held is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            opened = os.fstat(fd)
            key = (opened.st_dev, opened.st_ino)  # the file may have been replaced
            held = _MAPS.get(key)
            if held is None:
                held = _MAPS[key] = _Held(fd, mmap.mmap(fd, _WAL_HEADER, prot=mmap.PROT_READ))
            # else the file was replaced by one mapped already: this descriptor stays
            # open, as closing it would drop the locks (a rare race; one descriptor)
        held.users += 1
        return key, held.map


def _release(key: _Key) -> None:
    """A watcher is done with the map: close it if it was the last one's."""
    with _MAPS_LOCK:
        held = _MAPS.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users == 0:
            del _MAPS[key]
            held.map.close()
            os.close(held.fd)


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
        found = _wal_header(f"{path}-shm")
        self._key: _Key | None = found[0] if found is not None else None
        self._map: mmap.mmap | None = found[1] if found is not None else None
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
        self._conn.close()
        self._map = None
        if self._key is not None:
            _release(self._key)
            self._key = None


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

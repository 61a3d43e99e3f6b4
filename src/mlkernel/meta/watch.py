"""Metadata queries of the dataset watcher: what it did with each file it saw.

Mixed into :class:`mlkernel.meta.store.MetaStore`, which provides the connection and the
project. One row per watched path (table ``watched_file``): the size, modification time
and digest the watcher last acted on, the dataset and version it became, and how it
ended (``ingested``, ``unchanged`` when the content was already a version, ``failed``
with the error). A restarted watcher reads these rows instead of ingesting the folder
again.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.meta.db import Tx

__all__ = ["WATCH_STATES", "WatchQueries", "WatchedFile"]

WATCH_STATES = ("ingested", "unchanged", "failed")

_COLUMNS = "path, size, mtime, digest, dataset, artifact_id, state, error, at"


@dataclass(frozen=True, slots=True)
class WatchedFile:
    """One file as the watcher last handled it."""

    path: str
    size: int
    mtime: float
    digest: str
    dataset: str
    artifact_id: int | None
    state: str  # ingested | unchanged | failed
    error: str | None
    at: float


def _record(row: Any) -> WatchedFile:
    return WatchedFile(
        path=str(row[0]),
        size=int(row[1]),
        mtime=float(row[2]),
        digest=str(row[3]),
        dataset=str(row[4]),
        artifact_id=None if row[5] is None else int(row[5]),
        state=str(row[6]),
        error=None if row[7] is None else str(row[7]),
        at=float(row[8]),
    )


class WatchQueries:
    """``watched_file`` reads and writes; see the module docstring."""

    if TYPE_CHECKING:
        project_id: int

        def write(self) -> AbstractContextManager[Tx]: ...
        def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]: ...

    def watched_files(self) -> dict[str, WatchedFile]:
        """Every file the watcher has handled in this project, by path."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM watched_file WHERE project_id = :project",
            {"project": self.project_id},
        )
        return {r.path: r for r in map(_record, rows)}

    def watched_file(self, path: str) -> WatchedFile | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM watched_file WHERE project_id = :project AND path = :path",
            {"project": self.project_id, "path": path},
        )
        return _record(rows[0]) if rows else None

    def record_watched_file(
        self,
        path: str,
        *,
        size: int,
        mtime: float,
        digest: str,
        dataset: str,
        state: str,
        artifact_id: int | None = None,
        error: str | None = None,
    ) -> WatchedFile:
        """Insert or replace the row of ``path`` (one row per path and project)."""
        if state not in WATCH_STATES:
            raise ValueError(f"watched_file state {state!r} is not one of {WATCH_STATES}")
        at = time.time()
        values: dict[str, Any] = {
            "project": self.project_id,
            "path": path,
            "size": size,
            "mtime": mtime,
            "digest": digest,
            "dataset": dataset,
            "artifact_id": artifact_id,
            "state": state,
            "error": error,
            "at": at,
        }
        # ON CONFLICT ... DO UPDATE is the same statement on SQLite (>= 3.24) and PostgreSQL.
        with self.write() as tx:
            tx.execute(
                f"INSERT INTO watched_file (project_id, {_COLUMNS}) VALUES (:project, :path, "
                ":size, :mtime, :digest, :dataset, :artifact_id, :state, :error, :at) "
                "ON CONFLICT (project_id, path) DO UPDATE SET size = excluded.size, "
                "mtime = excluded.mtime, digest = excluded.digest, dataset = excluded.dataset, "
                "artifact_id = excluded.artifact_id, state = excluded.state, "
                "error = excluded.error, at = excluded.at",
                values,
            )
        return WatchedFile(path, size, mtime, digest, dataset, artifact_id, state, error, at)

    def unanalysed_watched_files(self) -> list[WatchedFile]:
        """Files ingested as a new version that no completed ``watch`` run has read yet.

        Their analysis was waiting for the off-peak window, or the watcher stopped
        before it ended; a restarted watcher analyses them.
        """
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM watched_file w WHERE w.project_id = :project "
            "AND w.state = 'ingested' AND w.artifact_id IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM event e JOIN execution x ON x.id = e.execution_id "
            "WHERE e.artifact_id = w.artifact_id AND e.direction = 'in' "
            "AND x.type = 'watch' AND x.state = 'completed') ORDER BY w.artifact_id",
            {"project": self.project_id},
        )
        return [_record(r) for r in rows]

"""The metadata store: one project's reads and writes against SQLite or PostgreSQL.

Plain SQL through :mod:`mlkernel.meta.db` (see there why not SQLAlchemy at run time); the
schema it queries is declared in :mod:`mlkernel.meta.schema` and created by the Alembic
migrations, which run only when the database is behind.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mlkernel.errors import ConflictError, NotFoundError, StorageError
from mlkernel.meta.db import PostgresDatabase, SQLiteDatabase, Tx, connect
from mlkernel.meta.liveness import process_start
from mlkernel.meta.pipelines import PipelineQueries
from mlkernel.meta.records import ArtifactRecord, ExecutionRecord, LineageEdge
from mlkernel.meta.rows import (
    ARTIFACT_COLUMNS,
    EXECUTION_COLUMNS,
    dump,
    dump_param,
    execution_record,
    from_json,
    id_list,
    metric_rows,
    read_metric,
    safe_text,
    state_filter,
)
from mlkernel.meta.watch import WatchQueries

__all__ = ["MetaStore"]

METRIC_COLUMNS = "execution_id, key, step, value, ts"

T = TypeVar("T")

_MIGRATE_LOCK_KEY = 7_160_417  # pg_advisory_lock key serialising first-time migrations


class MetaStore(PipelineQueries, WatchQueries):
    """One project's view of a metadata database."""

    def __init__(self, url: str, project_name: str, project_root: Path) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.db: SQLiteDatabase | PostgresDatabase = self._guard(lambda: connect(url))
        try:
            self._guard(self._migrate)
            self.project_id = self._guard(lambda: self._project(project_name, project_root))
        except BaseException:
            self.db.close()
            raise

    # -- set-up and errors -----------------------------------------------------------

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; driver errors about an unusable database become StorageError."""
        import sqlite3

        errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
        if not self.is_sqlite:
            import psycopg2

            errors += (psycopg2.Error,)
        try:
            return fn()
        except errors as exc:
            raise StorageError(self._describe(exc)) from None

    def _describe(self, exc: BaseException) -> str:
        lines = str(getattr(exc, "orig", exc)).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        if self.is_sqlite:
            path = self.url[len("sqlite:///") :]
            if "not a database" in text or "malformed" in text:
                return (
                    f"metadata database {path} is corrupt ({text}); restore it from a backup, "
                    "or move it away and run `mlk init` to start a new one"
                )
            return f"metadata database {path} cannot be used ({text}); check its permissions"
        import re

        missing = re.search(r'database "([^"]+)" does not exist', text)
        if missing:
            name = missing.group(1)
            return (
                f"PostgreSQL at {self.display_url} has no database {name!r}; create it with "
                f"`createdb {name}` (or CREATE DATABASE as its owner), then run this again"
            )
        return (
            f"PostgreSQL at {self.display_url} cannot be used ({text}); "
            "check that the server runs and the URL is right"
        )

    def _schema_version(self) -> str | None:
        try:
            with self.db.read() as tx:
                row = tx.execute("SELECT version_num FROM alembic_version").fetchone()
        except self.db.storage_errors() as exc:
            message = str(exc)
            if "alembic_version" in message:  # a new, empty database
                return None
            raise
        return None if row is None else str(row[0])

    def _migrate(self) -> None:
        from mlkernel.meta.migrations import HEAD

        if self._schema_version() == HEAD:
            return
        if self.is_sqlite:
            lock_path = Path(self.url[len("sqlite:///") :] + ".migrate.lock")
            with lock_path.open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if self._schema_version() != HEAD:
                    self._run_alembic()
        else:
            self._run_alembic()

    def _run_alembic(self) -> None:
        """Alembic (and SQLAlchemy) load only here, when the schema must change."""
        from sqlalchemy import create_engine

        from mlkernel.meta.migrations import upgrade

        url = self.url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg2://" + url[len("postgresql://") :]
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                if not self.is_sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK_KEY})")
                upgrade(conn)
        finally:
            engine.dispose()

    def project_root(self) -> str:
        """The folder the project was created in (its first ``mlk init``)."""
        rows = self._rows("SELECT root FROM project WHERE id = :id", {"id": self.project_id})
        return str(rows[0][0]) if rows else ""

    def _project(self, name: str, root: Path) -> int:
        query = "SELECT id FROM project WHERE name = :name"
        with self.db.read() as tx:
            found = tx.execute(query, {"name": name}).fetchone()
        if found is not None:
            return int(found[0])
        with self.write() as tx:
            found = tx.execute(query, {"name": name}).fetchone()
            if found is not None:
                return int(found[0])
            return tx.insert(
                "INSERT INTO project (name, root, created_at, settings) "
                "VALUES (:name, :root, :at, :settings)",
                {"name": name, "root": str(root), "at": time.time(), "settings": "{}"},
            )

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction (other processes' tables see it through ``changes.py``)."""
        integrity = self.db.integrity_errors()
        try:
            with self.db.write() as tx:
                yield tx
        except integrity:
            raise
        except self.db.storage_errors() as exc:
            raise StorageError(self._describe(exc)) from None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        try:
            with self.db.read() as tx:
                yield tx
        except self.db.storage_errors() as exc:
            raise StorageError(self._describe(exc)) from None

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self.read() as tx:
            return list(tx.execute(sql, params).fetchall())

    def close(self) -> None:
        self.db.close()

    @property
    def display_url(self) -> str:
        if self.is_sqlite:
            return self.url
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.split('@')[-1]}"

    # -- executions ------------------------------------------------------------------

    def insert_execution(
        self,
        name: str,
        type_: str,
        *,
        host: str,
        pid: int,
        user: str,
        params: dict[str, Any] | None = None,
        context_id: int | None = None,
        cache_key: str | None = None,
        code_digest: str | None = None,
        state: str = "running",
    ) -> int:
        row = {
            "project": self.project_id,
            "context": context_id,
            "name": name,
            "type": type_,
            "state": state,
            "cache_key": cache_key,
            "code_digest": code_digest,
            "host": host,
            "pid": pid,
            "user": user,
            "at": time.time(),
            "proc_start": process_start(pid),
        }
        with self.write() as tx:
            exec_id = tx.insert(
                "INSERT INTO execution (project_id, context_id, name, type, state, cache_key, "
                'code_digest, host, pid, "user", started_at, proc_start) VALUES (:project, '
                ":context, :name, :type, :state, :cache_key, :code_digest, :host, :pid, :user, "
                ":at, :proc_start)",
                row,
            )
            if params:
                self._params(tx, exec_id, params)
        return exec_id

    def _params(self, tx: Tx, execution_id: int, params: dict[str, Any]) -> None:
        tx.insert_rows(
            "param",
            "execution_id, key, value",
            [(execution_id, key, dump_param(key, value)) for key, value in params.items()],
        )

    def add_params(self, execution_id: int, params: dict[str, Any]) -> None:
        if not params:
            return
        try:
            with self.write() as tx:
                self._params(tx, execution_id, params)
        except self.db.integrity_errors():
            raise ConflictError(
                f"run {execution_id} already has a parameter among {sorted(params)}; "
                "parameters are set once per run"
            ) from None

    def finish_execution(
        self,
        execution_id: int,
        state: str,
        *,
        error: str | None = None,
        resources: dict[str, Any] | None = None,
        env_artifact_id: int | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        metrics: Sequence[tuple[int, str, int, float, float]] = (),
    ) -> bool:
        """Mark a running execution ended, writing its last buffered ``metrics`` in the
        same commit. The metrics are written either way; False if the execution had been
        ended already (by `mlk runs cancel`, say), whose state then stays as it is."""
        values = {
            "state": state,
            "ended": time.time(),
            "error": safe_text(error),
            "resources": None if resources is None else dump(resources),
            "env": env_artifact_id,
            "commit": git_commit,
            "dirty": git_dirty,
            "id": execution_id,
        }
        with self.write() as tx:
            if metrics:
                tx.insert_rows("metric", METRIC_COLUMNS, metric_rows(metrics))
            cursor = tx.execute(
                "UPDATE execution SET state = :state, ended_at = :ended, error = :error, "
                "resources = :resources, env_artifact_id = :env, git_commit = :commit, "
                "git_dirty = :dirty WHERE id = :id AND state = 'running'",
                values,
            )
            return bool(cursor.rowcount)

    def insert_metrics(self, rows: Sequence[tuple[int, str, int, float, float]]) -> None:
        """Rows of (execution_id, key, step, value, ts), written in one transaction."""
        if rows:
            with self.write() as tx:
                tx.insert_rows("metric", METRIC_COLUMNS, metric_rows(rows))

    def end_runs(
        self,
        ids: Sequence[int],
        state: str,
        error: str | None,
        metrics: Sequence[tuple[int, str, int, float, float]] = (),
    ) -> list[int]:
        """End the executions among ``ids`` that are still running (or lost), with
        ``metrics`` saved in the same commit; the ids that were ended."""
        ended = []
        with self.write() as tx:
            if metrics:
                tx.insert_rows("metric", METRIC_COLUMNS, metric_rows(metrics))
            for execution_id in ids:
                cursor = tx.execute(
                    "UPDATE execution SET state = :state, ended_at = :at, error = :error "
                    "WHERE id = :id AND project_id = :project AND state = 'running'",
                    {
                        "state": state,
                        "at": time.time(),
                        "error": safe_text(error),
                        "id": execution_id,
                        "project": self.project_id,
                    },
                )
                if cursor.rowcount:
                    ended.append(execution_id)
        return ended

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        rows = self._rows(
            f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE id = :id AND project_id = :project",
            {"id": execution_id, "project": self.project_id},
        )
        if not rows:
            raise NotFoundError(f"no run with id {execution_id}; run `mlk runs ls` to list runs")
        return execution_record(rows[0])

    def executions(self, ids: Iterable[int]) -> dict[int, ExecutionRecord]:
        marks = id_list(ids)
        if marks is None:
            return {}
        rows = self._rows(f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE id IN ({marks})")
        return {row[0]: execution_record(row) for row in rows}

    def list_executions(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        type_: str | None = None,
    ) -> list[ExecutionRecord]:
        where = ["project_id = :project"]
        stored, derived = state_filter(state)
        params: dict[str, Any] = {"project": self.project_id}
        for column, value in (("state", stored), ("name", name), ("type", type_)):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        sql = f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE {' AND '.join(where)} "
        sql += "ORDER BY id DESC"
        if not derived:  # running and lost rows are told apart once read, then counted
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
        records = [execution_record(row) for row in self._rows(sql, params)]
        if derived:
            records = [r for r in records if r.state == state][: int(limit)]
        return records

    def params(self, execution_id: int) -> dict[str, Any]:
        rows = self._rows(
            "SELECT key, value FROM param WHERE execution_id = :id ORDER BY key",
            {"id": execution_id},
        )
        return {key: json.loads(value) for key, value in rows}

    def metrics(
        self, execution_id: int, key: str | None = None
    ) -> list[tuple[str, int, float, float]]:
        """(key, step, value, ts) ordered by key then step."""
        sql = "SELECT key, step, value, ts FROM metric WHERE execution_id = :id"
        params: dict[str, Any] = {"id": execution_id}
        if key is not None:
            sql += " AND key = :key"
            params["key"] = key
        rows = self._rows(sql + " ORDER BY key, step, ts", params)
        return [(r[0], int(r[1]), read_metric(r[2]), float(r[3])) for r in rows]

    def events(self, execution_id: int) -> list[tuple[int, str]]:
        """(artifact_id, direction) of one execution."""
        rows = self._rows(
            "SELECT artifact_id, direction FROM event WHERE execution_id = :id ORDER BY id",
            {"id": execution_id},
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    # -- artifacts and aliases -------------------------------------------------------

    def register_artifact(
        self,
        kind: str,
        name: str,
        *,
        digest: str,
        uri: str,
        size: int,
        properties: dict[str, Any],
        created_by: str,
        execution_id: int | None,
        dedupe: bool = True,
    ) -> tuple[ArtifactRecord, bool]:
        """Record a new version (or reuse the latest if it has this digest and ``dedupe``).

        Returns the record and whether it is new. The producing execution gets an ``out``
        event either way.
        """
        key = {"project": self.project_id, "kind": kind, "name": name}
        for attempt in range(50):
            try:
                with self.write() as tx:
                    latest = tx.execute(
                        f"SELECT {ARTIFACT_COLUMNS} FROM artifact WHERE project_id = :project "
                        "AND kind = :kind AND name = :name ORDER BY version DESC LIMIT 1",
                        key,
                    ).fetchone()
                    if latest is not None and dedupe and latest[4] == digest:
                        record = ArtifactRecord(*latest)
                        if execution_id is not None:
                            self._event(tx, execution_id, record.id, "out")
                        return record, False
                    version = 1 if latest is None else int(latest[3]) + 1
                    now = time.time()
                    new_id = tx.insert(
                        "INSERT INTO artifact (project_id, kind, name, version, digest, uri, "
                        "size, properties, created_at, created_by, execution_id) VALUES "
                        "(:project, :kind, :name, :version, :digest, :uri, :size, :props, "
                        ":at, :by, :execution)",
                        {
                            **key,
                            "version": version,
                            "digest": digest,
                            "uri": uri,
                            "size": size,
                            "props": dump(properties),
                            "at": now,
                            "by": created_by,
                            "execution": execution_id,
                        },
                    )
                    if execution_id is not None:
                        self._event(tx, execution_id, new_id, "out")
                    record = ArtifactRecord(
                        new_id, kind, name, version, digest, uri, size, dict(properties), now,
                        created_by, execution_id,
                    )  # fmt: skip
                    return record, True
            except self.db.integrity_errors():
                # Another process took this version number between our read and insert
                # (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers).
                time.sleep(0.001 * (attempt + 1))
        raise ConflictError(f"could not allocate a version of {kind}:{name}; retry")

    def _event(self, tx: Tx, execution_id: int, artifact_id: int, direction: str) -> None:
        params = {"execution": execution_id, "artifact": artifact_id, "direction": direction}
        exists = tx.execute(
            "SELECT 1 FROM event WHERE execution_id = :execution AND artifact_id = :artifact "
            "AND direction = :direction",
            params,
        ).fetchone()
        if exists is None:
            tx.execute(
                "INSERT INTO event (execution_id, artifact_id, direction, at) "
                "VALUES (:execution, :artifact, :direction, :at)",
                {**params, "at": time.time()},
            )

    def add_event(self, execution_id: int, artifact_id: int, direction: str) -> None:
        with self.write() as tx:
            self._event(tx, execution_id, artifact_id, direction)

    def find_by_digest(self, kind: str, digest: str) -> ArtifactRecord | None:
        rows = self._rows(
            f"SELECT {ARTIFACT_COLUMNS} FROM artifact WHERE project_id = :project "
            "AND kind = :kind AND digest = :digest ORDER BY id LIMIT 1",
            {"project": self.project_id, "kind": kind, "digest": digest},
        )
        return ArtifactRecord(*rows[0]) if rows else None

    def load_artifacts(self, after_id: int = 0) -> list[ArtifactRecord]:
        """Artifacts with an id above ``after_id``, oldest first (properties parsed lazily)."""
        rows = self._rows(
            # "+project_id" keeps SQLite off the (project, kind, name, version) index, so
            # it walks the primary key in order instead of sorting: 15 ms -> 0.1 ms at 10k.
            f"SELECT {ARTIFACT_COLUMNS} FROM artifact WHERE +project_id = :project "
            "AND id > :after ORDER BY id",
            {"project": self.project_id, "after": after_id},
        )
        make = ArtifactRecord._make
        return [make(row) for row in rows]

    def load_aliases(self) -> dict[tuple[str, str, str], int]:
        rows = self._rows(
            "SELECT kind, name, alias, version FROM alias WHERE project_id = :project",
            {"project": self.project_id},
        )
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}

    def set_alias(self, kind: str, name: str, alias_name: str, version: int, by: str) -> int | None:
        """Point an alias at ``version``; return the version it pointed at before."""
        key = {"project": self.project_id, "kind": kind, "name": name, "alias": alias_name}
        where = "project_id = :project AND kind = :kind AND name = :name AND alias = :alias"
        now = time.time()
        with self.write() as tx:
            row = tx.execute(f"SELECT version FROM alias WHERE {where}", key).fetchone()
            before = None if row is None else int(row[0])
            values = {**key, "version": version, "at": now, "by": by}
            if before is None:
                tx.execute(
                    "INSERT INTO alias (project_id, kind, name, alias, version, updated_at, "
                    "updated_by) VALUES (:project, :kind, :name, :alias, :version, :at, :by)",
                    values,
                )
            else:
                tx.execute(
                    "UPDATE alias SET version = :version, updated_at = :at, updated_by = :by "
                    f"WHERE {where}",
                    values,
                )
            self._history(tx, key, before, version, now, by)
        return before

    def _history(
        self, tx: Tx, key: dict[str, Any], before: int | None, after: int | None, at: float, by: str
    ) -> None:
        tx.execute(
            "INSERT INTO alias_history (project_id, kind, name, alias, from_version, "
            "to_version, at, by) VALUES (:project, :kind, :name, :alias, :before, :after, "
            ":at, :by)",
            {**key, "before": before, "after": after, "at": at, "by": by},
        )

    def remove_alias(self, kind: str, name: str, alias_name: str, by: str) -> int:
        key = {"project": self.project_id, "kind": kind, "name": name, "alias": alias_name}
        where = "project_id = :project AND kind = :kind AND name = :name AND alias = :alias"
        with self.write() as tx:
            row = tx.execute(f"SELECT version FROM alias WHERE {where}", key).fetchone()
            if row is None:
                raise NotFoundError(
                    f"{kind}:{name} has no alias {alias_name!r}; "
                    f"run `mlk show {kind}:{name}` to see its aliases"
                )
            tx.execute(f"DELETE FROM alias WHERE {where}", key)
            self._history(tx, key, int(row[0]), None, time.time(), by)
        return int(row[0])

    def alias_history(self, kind: str, name: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT alias, from_version, to_version, at, by FROM alias_history "
            "WHERE project_id = :project AND kind = :kind AND name = :name ORDER BY id",
            {"project": self.project_id, "kind": kind, "name": name},
        )
        return [{"alias": r[0], "from": r[1], "to": r[2], "at": r[3], "by": r[4]} for r in rows]

    # -- lineage ---------------------------------------------------------------------

    def lineage_edges(
        self, artifact_id: int, direction: str, max_depth: int = 100
    ) -> list[LineageEdge]:
        """The upstream (``up``) or downstream (``down``) closure in one recursive query.

        An edge is parent -> execution -> child where the execution read the parent
        (an ``in`` event) and *created* the child (``artifact.execution_id``). Executions
        that only reused an artifact (cache hits, identical content) also record ``out``
        events, but they are not where the artifact came from, so they are not edges.
        """
        if direction == "up":
            sql = """
                WITH RECURSIVE walk(child_id, execution_id, parent_id, depth) AS (
                    SELECT c.id, c.execution_id, ev.artifact_id, 1
                      FROM artifact c
                      JOIN event ev ON ev.execution_id = c.execution_id AND ev.direction = 'in'
                     WHERE c.id = :start
                    UNION
                    SELECT c.id, c.execution_id, ev.artifact_id, w.depth + 1
                      FROM walk w
                      JOIN artifact c ON c.id = w.parent_id
                      JOIN event ev ON ev.execution_id = c.execution_id AND ev.direction = 'in'
                     WHERE w.depth < :max_depth
                )
                SELECT child_id, execution_id, parent_id, MIN(depth) FROM walk
                 GROUP BY child_id, execution_id, parent_id ORDER BY MIN(depth)
            """
        else:
            sql = """
                WITH RECURSIVE walk(child_id, execution_id, parent_id, depth) AS (
                    SELECT c.id, c.execution_id, ev.artifact_id, 1
                      FROM event ev
                      JOIN artifact c ON c.execution_id = ev.execution_id
                     WHERE ev.artifact_id = :start AND ev.direction = 'in'
                    UNION
                    SELECT c.id, c.execution_id, ev.artifact_id, w.depth + 1
                      FROM walk w
                      JOIN event ev ON ev.artifact_id = w.child_id AND ev.direction = 'in'
                      JOIN artifact c ON c.execution_id = ev.execution_id
                     WHERE w.depth < :max_depth
                )
                SELECT child_id, execution_id, parent_id, MIN(depth) FROM walk
                 GROUP BY child_id, execution_id, parent_id ORDER BY MIN(depth)
            """
        rows = self._rows(sql, {"start": artifact_id, "max_depth": max_depth})
        return [LineageEdge(r[0], r[1], r[2], r[3]) for r in rows]

    # -- housekeeping ----------------------------------------------------------------

    def referenced_digests(self) -> set[str]:
        """Digests referenced by any project in this database (objects may be shared).

        Besides its own digest, an artifact may own companion objects, listed in its
        properties as ``"objects": {role: digest}`` (a dataset's Parquet copy, say).
        """
        found: set[str] = set()
        for digest, props in self._rows("SELECT digest, properties FROM artifact"):
            found.add(digest)
            if props and "objects" in props:
                extra = from_json(props).get("objects")
                if isinstance(extra, dict):
                    found.update(str(v) for v in extra.values())
        return found

    def counts(self) -> dict[str, Any]:
        project = {"project": self.project_id}
        kinds = self._rows(
            "SELECT kind, COUNT(*), COUNT(DISTINCT name), COALESCE(SUM(size), 0) FROM artifact "
            "WHERE project_id = :project GROUP BY kind",
            project,
        )
        states = self._rows(
            "SELECT state, COUNT(*) FROM execution WHERE project_id = :project "
            "AND type != 'register' AND state != 'running' GROUP BY state",
            project,
        )
        running = self._rows(
            f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE project_id = :project "
            "AND type != 'register' AND state = 'running'",
            project,
        )
        for record in map(execution_record, running):  # running or lost (derived)
            states.append((record.state, 1))
        metrics = self._rows(
            "SELECT COUNT(*) FROM metric JOIN execution ON metric.execution_id = execution.id "
            "WHERE execution.project_id = :project",
            project,
        )
        return {
            "kinds": {
                k: {"versions": n, "names": names, "bytes": int(size)}
                for k, n, names, size in kinds
            },
            "runs": _add_up(states),
            "metrics": int(metrics[0][0]),
        }


def _add_up(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state, n in pairs:
        counts[state] = counts.get(state, 0) + int(n)
    return counts

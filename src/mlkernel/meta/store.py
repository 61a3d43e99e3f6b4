"""The metadata store: SQLAlchemy Core over SQLite (default) or PostgreSQL.

Writes take the database's write lock up front (SQLite ``BEGIN IMMEDIATE`` with a long
busy timeout; PostgreSQL row locks and a retry on a unique-version race), so concurrent
processes queue instead of failing with "database is locked". Within a process one lock
serialises writers, as in datasette's single-writer design.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlkernel.errors import ConflictError, NotFoundError, StorageError
from mlkernel.meta.records import ArtifactRecord, ExecutionRecord, LineageEdge

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row

__all__ = ["MetaStore"]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 120_000
NOTIFY_CHANNEL = "mlk_meta"
_MIGRATE_LOCK_KEY = 7_160_417  # pg_advisory_lock key serialising first-time migrations


_ARTIFACT_COLUMNS = (
    "id, kind, name, version, digest, uri, size, properties, created_at, created_by, execution_id"
)


def _artifact(row: Row[Any]) -> ArtifactRecord:
    return ArtifactRecord(
        id=row.id,
        kind=row.kind,
        name=row.name,
        version=row.version,
        digest=row.digest,
        uri=row.uri,
        size=row.size,
        raw_properties=row.properties,
        created_at=row.created_at,
        created_by=row.created_by,
        execution_id=row.execution_id,
    )


def _param_rows(execution_id: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"execution_id": execution_id, "key": k, "value": json.dumps(v, default=str)}
        for k, v in params.items()
    ]


def _execution(row: Row[Any]) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id,
        name=row.name,
        type=row.type,
        state=row.state,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        host=row.host,
        pid=row.pid,
        user=row.user,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        env_artifact_id=row.env_artifact_id,
        cache_key=row.cache_key,
        code_digest=row.code_digest,
        context_id=row.context_id,
        resources=row.resources,
    )


class MetaStore:
    """One project's view of a metadata database."""

    def __init__(self, url: str, project_name: str, project_root: Path) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        self.engine, self._write_engine = self._make_engines(url)
        self._guard(self._migrate)
        self.project_id = self._guard(lambda: self._project(project_name, project_root))

    # -- connection set-up -------------------------------------------------------------

    def _make_engines(self, url: str) -> tuple[Engine, Engine]:
        from sqlalchemy import create_engine, event

        if not self.is_sqlite:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg2://" + url[len("postgresql://") :]
            engine = create_engine(url, pool_pre_ping=False, pool_size=2, max_overflow=8)
            return engine, engine

        path = url.split("sqlite:///", 1)[-1]
        if path and not Path(path).parent.exists():
            raise StorageError(f"metadata folder {Path(path).parent} is missing; run `mlk init`")

        def make(immediate: bool) -> Engine:
            eng = create_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            )

            @event.listens_for(eng, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                cur.close()
                if mode != "wal":  # pragma: no cover - file systems without shared memory
                    raise StorageError(
                        f"cannot put {path} in WAL mode (got {mode}); "
                        "move the project to a local disk"
                    )

            @event.listens_for(eng, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return eng

        reader, writer = make(False), make(True)
        return reader, writer

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; translate driver errors about an unusable database into StorageError."""
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            return fn()
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(self._describe(exc)) from None

    def _describe(self, exc: Exception) -> str:
        text = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        if self.is_sqlite:
            path = self.url.split("sqlite:///", 1)[-1]
            if "not a database" in text or "malformed" in text:
                return (
                    f"metadata database {path} is corrupt ({text}); restore it from a "
                    "backup, or move it away and run `mlk init` to start a new one"
                )
            return f"metadata database {path} cannot be used ({text}); check its permissions"
        safe = self.url.split("@")[-1]
        return f"PostgreSQL at {safe} cannot be used ({text}); check the server and the URL"

    def _migrate(self) -> None:
        from mlkernel.meta.migrations import HEAD, upgrade

        with self.engine.connect() as conn:
            try:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except Exception:
                current = None
        if current == HEAD:
            return
        with self._write_engine.begin() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK_KEY})")
            upgrade(conn)

    def _project(self, name: str, root: Path) -> int:
        from sqlalchemy import insert, select

        from mlkernel.meta.schema import project

        with self.engine.connect() as conn:
            found = conn.execute(select(project.c.id).where(project.c.name == name)).scalar()
        if found is not None:
            return int(found)
        with self.write() as conn:
            found = conn.execute(select(project.c.id).where(project.c.name == name)).scalar()
            if found is not None:
                return int(found)
            return int(
                conn.execute(
                    insert(project).values(
                        name=name, root=str(root), created_at=time.time(), settings={}
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )

    @contextmanager
    def write(self, notify: bool = False) -> Iterator[Connection]:
        """A write transaction; ``notify`` tells other processes' in-memory tables to refresh."""
        from sqlalchemy.exc import DatabaseError, OperationalError

        with self._write_lock:
            try:
                with self._write_engine.begin() as conn:
                    yield conn
                    if notify and not self.is_sqlite:
                        conn.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")
            except (DatabaseError, OperationalError) as exc:
                from sqlalchemy.exc import IntegrityError

                if isinstance(exc, IntegrityError):
                    raise
                raise StorageError(self._describe(exc)) from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            with self.engine.connect() as conn:
                yield conn
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(self._describe(exc)) from None

    def close(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()

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
        from sqlalchemy import insert

        from mlkernel.meta.schema import execution, param

        # Statements without .values(): bound from the parameter dict, compiled once and
        # served from SQLAlchemy's cache, which keeps a run's creation well under 1 ms.
        row = {
            "project_id": self.project_id,
            "context_id": context_id,
            "name": name,
            "type": type_,
            "state": state,
            "cache_key": cache_key,
            "code_digest": code_digest,
            "host": host,
            "pid": pid,
            "user": user,
            "started_at": time.time(),
        }
        with self.write() as conn:
            result = conn.execute(insert(execution), row)
            exec_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if params:
                conn.execute(insert(param), _param_rows(exec_id, params))
        return exec_id

    def add_params(self, execution_id: int, params: dict[str, Any]) -> None:
        from sqlalchemy import insert
        from sqlalchemy.exc import IntegrityError

        from mlkernel.meta.schema import param

        if not params:
            return
        try:
            with self.write() as conn:
                conn.execute(insert(param), _param_rows(execution_id, params))
        except IntegrityError:
            raise ConflictError(
                f"run {execution_id} already has a parameter among "
                f"{sorted(params)}; parameters are set once per run"
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
    ) -> None:
        """Mark an execution ended, writing its last buffered ``metrics`` in the same commit."""
        from sqlalchemy import bindparam, update

        from mlkernel.meta.schema import execution

        values: dict[str, Any] = {
            "state": state,
            "ended_at": time.time(),
            "error": error,
            "resources": resources,
            "env_artifact_id": env_artifact_id,
            "git_commit": git_commit,
            "git_dirty": git_dirty,
            "_id": execution_id,
        }
        stmt = update(execution).where(execution.c.id == bindparam("_id"))
        with self.write() as conn:
            if metrics:
                self._metrics(conn, metrics)
            conn.execute(stmt, values)

    def insert_metrics(self, rows: Sequence[tuple[int, str, int, float, float]]) -> None:
        """Rows of (execution_id, key, step, value, ts), written in one transaction."""
        if not rows:
            return
        with self.write() as conn:
            self._metrics(conn, rows)

    def _metrics(
        self, conn: Connection, rows: Sequence[tuple[int, str, int, float, float]]
    ) -> None:
        from sqlalchemy import insert

        from mlkernel.meta.schema import metric

        if self.is_sqlite:
            # The driver's executemany straight away: ~10x faster than per-row binding.
            conn.exec_driver_sql(
                "INSERT INTO metric (execution_id, key, step, value, ts) VALUES (?, ?, ?, ?, ?)",
                list(rows),
            )
        else:
            conn.execute(
                insert(metric),
                [
                    {"execution_id": e, "key": k, "step": s, "value": v, "ts": t}
                    for e, k, s, v, t in rows
                ],
            )

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        from sqlalchemy import select

        from mlkernel.meta.schema import execution

        with self.read() as conn:
            row = conn.execute(
                select(execution).where(
                    execution.c.id == execution_id, execution.c.project_id == self.project_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no run with id {execution_id}; run `mlk runs ls` to list runs")
        return _execution(row)

    def executions(self, ids: Iterable[int]) -> dict[int, ExecutionRecord]:
        from sqlalchemy import select

        from mlkernel.meta.schema import execution

        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self.read() as conn:
            rows = conn.execute(select(execution).where(execution.c.id.in_(wanted))).all()
        return {row.id: _execution(row) for row in rows}

    def list_executions(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        type_: str | None = None,
    ) -> list[ExecutionRecord]:
        from sqlalchemy import select

        from mlkernel.meta.schema import execution

        query = select(execution).where(execution.c.project_id == self.project_id)
        if state:
            query = query.where(execution.c.state == state)
        if name:
            query = query.where(execution.c.name == name)
        if type_:
            query = query.where(execution.c.type == type_)
        query = query.order_by(execution.c.id.desc()).limit(limit)
        with self.read() as conn:
            return [_execution(row) for row in conn.execute(query)]

    def params(self, execution_id: int) -> dict[str, Any]:
        from sqlalchemy import select

        from mlkernel.meta.schema import param

        with self.read() as conn:
            rows = conn.execute(
                select(param.c.key, param.c.value)
                .where(param.c.execution_id == execution_id)
                .order_by(param.c.key)
            ).all()
        return {key: json.loads(value) for key, value in rows}

    def metrics(
        self, execution_id: int, key: str | None = None
    ) -> list[tuple[str, int, float, float]]:
        """(key, step, value, ts) ordered by key then step."""
        from sqlalchemy import select

        from mlkernel.meta.schema import metric

        query = select(metric.c.key, metric.c.step, metric.c.value, metric.c.ts).where(
            metric.c.execution_id == execution_id
        )
        if key is not None:
            query = query.where(metric.c.key == key)
        with self.read() as conn:
            rows = conn.execute(query.order_by(metric.c.key, metric.c.step, metric.c.ts)).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def events(self, execution_id: int) -> list[tuple[int, str]]:
        """(artifact_id, direction) of one execution."""
        from sqlalchemy import select

        from mlkernel.meta.schema import event

        with self.read() as conn:
            rows = conn.execute(
                select(event.c.artifact_id, event.c.direction)
                .where(event.c.execution_id == execution_id)
                .order_by(event.c.id)
            ).all()
        return [(r[0], r[1]) for r in rows]

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
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        from mlkernel.meta.schema import artifact

        for _attempt in range(20):
            try:
                with self.write(notify=True) as conn:
                    latest = conn.execute(
                        select(artifact)
                        .where(
                            artifact.c.project_id == self.project_id,
                            artifact.c.kind == kind,
                            artifact.c.name == name,
                        )
                        .order_by(artifact.c.version.desc())
                        .limit(1)
                    ).first()
                    if latest is not None and dedupe and latest.digest == digest:
                        record = _artifact(latest)
                        if execution_id is not None:
                            self._event(conn, execution_id, record.id, "out")
                        return record, False
                    version = 1 if latest is None else latest.version + 1
                    now = time.time()
                    new_id = int(
                        conn.execute(
                            insert(artifact).values(
                                project_id=self.project_id,
                                kind=kind,
                                name=name,
                                version=version,
                                digest=digest,
                                uri=uri,
                                size=size,
                                properties=properties,
                                created_at=now,
                                created_by=created_by,
                                execution_id=execution_id,
                            )
                        ).inserted_primary_key[0]  # type: ignore[index]
                    )
                    if execution_id is not None:
                        self._event(conn, execution_id, new_id, "out")
                    return ArtifactRecord(
                        new_id,
                        kind,
                        name,
                        version,
                        digest,
                        uri,
                        size,
                        properties,
                        now,
                        created_by,
                        execution_id,
                    ), True
            except IntegrityError:
                # Another process took this version number between our read and insert.
                time.sleep(0.001 * (_attempt + 1))
        raise ConflictError(f"could not allocate a version of {kind}:{name}; retry")

    def _event(self, conn: Connection, execution_id: int, artifact_id: int, direction: str) -> None:
        from sqlalchemy import insert, select

        from mlkernel.meta.schema import event

        exists = conn.execute(
            select(event.c.id).where(
                event.c.execution_id == execution_id,
                event.c.artifact_id == artifact_id,
                event.c.direction == direction,
            )
        ).first()
        if exists is None:
            conn.execute(
                insert(event).values(
                    execution_id=execution_id,
                    artifact_id=artifact_id,
                    direction=direction,
                    at=time.time(),
                )
            )

    def add_event(self, execution_id: int, artifact_id: int, direction: str) -> None:
        with self.write() as conn:
            self._event(conn, execution_id, artifact_id, direction)

    def find_by_digest(self, kind: str, digest: str) -> ArtifactRecord | None:
        from sqlalchemy import select

        from mlkernel.meta.schema import artifact

        with self.read() as conn:
            row = conn.execute(
                select(artifact)
                .where(
                    artifact.c.project_id == self.project_id,
                    artifact.c.kind == kind,
                    artifact.c.digest == digest,
                )
                .order_by(artifact.c.id)
                .limit(1)
            ).first()
        return None if row is None else _artifact(row)

    def load_artifacts(self, after_id: int = 0) -> list[ArtifactRecord]:
        """Artifacts with an id above ``after_id``, oldest first.

        Plain SQL with positional rows and properties left as JSON text (parsed when read):
        loading 10,000 artifacts this way takes a fraction of the ORM-typed path.
        """
        from sqlalchemy import text

        query = text(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifact "
            "WHERE project_id = :project AND id > :after ORDER BY id"
        )
        with self.read() as conn:
            rows = conn.execute(query, {"project": self.project_id, "after": after_id}).all()
        return [ArtifactRecord(*row) for row in rows]

    def load_aliases(self) -> dict[tuple[str, str, str], int]:
        from sqlalchemy import select

        from mlkernel.meta.schema import alias

        with self.read() as conn:
            rows = conn.execute(
                select(alias.c.kind, alias.c.name, alias.c.alias, alias.c.version).where(
                    alias.c.project_id == self.project_id
                )
            ).all()
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def set_alias(self, kind: str, name: str, alias_name: str, version: int, by: str) -> int | None:
        """Point an alias at ``version``; return the version it pointed at before."""
        from sqlalchemy import insert, select, update

        from mlkernel.meta.schema import alias, alias_history

        key = (
            alias.c.project_id == self.project_id,
            alias.c.kind == kind,
            alias.c.name == name,
            alias.c.alias == alias_name,
        )
        with self.write(notify=True) as conn:
            before = conn.execute(select(alias.c.version).where(*key)).scalar()
            now = time.time()
            if before is None:
                conn.execute(
                    insert(alias).values(
                        project_id=self.project_id,
                        kind=kind,
                        name=name,
                        alias=alias_name,
                        version=version,
                        updated_at=now,
                        updated_by=by,
                    )
                )
            else:
                conn.execute(
                    update(alias).where(*key).values(version=version, updated_at=now, updated_by=by)
                )
            conn.execute(
                insert(alias_history).values(
                    project_id=self.project_id,
                    kind=kind,
                    name=name,
                    alias=alias_name,
                    from_version=before,
                    to_version=version,
                    at=now,
                    by=by,
                )
            )
        return None if before is None else int(before)

    def remove_alias(self, kind: str, name: str, alias_name: str, by: str) -> int:
        from sqlalchemy import delete, insert, select

        from mlkernel.meta.schema import alias, alias_history

        key = (
            alias.c.project_id == self.project_id,
            alias.c.kind == kind,
            alias.c.name == name,
            alias.c.alias == alias_name,
        )
        with self.write(notify=True) as conn:
            before = conn.execute(select(alias.c.version).where(*key)).scalar()
            if before is None:
                raise NotFoundError(
                    f"{kind}:{name} has no alias {alias_name!r}; "
                    f"run `mlk show {kind}:{name}` to see its aliases"
                )
            conn.execute(delete(alias).where(*key))
            conn.execute(
                insert(alias_history).values(
                    project_id=self.project_id,
                    kind=kind,
                    name=name,
                    alias=alias_name,
                    from_version=before,
                    to_version=None,
                    at=time.time(),
                    by=by,
                )
            )
        return int(before)

    def alias_history(self, kind: str, name: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from mlkernel.meta.schema import alias_history as h

        with self.read() as conn:
            rows = conn.execute(
                select(h)
                .where(h.c.project_id == self.project_id, h.c.kind == kind, h.c.name == name)
                .order_by(h.c.id)
            ).all()
        return [
            {"alias": r.alias, "from": r.from_version, "to": r.to_version, "at": r.at, "by": r.by}
            for r in rows
        ]

    # -- lineage ---------------------------------------------------------------------

    def lineage_edges(
        self, artifact_id: int, direction: str, max_depth: int = 100
    ) -> list[LineageEdge]:
        """The upstream (``up``) or downstream (``down``) closure in one recursive query.

        Upstream: the execution that produced an artifact, and that execution's inputs,
        repeated. Downstream: the executions that read an artifact, and their outputs.
        """
        if direction == "up":
            here, there = "out", "in"
        else:
            here, there = "in", "out"
        sql = f"""
            WITH RECURSIVE walk(artifact_id, execution_id, other_id, depth) AS (
                SELECT e1.artifact_id, e1.execution_id, e2.artifact_id, 1
                  FROM event e1 JOIN event e2
                    ON e2.execution_id = e1.execution_id AND e2.direction = '{there}'
                 WHERE e1.artifact_id = :start AND e1.direction = '{here}'
                UNION
                SELECT e1.artifact_id, e1.execution_id, e2.artifact_id, w.depth + 1
                  FROM walk w
                  JOIN event e1 ON e1.artifact_id = w.other_id AND e1.direction = '{here}'
                  JOIN event e2 ON e2.execution_id = e1.execution_id
                               AND e2.direction = '{there}'
                 WHERE w.depth < :max_depth
            )
            SELECT artifact_id, execution_id, other_id, MIN(depth) FROM walk
             GROUP BY artifact_id, execution_id, other_id ORDER BY MIN(depth)
        """
        from sqlalchemy import text

        with self.read() as conn:
            rows = conn.execute(text(sql), {"start": artifact_id, "max_depth": max_depth}).all()
        if direction == "up":
            return [
                LineageEdge(child_id=r[0], execution_id=r[1], parent_id=r[2], depth=r[3])
                for r in rows
            ]
        return [
            LineageEdge(child_id=r[2], execution_id=r[1], parent_id=r[0], depth=r[3]) for r in rows
        ]

    def producers_without_inputs(self, artifact_ids: Iterable[int]) -> dict[int, int]:
        """artifact id -> the execution that produced it (for artifacts with a producer)."""
        from sqlalchemy import select

        from mlkernel.meta.schema import event

        ids = sorted(set(artifact_ids))
        if not ids:
            return {}
        with self.read() as conn:
            rows = conn.execute(
                select(event.c.artifact_id, event.c.execution_id).where(
                    event.c.artifact_id.in_(ids), event.c.direction == "out"
                )
            ).all()
        return {r[0]: r[1] for r in rows}

    # -- housekeeping ----------------------------------------------------------------

    def referenced_digests(self) -> set[str]:
        """Digests referenced by any project in this database (objects may be shared)."""
        from sqlalchemy import select

        from mlkernel.meta.schema import artifact

        with self.read() as conn:
            return {r[0] for r in conn.execute(select(artifact.c.digest).distinct())}

    def counts(self) -> dict[str, Any]:
        from sqlalchemy import func, select

        from mlkernel.meta.schema import artifact, execution, metric

        with self.read() as conn:
            kinds = conn.execute(
                select(
                    artifact.c.kind,
                    func.count(),
                    func.count(func.distinct(artifact.c.name)),
                    func.coalesce(func.sum(artifact.c.size), 0),
                )
                .where(artifact.c.project_id == self.project_id)
                .group_by(artifact.c.kind)
            ).all()
            states = conn.execute(
                select(execution.c.state, func.count())
                .where(execution.c.project_id == self.project_id, execution.c.type != "register")
                .group_by(execution.c.state)
            ).all()
            metrics = conn.execute(
                select(func.count())
                .select_from(metric.join(execution, metric.c.execution_id == execution.c.id))
                .where(execution.c.project_id == self.project_id)
            ).scalar()
        return {
            "kinds": {
                k: {"versions": n, "names": names, "bytes": int(size)}
                for k, n, names, size in kinds
            },
            "runs": {s: n for s, n in states},
            "metrics": int(metrics or 0),
        }


def db_file(url: str) -> str | None:
    """The SQLite file behind ``url``, if it is one."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    return None

"""Metadata queries of pipeline runs: their contexts, step executions and cache hits.

Mixed into :class:`mlkernel.meta.store.MetaStore`, which provides the connection and the
project; kept apart so that the store stays one concern per module.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from mlkernel.errors import NotFoundError
from mlkernel.meta.liveness import process_start
from mlkernel.meta.records import ExecutionRecord
from mlkernel.meta.rows import (
    EXECUTION_COLUMNS,
    dump,
    execution_record,
    from_json,
    id_list,
    state_filter,
)

if TYPE_CHECKING:
    from mlkernel.meta.db import Tx

__all__ = ["PipelineQueries"]


class PipelineQueries:
    """Pipeline-run queries; see the module docstring."""

    if TYPE_CHECKING:
        project_id: int

        def write(self) -> AbstractContextManager[Tx]: ...
        def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]: ...
        def _event(self, tx: Tx, execution_id: int, artifact_id: int, direction: str) -> None: ...
        def _params(self, tx: Tx, execution_id: int, params: dict[str, Any]) -> None: ...

    def _insert_execution(self, tx: Tx, values: dict[str, Any]) -> int:
        row = {
            "project": self.project_id,
            "context": None,
            "cache_key": None,
            "code_digest": None,
            "ended": None,
            "error": None,
            "resources": None,
            "env": None,
            **values,
        }
        row["proc_start"] = process_start(int(row["pid"]))
        if row["resources"] is not None:
            row["resources"] = dump(row["resources"])
        return tx.insert(
            "INSERT INTO execution (project_id, context_id, name, type, state, cache_key, "
            'code_digest, host, pid, "user", started_at, ended_at, error, resources, '
            "env_artifact_id, proc_start) VALUES (:project, :context, :name, :type, :state, "
            ":cache_key, :code_digest, :host, :pid, :user, :started, :ended, :error, "
            ":resources, :env, :proc_start)",
            row,
        )

    def start_pipeline(
        self,
        name: str,
        *,
        host: str,
        pid: int,
        user: str,
        params: dict[str, Any],
        properties: dict[str, Any],
    ) -> tuple[int, int]:
        """A pipeline run: its context (grouping its steps) and its execution, in one commit."""
        import uuid

        now = time.time()
        with self.write() as tx:
            context_id = tx.insert(
                "INSERT INTO context (project_id, type, name, created_at, properties) "
                "VALUES (:project, 'pipeline_run', :name, :at, :props)",
                {
                    "project": self.project_id,
                    "name": f"{name}-{uuid.uuid4().hex[:16]}",
                    "at": now,
                    "props": dump(properties),
                },
            )
            execution_id = self._insert_execution(
                tx,
                {
                    "context": context_id,
                    "name": name,
                    "type": "pipeline",
                    "state": "running",
                    "host": host,
                    "pid": pid,
                    "user": user,
                    "started": now,
                },
            )
            if params:
                self._params(tx, execution_id, params)
        return execution_id, context_id

    def record_step(
        self,
        name: str,
        *,
        state: str,
        context_id: int | None,
        host: str,
        pid: int,
        user: str,
        params: dict[str, Any] | None = None,
        inputs: Sequence[int] = (),
        outputs: Sequence[int] = (),
        cache_key: str | None = None,
        code_digest: str | None = None,
        resources: dict[str, Any] | None = None,
        env_artifact_id: int | None = None,
        error: str | None = None,
        ended: bool = False,
        metrics: dict[str, float] | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
    ) -> int:
        """A step execution with its params, input and output events, in one commit
        (``started_at``/``ended_at``: when it really ran, if not now; a tuning trial)."""
        now = time.time()
        end = ended_at if ended_at is not None else now
        with self.write() as tx:
            execution_id = self._insert_execution(
                tx,
                {
                    "context": context_id,
                    "name": name,
                    "type": "step",
                    "state": state,
                    "cache_key": cache_key,
                    "code_digest": code_digest,
                    "host": host,
                    "pid": pid,
                    "user": user,
                    "started": started_at if started_at is not None else now,
                    "ended": end if ended else None,
                    "error": error,
                    "resources": resources,
                    "env": env_artifact_id,
                },
            )
            if params:
                self._params(tx, execution_id, params)
            for artifact_id in dict.fromkeys(inputs):
                self._event(tx, execution_id, artifact_id, "in")
            for artifact_id in dict.fromkeys(outputs):
                self._event(tx, execution_id, artifact_id, "out")
            if metrics:
                tx.insert_rows(
                    "metric",
                    "execution_id, key, step, value, ts",
                    [(execution_id, k, 0, float(v), end) for k, v in metrics.items()],
                )
        return execution_id

    def find_cached(self, cache_key: str) -> ExecutionRecord | None:
        """The newest step execution that completed (or was reused) with this cache key."""
        rows = self._rows(
            f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE project_id = :project "
            "AND cache_key = :key AND state IN ('completed', 'cached') ORDER BY id DESC LIMIT 1",
            {"project": self.project_id, "key": cache_key},
        )
        return execution_record(rows[0]) if rows else None

    def context_executions(self, context_ids: Iterable[int]) -> list[ExecutionRecord]:
        """Executions of these contexts (a pipeline run and its steps), oldest first."""
        marks = id_list(context_ids)
        if marks is None:
            return []
        rows = self._rows(
            f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE context_id IN ({marks}) ORDER BY id"
        )
        return [execution_record(row) for row in rows]

    def params_of(self, execution_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The parameters of several executions (a pipeline run's steps) in one query."""
        marks = id_list(execution_ids)
        if marks is None:
            return {}
        found: dict[int, dict[str, Any]] = {}
        for execution_id, key, value in self._rows(
            f"SELECT execution_id, key, value FROM param WHERE execution_id IN ({marks}) "
            "ORDER BY execution_id, key"
        ):
            found.setdefault(int(execution_id), {})[key] = from_json(value)
        return found

    def metrics_of(self, execution_ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """The last value of each metric of several executions, in one query (a value
        stored as NULL, which is how NaN is stored, reads as NaN)."""
        marks = id_list(execution_ids)
        if marks is None:
            return {}
        found: dict[int, dict[str, float]] = {}
        for execution_id, key, value in self._rows(
            f"SELECT execution_id, key, value FROM metric WHERE execution_id IN ({marks}) "
            "ORDER BY execution_id, key, step, ts"
        ):
            found.setdefault(int(execution_id), {})[key] = (
                float("nan") if value is None else float(value)
            )
        return found

    def get_context(self, context_id: int) -> dict[str, Any]:
        rows = self._rows(
            "SELECT id, type, name, created_at, properties FROM context "
            "WHERE id = :id AND project_id = :project",
            {"id": context_id, "project": self.project_id},
        )
        if not rows:
            raise NotFoundError(f"no context {context_id}; run `mlk runs ls` to list runs")
        r = rows[0]
        return {
            "id": r[0],
            "type": r[1],
            "name": r[2],
            "created_at": r[3],
            "properties": from_json(r[4]),
        }

    def contexts(self, type_: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT id, type, name, created_at, properties FROM context "
            "WHERE project_id = :project AND type = :type ORDER BY id",
            {"project": self.project_id, "type": type_},
        )
        return [
            {
                "id": r[0],
                "type": r[1],
                "name": r[2],
                "created_at": r[3],
                "properties": from_json(r[4]),
            }
            for r in rows
        ]

    def put_context(self, type_: str, name: str, properties: dict[str, Any]) -> int:
        """Create or replace the properties of the context (type, name)."""
        key = {"project": self.project_id, "type": type_, "name": name}
        where = "project_id = :project AND type = :type AND name = :name"
        with self.write() as tx:
            row = tx.execute(f"SELECT id FROM context WHERE {where}", key).fetchone()
            if row is None:
                return tx.insert(
                    "INSERT INTO context (project_id, type, name, created_at, properties) "
                    "VALUES (:project, :type, :name, :at, :props)",
                    {**key, "at": time.time(), "props": dump(properties)},
                )
            tx.execute(
                f"UPDATE context SET properties = :props WHERE {where}",
                {**key, "props": dump(properties)},
            )
            return int(row[0])

    def list_runs(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        exclude_types: Sequence[str] = ("register", "step"),
    ) -> list[ExecutionRecord]:
        where = ["project_id = :project"]
        stored, derived = state_filter(state)  # running and lost: one state when stored
        params: dict[str, Any] = {"project": self.project_id, "limit": int(limit)}
        for column, value in (("state", stored), ("name", name)):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        for i, type_ in enumerate(exclude_types):
            where.append(f"type != :x{i}")
            params[f"x{i}"] = type_
        rows = self._rows(
            f"SELECT {EXECUTION_COLUMNS} FROM execution WHERE {' AND '.join(where)} "
            "ORDER BY id DESC" + ("" if derived else " LIMIT :limit"),
            params,
        )
        records = [execution_record(row) for row in rows]
        return [r for r in records if r.state == state][:limit] if derived else records

    def end_executions(self, ids: Iterable[int], state: str, error: str | None) -> None:
        """Mark still-running executions ended (a run cancelled after its process died)."""
        with self.write() as tx:
            for execution_id in ids:
                tx.execute(
                    "UPDATE execution SET state = :state, ended_at = :at, error = :error "
                    "WHERE id = :id AND state = 'running'",
                    {"state": state, "at": time.time(), "error": error, "id": execution_id},
                )

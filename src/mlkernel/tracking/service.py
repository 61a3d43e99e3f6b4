"""The run service behind ``k.tracking``: start tracked runs, list and describe runs, read
their metrics, end runs from outside their process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlkernel.authz import Action, Actor, operation
from mlkernel.refs import validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ExecutionRecord
    from mlkernel.tracking.results import RunInfo
    from mlkernel.tracking.run import Run

__all__ = ["RunService"]


class RunService:
    """Runs of one project. Reached as ``k.tracking``."""

    def __init__(self, ctx: Context, artifacts: ArtifactService) -> None:
        self._ctx = ctx
        self._artifacts = artifacts

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    @operation(
        "runs.start",
        Action.WRITE,
        resource="name",
        no_cli="SDK: `with k.start_run(...) as run`; `mlk run` runs pipelines",
    )
    def start(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        inputs: list[str] | None = None,
        type_: str = "run",
    ) -> Run:
        """A tracked execution; ``type_`` tells runs from mlkernel's own jobs (``profile``...)."""
        from mlkernel.tracking.run import Run, _check_key

        ctx = self._ctx
        validate_name(name, "run name")
        for key in params or {}:
            _check_key(key)
        input_records = [ctx.table.resolve(ref) for ref in inputs or []]
        execution_id = ctx.meta.insert_execution(
            name,
            type_,
            host=ctx.host,
            pid=os.getpid(),
            user=ctx.actor.name,
            params=dict(params or {}),
        )
        for record in input_records:
            ctx.meta.add_event(execution_id, record.id, "in")
        return Run(ctx, self._artifacts, execution_id, name)

    @operation(
        "runs.ls_all", Action.READ, no_cli="SDK: `mlk runs ls` lists through the pipeline service"
    )
    def ls(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        include_internal: bool = False,
    ) -> list[ExecutionRecord]:
        """Runs newest first, without the one-off ``register`` executions unless asked."""
        runs = self._ctx.meta.list_executions(limit=limit, state=state, name=name)
        if include_internal:
            return runs
        return [r for r in runs if r.type != "register"]

    @operation(
        "runs.info",
        Action.READ,
        resource="run_id",
        no_cli="SDK: `mlk runs show` shows through the pipeline service",
    )
    def info(self, run_id: int) -> RunInfo:
        """One run: its record, parameters, metric summaries, inputs and outputs."""
        from mlkernel.tracking.results import MetricSummary, RunInfo

        ctx = self._ctx
        record = ctx.meta.get_execution(run_id)
        series: dict[str, list[float]] = {}
        for key, _step, value, _ts in ctx.meta.metrics(run_id):
            series.setdefault(key, []).append(value)
        events = ctx.meta.events(run_id)
        env = record.env_artifact_id
        return RunInfo(
            record=record,
            params=ctx.meta.params(run_id),
            metrics={k: MetricSummary.of(v) for k, v in series.items()},
            inputs=[ctx.table.get(a).ref for a, d in events if d == "in"],
            outputs=[ctx.table.get(a).ref for a, d in events if d == "out"],
            environment=ctx.table.get(env).ref if env is not None else None,
        )

    @operation(
        "runs.metrics",
        Action.READ,
        resource="run_id",
        no_cli="SDK: a run's metric series as values",
    )
    def metrics(self, run_id: int, key: str | None = None) -> list[tuple[str, int, float, float]]:
        """The metric rows (key, step, value, timestamp) of a run, of one ``key``."""
        self._ctx.meta.get_execution(run_id)
        return self._ctx.meta.metrics(run_id, key)

    @operation("runs.end", Action.WRITE, resource="run_id", cli="runs fail")
    def end(self, run_id: int, state: str, reason: str | None = None) -> str:
        """End a running or lost run as ``cancelled`` or ``failed`` (see
        :mod:`mlkernel.tracking.ending`); the outcome in words."""
        from mlkernel.tracking.ending import end_run

        return end_run(self._ctx, run_id, state, reason)

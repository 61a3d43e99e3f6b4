"""What a pipeline run writes to the metadata store: the run's execution (with its git
state), one execution per step (``cached``, ``skipped``, ``running`` then its end state,
one per tuning trial), the events linking them to their input and output artifacts, the
step outputs and logs registered as artifacts, and the steps' metrics.

Only the thread that runs the pipeline calls a :class:`Recorder` (one writer).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.pipeline.results import StepResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.pipeline.cache import Hit, Prepared
    from mlkernel.pipeline.executors import LogSink
    from mlkernel.pipeline.graph import Graph, Node

__all__ = ["Recorder", "Running"]

#: a step's result with its output artifact (None when it has none or did not complete)
Recorded = tuple[StepResult, "ArtifactRecord | None"]


@dataclass(slots=True)
class Running:
    """A started step: its execution, its log, when it started and what it was given."""

    node: Node
    execution_id: int
    sink: LogSink
    started: float
    prepared: Prepared


class Recorder:
    """Records one run of ``graph`` and its steps: executions, events and metrics in the
    metadata store; step outputs and logs registered through ``artifacts``."""

    def __init__(
        self,
        ctx: Context,
        artifacts: ArtifactService,
        catalog: CatalogService,
        graph: Graph,
        *,
        env_id: int | None,
        executor: str,
        echo: Callable[[str], None] | None,
    ) -> None:
        self.ctx = ctx
        self.artifacts = artifacts
        self.catalog = catalog
        self.graph = graph
        self.env_id = env_id
        self.executor = executor
        self.echo = echo  # live step output and progress lines, or None
        self.run_id = 0
        self.context_id = 0
        self.started = 0.0
        self.cached_from: dict[str, int] = {}  # cached step -> the execution it reused
        self._git: list[Any] = []
        self._git_thread: threading.Thread | None = None

    def say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    def _who(self) -> dict[str, Any]:
        return {"host": self.ctx.host, "pid": os.getpid(), "user": self.ctx.actor.name}

    def log_dir(self) -> Path:
        return self.ctx.state_dir / "logs" / f"run-{self.run_id}"

    # -- the run ---------------------------------------------------------------------

    def start(self, properties: dict[str, Any]) -> int:
        """Record the run as started (its git state is read meanwhile); its id."""
        from mlkernel.provenance import git_state

        root = self.ctx.root
        self._git_thread = threading.Thread(
            target=lambda: self._git.append(git_state(root)), name="mlk-git", daemon=True
        )
        self._git_thread.start()
        self.run_id, self.context_id = self.ctx.meta.start_pipeline(
            self.graph.name, params=dict(self.graph.params), properties=properties, **self._who()
        )
        self.started = time.time()
        return self.run_id

    def end(self, state: str, error: str | None, results: dict[str, StepResult]) -> None:
        if self._git_thread is not None:
            self._git_thread.join(timeout=10)
        git = self._git
        self.ctx.meta.finish_execution(
            self.run_id,
            state,
            error=error,
            resources={
                "wall_s": round(time.time() - self.started, 6),
                "steps": {name: r.state for name, r in results.items()},
            },
            env_artifact_id=self.env_id,
            git_commit=git[0].commit if git else None,
            git_dirty=git[0].dirty if git else None,
        )

    def cached_metrics(self, results: dict[str, StepResult]) -> None:
        """A cached step's metrics are those of the execution whose output it reused."""
        if not self.cached_from:
            return
        found = self.ctx.meta.metrics_of(self.cached_from.values())
        for name, source in self.cached_from.items():
            if found.get(source):
                results[name].metrics = found[source]

    # -- steps that do not run -------------------------------------------------------

    def cached(self, node: Node, prepared: Prepared, hit: Hit) -> Recorded:
        source, output_id = hit
        output = self.catalog.get(int(output_id)) if output_id is not None else None
        execution_id = self.ctx.meta.record_step(
            node.name,
            state="cached",
            context_id=self.context_id,
            params=prepared.params,
            inputs=prepared.inputs,
            outputs=[output.id] if output is not None else [],
            cache_key=prepared.cache_key,
            code_digest=prepared.code_digest,
            resources={"output": output_id, "cached_from": source},
            env_artifact_id=self.env_id,
            ended=True,
            **self._who(),
        )
        self.cached_from[node.name] = source
        self.say(f"  cached   {node.name}" + (f" -> {output.ref}" if output else ""))
        ref = output.ref if output else None
        return StepResult(node.name, "cached", execution_id, ref, duration=0.0), output

    def skipped(self, node: Node, why: str) -> StepResult:
        execution_id = self.ctx.meta.record_step(
            node.name,
            state="skipped",
            context_id=self.context_id,
            error=why,
            ended=True,
            **self._who(),
        )
        self.say(f"  skipped  {node.name} ({why})")
        return StepResult(node.name, "skipped", execution_id, error=why)

    # -- steps that run --------------------------------------------------------------

    def running(self, node: Node, prepared: Prepared) -> Running:
        """Record ``node`` as running and open its log."""
        from mlkernel.pipeline.executors import LogSink

        execution_id = self.ctx.meta.record_step(
            node.name,
            state="running",
            context_id=self.context_id,
            params=prepared.params,
            inputs=prepared.inputs,
            cache_key=prepared.cache_key,
            code_digest=prepared.code_digest,
            env_artifact_id=self.env_id,
            **self._who(),
        )
        log_dir = self.log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        sink = LogSink(log_dir / f"{node.name}.log", node.name, self.echo)
        self.say(f"  running  {node.name}")
        return Running(node, execution_id, sink, time.time(), prepared)

    def finished(self, step: Running, result: dict[str, Any]) -> Recorded:
        """Record how a running step ended: its log, trials, output and metrics."""
        step.sink.close()
        log_id = self._store_log(step)
        duration = time.time() - step.started
        resources = {
            "log": log_id,
            "attempts": result.get("attempts", 1),
            "wall_s": result.get("wall_s"),
            "max_rss_kb": result.get("max_rss_kb"),
            "executor": self.executor,
        }
        # A tuning node reports its trials; stopped mid-search, those run so far.
        trials = result.get("trials")
        if trials is None and not result["ok"]:
            trials = getattr(step.node.step, "done_trials", None)
        if trials:
            resources["trials"] = self._trials(step, trials)
            resources["best"] = result.get("best")
        if not result["ok"]:
            return self._failed(step, result, resources, duration), None
        return self._completed(step, result, resources, duration)

    def _failed(
        self, step: Running, result: dict[str, Any], resources: dict[str, Any], duration: float
    ) -> StepResult:
        cancelled = result.get("error") == "cancelled"
        state = "cancelled" if cancelled else "failed"
        error = "cancelled by the user" if cancelled else result["error"]
        self.ctx.meta.finish_execution(step.execution_id, state, error=error, resources=resources,
                                     env_artifact_id=self.env_id)  # fmt: skip
        self.say(f"  {state:<8} {step.node.name}: {error}")
        return StepResult(step.node.name, state, step.execution_id, None, error, duration)

    def _completed(
        self, step: Running, result: dict[str, Any], resources: dict[str, Any], duration: float
    ) -> Recorded:
        node, execution_id = step.node, step.execution_id
        output = self._store_output(node, execution_id, result.get("output"))
        resources["output"] = output.id if output is not None else None
        metrics = result.get("metrics") or None
        now = time.time()
        rows = [(execution_id, k, 0, float(v), now) for k, v in (metrics or {}).items()]
        self.ctx.meta.finish_execution(
            execution_id, "completed", resources=resources, env_artifact_id=self.env_id,
            metrics=rows,
        )  # fmt: skip
        shown = f" -> {output.ref}" if output else ""
        self.say(f"  ran      {node.name} ({duration:.2f} s){shown}")
        ref = output.ref if output else None
        return StepResult(node.name, "ran", execution_id, ref, None, duration, metrics), output

    def _trials(self, step: Running, trials: list[dict[str, Any]]) -> list[int]:
        """Each tuning trial as an execution with its parameters and metrics."""
        return [self._trial(step, trial) for trial in trials]

    def _trial(self, step: Running, trial: dict[str, Any]) -> int:
        ok = bool(trial.get("ok"))
        failed = "cancelled" if trial.get("error") == "cancelled" else "failed"
        return self.ctx.meta.record_step(
            f"{step.node.name}.trial-{trial['number']}",
            state="completed" if ok else failed,
            context_id=self.context_id,
            params={**step.prepared.params, **trial["params"]},
            inputs=step.prepared.inputs,
            error=None if ok else trial.get("error"),
            resources={
                "trial": trial["number"],
                "tune": step.node.name,
                "score": trial.get("score"),
                "searched": trial["params"],  # the values the search chose
                "output_digest": (trial.get("output") or {}).get("digest"),
                "wall_s": trial.get("wall_s"),
                "max_rss_kb": trial.get("max_rss_kb"),
            },
            metrics=trial.get("metrics") if ok else None,
            env_artifact_id=self.env_id,
            ended=True,
            started_at=trial.get("started"),
            ended_at=trial.get("ended"),
            **self._who(),
        )

    # -- artifacts -------------------------------------------------------------------

    def _store_output(
        self, node: Node, execution_id: int, output: dict[str, Any] | None
    ) -> ArtifactRecord | None:
        if output is None:
            return None
        options = node.options
        name = options.output_name or options.name
        properties = {k: v for k, v in output.items() if k not in ("digest", "size")}
        if options.output_kind == "dataset":
            properties.update(self._dataset_properties(node, name, properties))
        properties.update({"pipeline": self.graph.name, "step": node.name})
        record, _ = self.artifacts.register(
            options.output_kind,
            name,
            digest=output["digest"],
            size=int(output["size"]),
            properties=properties,
            execution_id=execution_id,
        )
        return record

    def _dataset_properties(
        self, node: Node, name: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        """What a dataset version records beyond its table (the worker described that)."""
        from mlkernel.data.tables import schema_changes

        versions = self.ctx.table.versions("dataset", name)
        previous = versions[-1] if versions else None
        return {
            "source": f"step {node.name}",
            "schema_changes": schema_changes(previous, properties.get("schema", [])),
        }

    def _store_log(self, step: Running) -> int | None:
        path = step.sink.path
        if not path.exists() or path.stat().st_size == 0:
            return None
        objects = self.ctx.objects
        with objects.writing():  # gc waits from the put until the commit
            digest, size = objects.put_file(path)
            record, _ = self.artifacts.register(
                "file",
                f"{self.graph.name}.{step.node.name}.log",
                digest=digest,
                size=size,
                properties={"format": "file", "role": "log", "run": self.run_id},
                execution_id=step.execution_id,
            )
        return record.id

"""Running a traced pipeline: the DAG in order, independent steps in parallel, each step
cached, retried, timed out, logged and recorded as an execution.

:class:`Runner` is the entry: it checks the run's options, then puts together

- the cache (cache.py): each step's inputs and cache key, and the earlier execution it
  may reuse: SHA-256 of the code digest, the parameters, the inputs' digests, the
  output's name and the environment digest; a completed execution with that key whose
  output still exists is reused as a ``cached`` execution with the same events;
- the recording (record.py): the run's execution, one per step (``running`` until its
  output, log, metrics, duration and peak memory are recorded when it ends);
- the loop (loop.py): the DAG in order on the executor; a failed step skips everything
  downstream of it while other branches go on; Ctrl-C (or SIGTERM) ends the running
  steps' process groups and marks the run ``cancelled``.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from mlkernel.errors import UsageError
from mlkernel.pipeline.cache import StepCache
from mlkernel.pipeline.loop import Loop
from mlkernel.pipeline.record import Recorder
from mlkernel.pipeline.results import RunOptions, RunResult, SafeEcho, StepResult

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.pipeline.graph import Graph
    from mlkernel.pipeline.settings import PipelineSettings
    from mlkernel.provenance import Environment

__all__ = ["RunOptions", "RunResult", "Runner", "SafeEcho", "StepResult"]

EXECUTORS = ("inline", "process", "ray")  # not imported from executors: a no-op run needs none


class Runner:
    """One run of a traced pipeline, with its options checked before anything is recorded.

    ``artifacts`` stores the steps' outputs and logs and the run's environment;
    ``catalog`` finds the artifacts steps read; ``settings`` are the project's defaults.
    """

    def __init__(
        self,
        ctx: Context,
        artifacts: ArtifactService,
        catalog: CatalogService,
        graph: Graph,
        options: RunOptions,
        settings: PipelineSettings,
        *,
        spec: str | None = None,
        target: str | None = None,
        reuse: dict[str, int] | None = None,
        overrides: dict[str, Any] | None = None,
        env: Environment | None = None,
    ) -> None:
        self.ctx = ctx
        self.artifacts = artifacts
        self.catalog = catalog
        self.graph = graph
        self.options = options
        self.spec = spec
        self.target = target
        self.reuse = reuse or {}  # step name -> execution to reuse (--resume)
        self.overrides = overrides or {}
        self.env = env
        self.settings = settings
        self.executor_name = options.executor or settings.executor or "process"
        if self.executor_name not in EXECUTORS:
            raise UsageError(
                f"executor {self.executor_name!r} is unknown; use one of: {', '.join(EXECUTORS)}"
            )
        workers = options.workers or settings.workers or min(4, os.cpu_count() or 1)
        if not isinstance(workers, int) or workers < 1:
            raise UsageError(f"workers is {workers!r}; use a positive integer")
        self.workers = workers
        ml = options.ml_mode if options.ml_mode is not None else settings.ml_mode
        self.ml_mode = bool(ml) and self.executor_name == "process"
        self.echo = SafeEcho(options.echo) if options.echo is not None else None

    def run(self) -> RunResult:
        from mlkernel.provenance import environment

        ctx, artifacts = self.ctx, self.artifacts
        env = self.env or environment(ctx.cache_dir)
        recorder = Recorder(
            ctx, artifacts, self.catalog, self.graph, env_id=artifacts.log_env(env).id,
            executor=self.executor_name, echo=self.echo,
        )  # fmt: skip
        run_id = recorder.start(self._properties())
        recorder.say(f"run {run_id}: pipeline {self.graph.name} ({self.executor_name} executor)")
        cache = StepCache(
            ctx, artifacts, self.catalog, env.digest, reuse=self.reuse, force=self.options.force
        )
        loop = Loop(
            ctx, self.graph, cache, recorder, executor=self.executor_name, workers=self.workers,
            ml_mode=self.ml_mode, ray_address=self.settings.ray_address,
        )  # fmt: skip
        loop.run()  # stopped, it records the run's end itself and raises
        return self._conclude(recorder, loop.results)

    def _properties(self) -> dict[str, Any]:
        """What the run's execution records about how it was asked for."""
        return {
            "pipeline": self.graph.name,
            "spec": self.spec,
            "target": self.target,
            "executor": self.executor_name,
            "overrides": self.overrides,
            "steps": {n.name: n.upstream for n in self.graph.nodes.values()},
            "trigger": self.options.trigger,
            "resumed_from": self.options.resume,
            "force": self.options.force,
        }

    def _conclude(self, recorder: Recorder, results: dict[str, StepResult]) -> RunResult:
        """Record the end of a run whose loop finished, and say how it went."""
        state, error = "completed", None
        bad = [r for r in results.values() if r.state == "failed"]
        if bad:
            state = "failed"
            error = f"step {bad[0].name} failed: {bad[0].error}"
        recorder.end(state, error, results)
        counts: dict[str, int] = {}
        for result in results.values():
            counts[result.state] = counts.get(result.state, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        took = time.time() - recorder.started
        recorder.say(f"run {recorder.run_id} {state} in {took:.2f} s ({summary})")
        recorder.cached_metrics(results)
        for result in results.values():
            if result.metrics:
                shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(result.metrics.items()))
                recorder.say(f"  metrics  {result.name}: {shown}")
        return RunResult(recorder.run_id, self.graph.name, state, dict(results), error)

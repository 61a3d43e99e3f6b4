"""The pipeline service behind ``k.pipelines``: run, resume, list, show, logs, cancel;
the triggers that start runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlkernel.authz import Action, Actor, operation
from mlkernel.errors import ConflictError, NotFoundError, UsageError

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ExecutionRecord
    from mlkernel.pipeline.dsl import Pipeline
    from mlkernel.pipeline.graph import Graph
    from mlkernel.pipeline.infos import (
        PipelineParams,
        PipelineRunInfo,
        RunSummary,
        StepInfo,
    )
    from mlkernel.pipeline.runner import RunResult
    from mlkernel.pipeline.settings import PipelineSettings
    from mlkernel.pipeline.triggers import FireResult, TriggerInfo
    from mlkernel.tracking.service import RunService

__all__ = ["PipelineService", "step_state"]


def step_state(record: ExecutionRecord) -> str:
    """How a step execution reads to people: ran, cached, failed, skipped, ..."""
    return {"completed": "ran"}.get(record.state, record.state)


def _kind_of(record: ExecutionRecord) -> str:
    """``a tracked run``, ``a drift run``: a run's type in words."""
    return "a tracked run" if record.type == "run" else f"a {record.type} run"


class PipelineService:
    """Pipelines of one project. Reached as ``k.pipelines``.

    Built from the project's context and the services a run uses: ``artifacts`` stores
    step outputs and logs, ``catalog`` resolves the references steps read, ``runs`` (the
    tracking service) describes runs for :meth:`run_info`.
    """

    def __init__(
        self,
        ctx: Context,
        artifacts: ArtifactService,
        catalog: CatalogService,
        runs: RunService,
    ) -> None:
        self._ctx = ctx
        self._artifacts = artifacts
        self._catalog = catalog
        self._runs = runs

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    @property
    def settings(self) -> PipelineSettings:
        """``[pipelines]``, checked against its schema when the project was opened
        (:data:`mlkernel.pipeline.settings.PIPELINES`)."""
        from mlkernel.pipeline.settings import PipelineSettings

        return PipelineSettings.from_sections(self._ctx.config.sections)

    # -- finding ---------------------------------------------------------------------

    @operation("pipelines.declared", Action.READ, cli="pipelines ls")
    def declared(self) -> dict[str, str]:
        """The pipelines mlkernel.toml declares: name -> target."""
        from mlkernel.pipeline.loader import declared

        return declared(self.settings.targets)

    @operation("pipelines.last_run", Action.READ, resource="name", cli="pipelines ls")
    def last_run(self, name: str) -> ExecutionRecord | None:
        """The newest pipeline run named ``name``, if any."""
        last = self._ctx.meta.list_runs(
            limit=1, name=name, exclude_types=("register", "step", "run")
        )
        return last[0] if last else None

    @operation(
        "pipelines.load",
        Action.READ,
        resource="pipeline",
        no_cli="SDK: building block of run and graph",
    )
    def load(self, pipeline: str | Pipeline) -> tuple[Pipeline, str | None, str]:
        """The pipeline, the target it was loaded from, and its name (the name declared
        in mlkernel.toml when it was named so)."""
        from mlkernel.pipeline.dsl import Pipeline
        from mlkernel.pipeline.loader import load_pipeline

        if isinstance(pipeline, Pipeline):
            return pipeline, None, pipeline.name
        found, target = load_pipeline(pipeline, self._ctx.root, self.settings.targets)
        declared = self.declared()
        if pipeline in declared:
            return found, target, pipeline
        return found, target, self._declared_name(found) or found.name

    def _declared_name(self, found: Pipeline) -> str | None:
        """The name a pipeline named by its target (``pipelines.bc:bc`` or
        ``pipelines/bc.py:bc``) is declared under, so that it gets that name's
        ``[pipelines.params]``, runs and cache whichever way it is spelled."""
        from pathlib import Path

        fn = getattr(found.fn, "__code__", None)
        if fn is None:
            return None
        source = Path(fn.co_filename).resolve()
        root = self._ctx.root.resolve()
        for name, target in self.declared().items():
            where, _, attr = target.rpartition(":")
            if attr != found.fn.__name__:
                continue
            if where.endswith(".py") or "/" in where:
                candidates = [Path(where) if Path(where).is_absolute() else root / where]
            else:
                base = root.joinpath(*where.split("."))
                candidates = [base.with_suffix(".py"), base / "__init__.py"]
            if any(c.resolve() == source for c in candidates):
                return name
        return None

    @operation(
        "pipelines.params",
        Action.READ,
        resource="name",
        no_cli="SDK: a pipeline's parameters with overrides",
    )
    def params(self, name: str, overrides: dict[str, Any] | None = None) -> PipelineParams:
        """Overrides for pipeline ``name``: mlkernel.toml's, then ``overrides`` on top."""
        from mlkernel.pipeline.infos import PipelineParams
        from mlkernel.pipeline.params import config_params

        configured = config_params(self.settings.params, name)
        return PipelineParams(name, {**configured, **(overrides or {})})

    @operation("pipelines.graph", Action.READ, resource="pipeline", cli="pipelines show")
    def graph(self, pipeline: str | Pipeline, params: dict[str, Any] | None = None) -> Graph:
        """The step graph of a pipeline with its parameters, without running it."""
        found, _, name = self.load(pipeline)
        graph = found.build(self.params(name, params).values)
        graph.name = name
        return graph

    # -- running ---------------------------------------------------------------------

    @operation("pipelines.run", Action.EXECUTE, resource="pipeline", cli="run")
    def run(
        self,
        pipeline: str | Pipeline | None = None,
        *,
        params: dict[str, Any] | None = None,
        executor: str | None = None,
        workers: int | None = None,
        force: bool = False,
        resume: int | None = None,
        echo: Callable[[str], None] | None = None,
        trigger: dict[str, Any] | None = None,
        ml_mode: bool | None = None,
    ) -> RunResult:
        """Run a pipeline (a declared name, ``file.py:function``, ``module:function`` or a
        :class:`Pipeline`); with ``resume``, continue that failed run from its failed step."""
        from mlkernel.pipeline.runner import Runner, RunOptions
        from mlkernel.provenance import environment

        # Before the pipeline's folders join sys.path: the environment's cache key
        # includes the modification times of the sys.path folders.
        env = environment(self._ctx.cache_dir)
        overrides = dict(params or {})
        reuse: dict[str, int] = {}
        if resume is not None:
            previous, reuse = self._resumable(resume)
            props = previous["properties"]
            overrides = {**props.get("overrides", {}), **overrides}
            if pipeline is None:
                pipeline = props.get("spec")
                if pipeline is None:
                    raise UsageError(
                        f"run {resume} was started from Python; pass the pipeline to resume it"
                    )
        if pipeline is None:
            raise UsageError("name the pipeline to run, e.g. `mlk run train`")
        found, target, name = self.load(pipeline)
        merged = self.params(name, overrides).values
        graph = found.build(merged)
        graph.name = name
        options = RunOptions(executor, workers, force, merged, echo, trigger, ml_mode, resume)
        spec = pipeline if isinstance(pipeline, str) else None
        runner = Runner(
            self._ctx, self._artifacts, self._catalog, graph, options, self.settings,
            spec=spec, target=target, reuse=reuse, overrides=merged, env=env,
        )  # fmt: skip
        return runner.run()

    def _resumable(self, run_id: int) -> tuple[dict[str, Any], dict[str, int]]:
        record = self._pipeline_run(run_id)
        if record.state == "completed":
            raise ConflictError(f"run {run_id} completed; there is nothing to resume")
        if record.state == "running":
            raise ConflictError(f"run {run_id} is still running; wait for it or cancel it")
        assert record.context_id is not None
        context = self._ctx.meta.get_context(record.context_id)
        reuse = {
            e.name: e.id
            for e in self._ctx.meta.context_executions([record.context_id])
            if e.type == "step" and e.state in ("completed", "cached")
        }
        return context, reuse

    def _pipeline_run(self, run_id: int) -> ExecutionRecord:
        record = self._ctx.meta.get_execution(run_id)
        if record.type != "pipeline" or record.context_id is None:
            raise UsageError(
                f"run {run_id} is {_kind_of(record)}, not a pipeline run; "
                "run `mlk runs ls` to find pipeline runs"
            )
        return record

    # -- inspecting ------------------------------------------------------------------

    @operation("pipelines.steps", Action.READ, resource="run_id", cli="runs show")
    def steps(self, run_id: int) -> list[StepInfo]:
        """The steps of a pipeline run, in the order they were recorded."""
        record = self._pipeline_run(run_id)
        assert record.context_id is not None
        executions = self._steps_of([record.context_id]).get(record.context_id, [])
        # A cached step shows the metrics of the execution whose output it reused.
        sources = {e.id: int((e.resources or {}).get("cached_from") or e.id) for e in executions}
        params = self._ctx.meta.params_of(e.id for e in executions)
        metrics = self._ctx.meta.metrics_of({*sources, *sources.values()})
        return [
            self._step_info(
                e, params.get(e.id, {}), metrics.get(e.id) or metrics.get(sources[e.id], {})
            )
            for e in executions
        ]

    def _steps_of(self, context_ids: list[int]) -> dict[int, list[ExecutionRecord]]:
        found: dict[int, list[ExecutionRecord]] = {}
        for e in self._ctx.meta.context_executions(context_ids):
            if e.type == "step" and e.context_id is not None:
                found.setdefault(e.context_id, []).append(e)
        return found

    def _step_info(
        self, e: ExecutionRecord, params: dict[str, Any], metrics: dict[str, float]
    ) -> StepInfo:
        from mlkernel.pipeline.infos import StepInfo

        resources = e.resources or {}
        output = resources.get("output")
        return StepInfo(
            id=e.id,
            name=e.name,
            state=step_state(e),
            duration=e.duration,
            output=self._catalog.get(int(output)).ref if output is not None else None,
            error=e.error,
            cache_key=e.cache_key,
            max_rss_kb=resources.get("max_rss_kb"),
            attempts=resources.get("attempts"),
            cached_from=resources.get("cached_from"),
            started_at=e.started_at,
            ended_at=e.ended_at,
            tune=resources.get("tune"),
            trial=resources.get("trial"),
            searched=resources.get("searched"),
            score=resources.get("score"),
            best=resources.get("best"),
            params=params,
            metrics=metrics,
        )

    @operation("runs.ls", Action.READ, cli="runs ls")
    def runs(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        include_steps: bool = False,
    ) -> list[RunSummary]:
        """Runs newest first; a pipeline run carries its steps' states."""
        from mlkernel.pipeline.infos import RunSummary, StepBrief

        exclude = ("register",) if include_steps else ("register", "step")
        records = self._ctx.meta.list_runs(
            limit=limit, state=state, name=name, exclude_types=exclude
        )
        contexts = [r.context_id for r in records if r.type == "pipeline" and r.context_id]
        steps = self._steps_of([c for c in contexts if c is not None])
        return [
            RunSummary(
                r,
                tuple(StepBrief(e.name, step_state(e), e.id) for e in steps.get(r.context_id, []))
                if r.type == "pipeline" and r.context_id is not None
                else None,
            )
            for r in records
        ]

    @operation("runs.show", Action.READ, resource="run_id", cli="runs show")
    def run_info(self, run_id: int) -> PipelineRunInfo:
        """One run: its record, parameters, metrics, inputs, outputs and steps."""
        from mlkernel.pipeline.infos import PipelineRunInfo, RunPipeline

        info = self._runs.info(run_id)
        record = info.record
        if record.type != "pipeline" or record.context_id is None:
            return PipelineRunInfo(info)
        context = self._ctx.meta.get_context(record.context_id)
        return PipelineRunInfo(
            info, RunPipeline.of(context["properties"]), tuple(self.steps(run_id))
        )

    @operation("runs.logs", Action.READ, resource="run_id", cli="runs logs")
    def logs(self, run_id: int, step: str | None = None) -> list[tuple[str, str]]:
        """(step, text) of each step's stored output; a running step's log so far."""
        record = self._ctx.meta.get_execution(run_id)
        if record.type != "pipeline":
            raise UsageError(
                f"run {run_id} is {_kind_of(record)}, not a pipeline run: only pipeline steps' "
                f"output is captured; `mlk runs show {run_id}` shows its params and metrics"
            )
        steps = self.steps(run_id)
        if step is not None:
            steps = [s for s in steps if s.name == step]
            if not steps:
                raise NotFoundError(
                    f"run {run_id} has no step {step!r}; run `mlk runs show {run_id}` to list them"
                )
        return [(s.name, self._log_text(run_id, s)) for s in steps]

    def _log_text(self, run_id: int, step: StepInfo) -> str:
        ctx = self._ctx
        execution = ctx.meta.get_execution(step.id)
        resources = execution.resources or {}
        if resources.get("log") is not None:
            log = self._catalog.get(int(resources["log"]))
            return ctx.objects.read_bytes(log.digest).decode("utf-8", "replace")
        # A running step's log so far; a lost (or since ended) step's partial log.
        path = ctx.state_dir / "logs" / f"run-{run_id}" / f"{execution.name}.log"
        if path.exists():
            text = path.read_text(errors="replace")
            if execution.state == "running":
                return text
            return (
                f"(partial log: the step is {execution.state}; what it wrote before that)\n" + text
            )
        source = resources.get("cached_from")
        if source is not None:
            return f"(cached: the output of execution {source} was reused; no new output)\n"
        if execution.state == "skipped":
            return f"(skipped: {execution.error})\n"
        return ""

    @operation("runs.cancel", Action.WRITE, resource="run_id", cli="runs cancel")
    def cancel(self, run_id: int, *, wait: float = 15.0) -> str:
        """Stop a running pipeline run: signal its process (Ctrl-C), or, when that
        process is gone, mark the run and its running steps cancelled."""
        from mlkernel.tracking.ending import cancel_pipeline

        record = self._pipeline_run(run_id)
        if record.state != "running":
            raise ConflictError(f"run {run_id} is not running (it {record.state})")
        return cancel_pipeline(self._ctx, record, wait)

    # -- triggers --------------------------------------------------------------------

    @operation("triggers.ls", Action.READ, cli="triggers ls")
    def triggers(self) -> list[TriggerInfo]:
        """The triggers mlkernel.toml declares, described."""
        from mlkernel.pipeline.triggers import describe

        return describe(self._ctx)

    @operation("triggers.run_pending", Action.EXECUTE, cli="triggers run-pending")
    def run_pending(
        self, *, now: float | None = None, echo: Callable[[str], None] | None = None
    ) -> list[FireResult]:
        """Run every trigger that is due now; what each did."""
        from mlkernel.pipeline.triggers import run_pending

        return run_pending(self._ctx, self, now=now, echo=echo)

    @operation("triggers.fire", Action.EXECUTE, resource="name", cli="triggers fire")
    def fire(self, name: str, *, echo: Callable[[str], None] | None = None) -> FireResult:
        """Fire the trigger ``name`` now."""
        from mlkernel.pipeline.triggers import fire

        return fire(self._ctx, self, name, echo=echo)

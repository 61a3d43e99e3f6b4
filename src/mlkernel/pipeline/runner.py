"""Running a traced pipeline: the DAG in order, independent steps in parallel, each step
cached, retried, timed out, logged and recorded as an execution.

Only the thread that calls :meth:`Runner.run` touches the metadata store (one writer);
worker threads only wait for executors. Per ready step:

1. inputs are resolved (upstream outputs, references, project files, literal values);
2. the cache key is computed: SHA-256 of the code digest, the parameters, the inputs'
   digests, the output's name and the environment digest;
3. a completed execution with that key whose output still exists is reused: a ``cached``
   execution is recorded with the same input and output events; otherwise
4. a ``running`` execution is recorded and the step goes to the executor; its output,
   log, metrics, duration and peak memory are recorded when it ends.

A failed step skips everything downstream of it; other branches go on. Ctrl-C (or
SIGTERM) ends the running steps' process groups and marks the run ``cancelled``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.errors import MLKernelError, UsageError
from mlkernel.pipeline.dsl import Output, Ref

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mlkernel.kernel import Kernel
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.pipeline.executors import Executor, LogSink
    from mlkernel.pipeline.graph import Graph, Node
    from mlkernel.tracking.provenance import Environment

__all__ = ["RunOptions", "RunResult", "Runner", "SafeEcho", "StepResult"]

CACHE_VERSION = 1
EXECUTORS = ("inline", "process", "ray")  # not imported from executors: a no-op run needs none
DONE = ("ran", "cached")
STATE_OF = {"completed": "ran", "cached": "cached", "failed": "failed", "skipped": "skipped"}


@dataclass(slots=True)
class RunOptions:
    executor: str | None = None  # default: [pipelines] executor, else "process"
    workers: int | None = None  # default: [pipelines] workers, else min(4, CPUs)
    force: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    echo: Callable[[str], None] | None = None  # live step output and progress lines
    trigger: dict[str, Any] | None = None  # what fired the run
    ml_mode: bool | None = None  # default: [pipelines] ml_mode, else true
    resume: int | None = None


@dataclass(slots=True)
class StepResult:
    name: str
    state: str  # ran | cached | failed | skipped | cancelled
    execution_id: int | None = None
    output: str | None = None
    error: str | None = None
    duration: float | None = None
    metrics: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class RunResult:
    id: int
    pipeline: str
    state: str  # completed | failed | cancelled
    steps: dict[str, StepResult]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "state": self.state,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps.values()],
        }

    def output(self, step: str) -> str | None:
        return self.steps[step].output


@dataclass(slots=True)
class _Prepared:
    args: dict[str, Any]
    params: dict[str, Any]
    inputs: list[int]
    cache_key: str
    code_digest: str


@dataclass(slots=True)
class _Active:
    node: Node
    execution_id: int
    sink: LogSink
    started: float


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _wants_handle(fn: Any, param: str) -> bool:
    """Whether ``param`` is annotated ``Artifact`` (a handle rather than the value)."""
    annotation = getattr(fn, "__annotations__", {}).get(param)
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(text).split(".")[-1].split("[")[0] == "Artifact"


class SafeEcho:
    """The caller's echo, made harmless to the run: an echo that fails (a terminal that
    went away, a closed stream) is dropped after its first failure, and the run, its
    record and its result go on as if nobody watched."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo: Callable[[str], None] | None = echo

    def __call__(self, line: str) -> None:
        echo = self._echo
        if echo is None:
            return
        try:
            echo(line)
        except (OSError, ValueError):  # EPIPE, or "I/O operation on closed file"
            self._echo = None


class _MLMode:
    """Claims ML mode for each step process; a missing controller costs one warning."""

    def __init__(self, config: Any, warn: Callable[[str], None], label: str | None = None) -> None:
        self._config = config
        self._label = label  # who the claims are for, in `mlk mode status`
        self._warn = warn
        self._client: Any = None
        self._failed = False
        self._lock = threading.Lock()

    def enter(self, pid: int) -> None:
        with self._lock:
            if self._failed:
                return
            try:
                if self._client is None:
                    from mlkernel.sched.client import Client

                    self._client = Client(config=self._config, label=self._label)
                self._client.enter(pid)
            except (MLKernelError, OSError) as exc:
                self._failed = True
                self._warn(
                    f"mlk: warning: ML mode unavailable ({exc}); steps run at normal priority"
                )

    def leave(self, pid: int) -> None:
        with self._lock:
            if self._client is not None and not self._failed:
                with contextlib.suppress(MLKernelError, OSError):
                    self._client.leave(pid)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Runner:
    def __init__(
        self,
        kernel: Kernel,
        graph: Graph,
        options: RunOptions,
        *,
        spec: str | None = None,
        target: str | None = None,
        reuse: dict[str, int] | None = None,
        overrides: dict[str, Any] | None = None,
        env: Environment | None = None,
    ) -> None:
        self.k = kernel
        self.graph = graph
        self.options = options
        self.spec = spec
        self.target = target
        self.reuse = reuse or {}  # step name -> execution to reuse (--resume)
        self.overrides = overrides or {}
        self.env = env
        settings = kernel.config.sections.get("pipelines", {})
        self.settings = settings if isinstance(settings, dict) else {}
        self.executor_name = options.executor or str(self.settings.get("executor", "process"))
        if self.executor_name not in EXECUTORS:
            raise UsageError(
                f"executor {self.executor_name!r} is unknown; use one of: {', '.join(EXECUTORS)}"
            )
        workers = options.workers or self.settings.get("workers") or min(4, os.cpu_count() or 1)
        if not isinstance(workers, int) or workers < 1:
            raise UsageError(f"workers is {workers!r}; use a positive integer")
        self.workers = workers
        ml = options.ml_mode if options.ml_mode is not None else self.settings.get("ml_mode", True)
        self.ml_mode = bool(ml) and self.executor_name == "process"
        self.echo = SafeEcho(options.echo) if options.echo is not None else None
        self.results: dict[str, StepResult] = {}
        self.outputs: dict[str, ArtifactRecord | None] = {}
        self._prepared: dict[str, _Prepared] = {}
        self._active: dict[str, _Active] = {}
        self._codes: dict[int, str] = {}
        self._cached_from: dict[str, int] = {}  # cached step -> the execution it reused
        self._executor: Executor | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._mlmode: _MLMode | None = None
        self.run_id = 0
        self.context_id = 0
        self.env_id: int | None = None
        self.env_digest = ""

    # -- helpers ---------------------------------------------------------------------

    def _say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    def _who(self) -> dict[str, Any]:
        return {"host": self.k.host, "pid": os.getpid(), "user": self.k.user}

    def _log_dir(self) -> Path:
        return self.k.config.state_dir / "logs" / f"run-{self.run_id}"

    def _target(self, node: Node) -> dict[str, Any]:
        fn = node.step.fn
        module_name = fn.__module__
        module = sys.modules.get(module_name)
        file = getattr(module, "__file__", None)
        if "<locals>" in fn.__qualname__:
            raise UsageError(
                f"step {node.step.name} is defined inside a function; define it at module "
                "level to run it in a process, or use --executor inline"
            )
        synthetic = getattr(module, "__mlk_file__", None) is not None or module_name == "__main__"
        if module_name == "__main__":
            module_name = "__mlk_main__"
        return {
            "module": module_name,
            "qualname": fn.__qualname__,
            "file": file if synthetic else None,
            "sys_path": [str(self.k.root), *getattr(module, "__mlk_path__", [])],
        }

    # -- inputs and cache keys -------------------------------------------------------

    def _artifact_arg(self, record: ArtifactRecord, as_value: bool) -> dict[str, Any]:
        info = {
            "ref": record.ref,
            "kind": record.kind,
            "name": record.name,
            "version": record.version,
            "digest": record.digest,
            "properties": record.properties,
        }
        return {"artifact": info, "as": "value" if as_value else "handle"}

    def _file_input(self, ref: Ref) -> ArtifactRecord:
        from mlkernel.digest import of_file
        from mlkernel.errors import NotFoundError

        assert ref.path is not None
        path = Path(ref.path)
        path = path if path.is_absolute() else self.k.root / path
        if not path.is_file():
            raise NotFoundError(f"pipeline input {ref.path} does not exist; check the path")
        name = ref.ref.partition(":")[2]
        versions = self.k.table.versions("file", name)
        if versions and versions[-1].digest == of_file(path):
            return versions[-1]
        return self.k.log_artifact(path, kind="file", name=name)

    def _resolve_ref(self, ref: Ref) -> ArtifactRecord:
        return self._file_input(ref) if ref.path is not None else self.k.resolve(ref.ref)

    def _code(self, node: Node) -> str:
        from mlkernel.pipeline.code import code_digest

        fn = node.step.fn
        found = self._codes.get(id(fn))
        if found is None:
            found = self._codes[id(fn)] = code_digest(fn, self.k.root)
        return found

    def _prepare(self, node: Node) -> _Prepared:
        found = self._prepared.get(node.name)
        if found is not None:
            return found
        fn = node.step.fn
        args: dict[str, Any] = {}
        params: dict[str, Any] = {}
        digests: dict[str, str | None] = {}
        inputs: list[int] = []
        for pname, value in {**node.args, **node.params}.items():
            if isinstance(value, Output):
                record = self.outputs.get(value.node)
                if record is None:
                    args[pname] = {"none": True}
                    digests[pname] = None
                    continue
                as_value = record.kind != "dataset" and not _wants_handle(fn, pname)
                args[pname] = self._artifact_arg(record, as_value)
            elif isinstance(value, Ref):
                record = self._resolve_ref(value)
                as_value = record.properties.get("format") == "pickle" and not _wants_handle(
                    fn, pname
                )
                args[pname] = self._artifact_arg(record, as_value)
            elif _jsonable(value):
                args[pname] = {"value": value}
                params[pname] = value
                continue
            else:
                import pickle

                digest, _ = self.k.objects.put_bytes(pickle.dumps(value, protocol=5))
                args[pname] = {"object": digest}
                digests[pname] = digest
                continue
            digests[pname] = record.digest
            inputs.append(record.id)
        code = self._code(node)
        extra = node.step.cache_extra() if hasattr(node.step, "cache_extra") else None
        blob = json.dumps(
            {
                "v": CACHE_VERSION,
                "code": code,
                "params": params,
                "inputs": digests,
                "env": self.env_digest,
                "output": node.step.output,
                "extra": extra,
            },
            sort_keys=True,
            default=repr,
        )
        prepared = _Prepared(args, params, inputs, hashlib.sha256(blob.encode()).hexdigest(), code)
        self._prepared[node.name] = prepared
        return prepared

    def _cache_hit(self, node: Node, prepared: _Prepared) -> tuple[int, int | None] | None:
        """(execution, output artifact) to reuse, or None."""
        reused = self.reuse.get(node.name)
        if reused is not None:
            previous = self.k.meta.get_execution(reused)
            return reused, (previous.resources or {}).get("output")
        if self.options.force or not node.options.cache:
            return None
        found = self.k.meta.find_cached(prepared.cache_key)
        if found is None:
            return None
        output_id = (found.resources or {}).get("output")
        if output_id is not None:
            try:
                record = self.k.table.get(int(output_id))
            except MLKernelError:
                return None
            if not self.k.objects.exists(record.digest):
                return None  # collected since: run it again
        return found.id, output_id

    # -- recording -------------------------------------------------------------------

    def _record_cached(self, node: Node, prepared: _Prepared, hit: tuple[int, int | None]) -> None:
        source, output_id = hit
        output = self.k.table.get(int(output_id)) if output_id is not None else None
        execution_id = self.k.meta.record_step(
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
        self.outputs[node.name] = output
        self.results[node.name] = StepResult(
            node.name, "cached", execution_id, output.ref if output else None, duration=0.0
        )
        self._cached_from[node.name] = source
        self._say(f"  cached   {node.name}" + (f" -> {output.ref}" if output else ""))

    def _record_skipped(self, node: Node, why: str) -> None:
        execution_id = self.k.meta.record_step(
            node.name,
            state="skipped",
            context_id=self.context_id,
            error=why,
            ended=True,
            **self._who(),
        )
        self.results[node.name] = StepResult(node.name, "skipped", execution_id, error=why)
        self._say(f"  skipped  {node.name} ({why})")

    def _start(self, node: Node, prepared: _Prepared) -> _Active:
        from mlkernel.pipeline.executors import LogSink

        execution_id = self.k.meta.record_step(
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
        log_dir = self._log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        sink = LogSink(log_dir / f"{node.name}.log", node.name, self.echo)
        active = _Active(node, execution_id, sink, time.time())
        self._active[node.name] = active
        self._say(f"  running  {node.name}")
        return active

    def _spec(self, node: Node, prepared: _Prepared) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "step": node.name,
            "objects": self.k.objects.location,
            "cache": str(self.k.config.state_dir / "cache"),
            "args": prepared.args,
            "timeout": node.options.timeout,
            "output": node.step.output,
        }
        if self.executor_name != "inline":
            spec["target"] = self._target(node)
        return spec

    def _attempts(self, node: Node, spec: dict[str, Any], sink: LogSink) -> dict[str, Any]:
        """Run a step, again after a failure while it has retries left (worker thread)."""
        assert self._executor is not None
        retries = node.options.retries
        result: dict[str, Any] = {}
        for attempt in range(retries + 1):
            if hasattr(node.step, "execute"):  # a tuning node runs its own trials
                result = node.step.execute(self, node, spec, sink)
            else:
                result = self._executor.run(spec, node.step, sink)
            result["attempts"] = attempt + 1
            if result["ok"] or result.get("error") == "cancelled" or attempt == retries:
                break
            sink.write(f"mlk: attempt {attempt + 1} failed ({result['error']}); retrying\n")
        return result

    def _finish(self, active: _Active, result: dict[str, Any]) -> None:
        node, execution_id = active.node, active.execution_id
        self._active.pop(node.name, None)
        active.sink.close()
        log_id = self._store_log(active)
        duration = time.time() - active.started
        resources = {
            "log": log_id,
            "attempts": result.get("attempts", 1),
            "wall_s": result.get("wall_s"),
            "max_rss_kb": result.get("max_rss_kb"),
            "executor": self.executor_name,
        }
        # A tuning node reports its trials; stopped mid-search, those run so far.
        trials = result.get("trials")
        if trials is None and not result["ok"]:
            trials = getattr(node.step, "done_trials", None)
        if trials:
            resources["trials"] = self._record_trials(node, trials)
            resources["best"] = result.get("best")
        if not result["ok"]:
            cancelled = result.get("error") == "cancelled"
            state = "cancelled" if cancelled else "failed"
            error = "cancelled by the user" if cancelled else result["error"]
            self.k.meta.finish_execution(execution_id, state, error=error, resources=resources,
                                         env_artifact_id=self.env_id)  # fmt: skip
            self.results[node.name] = StepResult(
                node.name, state, execution_id, None, error, duration
            )
            self._say(f"  {state:<8} {node.name}: {error}")
            return
        output = self._store_output(node, execution_id, result.get("output"))
        resources["output"] = output.id if output is not None else None
        metrics = result.get("metrics") or None
        now = time.time()
        rows = [(execution_id, k, 0, float(v), now) for k, v in (metrics or {}).items()]
        self.k.meta.finish_execution(
            execution_id, "completed", resources=resources, env_artifact_id=self.env_id,
            metrics=rows,
        )  # fmt: skip
        self.outputs[node.name] = output
        self.results[node.name] = StepResult(
            node.name, "ran", execution_id, output.ref if output else None, None, duration, metrics
        )
        shown = f" -> {output.ref}" if output else ""
        self._say(f"  ran      {node.name} ({duration:.2f} s){shown}")

    def _record_trials(self, node: Node, trials: list[dict[str, Any]]) -> list[int]:
        """Each tuning trial as an execution with its parameters and metrics."""
        prepared = self._prepared[node.name]
        ids = []
        for trial in trials:
            ok = bool(trial.get("ok"))
            failed = "cancelled" if trial.get("error") == "cancelled" else "failed"
            ids.append(
                self.k.meta.record_step(
                    f"{node.name}.trial-{trial['number']}",
                    state="completed" if ok else failed,
                    context_id=self.context_id,
                    params={**prepared.params, **trial["params"]},
                    inputs=prepared.inputs,
                    error=None if ok else trial.get("error"),
                    resources={
                        "trial": trial["number"],
                        "tune": node.name,
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
            )
        return ids

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
        record, _ = self.k.meta.register_artifact(
            options.output_kind,
            name,
            digest=output["digest"],
            uri=self.k.objects.uri(output["digest"]),
            size=int(output["size"]),
            properties=properties,
            created_by=self.k.user,
            execution_id=execution_id,
        )
        self.k.table.note_artifact(record)
        return record

    def _dataset_properties(
        self, node: Node, name: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        """What a dataset version records beyond its table (the worker described that)."""
        from mlkernel.data.tables import schema_changes

        versions = self.k.table.versions("dataset", name)
        previous = versions[-1] if versions else None
        return {
            "source": f"step {node.name}",
            "schema_changes": schema_changes(previous, properties.get("schema", [])),
        }

    def _store_log(self, active: _Active) -> int | None:
        path = active.sink.path
        if not path.exists() or path.stat().st_size == 0:
            return None
        with self.k.objects.writing():  # gc waits from the put until the commit
            digest, size = self.k.objects.put_file(path)
            record, _ = self.k.meta.register_artifact(
                "file",
                f"{self.graph.name}.{active.node.name}.log",
                digest=digest,
                uri=self.k.objects.uri(digest),
                size=size,
                properties={"format": "file", "role": "log", "run": self.run_id},
                created_by=self.k.user,
                execution_id=active.execution_id,
            )
        self.k.table.note_artifact(record)
        return record.id

    # -- the loop --------------------------------------------------------------------

    def _ready(self, node: Node) -> str | None:
        """'run' when every upstream step is done, 'skip' when one failed, else None."""
        states = [self.results[u].state if u in self.results else None for u in node.upstream]
        if any(s not in (None, *DONE) for s in states):
            return "skip"
        return "run" if all(s in DONE for s in states) else None

    def _submit(self, node: Node, prepared: _Prepared) -> Future[dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mlk-step")
        active = self._start(node, prepared)
        return self._pool.submit(self._attempts, node, self._spec(node, prepared), active.sink)

    def _executor_for_run(self) -> Executor:
        if self._executor is None:
            from mlkernel.pipeline.executors import make_executor

            on_start = on_end = None
            if self.ml_mode:
                label = f"project {self.k.config.name}, pipeline run"
                self._mlmode = _MLMode(self.k.config.sections.get("sched"), self._warn, label)
                on_start, on_end = self._mlmode.enter, self._mlmode.leave
            self._executor = make_executor(
                self.executor_name,
                root=self.k.root,
                task_dir=self.k.config.state_dir / "cache" / "tasks",
                on_start=on_start,
                on_end=on_end,
                ray_address=self.settings.get("ray_address"),
            )
        return self._executor

    def _warn(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed stderr loses the warning only
            print(line, file=sys.stderr)

    def _loop(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = list(self.graph.nodes)
        running: dict[Future[dict[str, Any]], _Active] = {}
        while pending or running:
            progressed = True
            while progressed:
                progressed = False
                for name in list(pending):
                    node = self.graph.nodes[name]
                    ready = self._ready(node)
                    if ready is None:
                        continue
                    if ready == "skip":
                        failed = [u for u in node.upstream if self.results[u].state not in DONE]
                        self._record_skipped(node, f"upstream step {failed[0]} did not complete")
                        pending.remove(name)
                        progressed = True
                        continue
                    prepared = self._prepare(node)
                    hit = self._cache_hit(node, prepared)
                    if hit is not None:
                        self._record_cached(node, prepared, hit)
                        pending.remove(name)
                        progressed = True
                        continue
                    executor = self._executor_for_run()
                    if not executor.parallel:
                        active = self._start(node, prepared)
                        result = self._attempts(node, self._spec(node, prepared), active.sink)
                        self._finish(active, result)
                        pending.remove(name)
                        progressed = True
                        continue
                    if len(running) >= self.workers:
                        continue
                    future = self._submit(node, prepared)
                    running[future] = self._active[name]
                    pending.remove(name)
            if running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future.result())
            elif pending:  # pragma: no cover - a DAG always has a ready node
                raise UsageError(f"steps {pending} wait on each other; the graph has a cycle")

    def _cancel(self) -> None:
        """Ctrl-C: end running steps (their process groups), skip the rest."""
        if self._executor is not None:
            self._executor.cancel_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for active in list(self._active.values()):
            self._finish(active, {"ok": False, "error": "cancelled"})
        for name, node in self.graph.nodes.items():
            if name not in self.results:
                self._record_skipped(node, "the run was cancelled")

    # -- entry -----------------------------------------------------------------------

    def run(self) -> RunResult:
        from mlkernel.tracking.provenance import environment, git_state

        k = self.k
        env = self.env or environment(k.config.state_dir / "cache")
        self.env_digest = env.digest
        self.env_id = k.env_artifact(env).id
        git: list[Any] = []
        git_thread = threading.Thread(
            target=lambda: git.append(git_state(k.root)), name="mlk-git", daemon=True
        )
        git_thread.start()
        properties = {
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
        self.run_id, self.context_id = k.meta.start_pipeline(
            self.graph.name, params=dict(self.graph.params), properties=properties, **self._who()
        )
        self._say(f"run {self.run_id}: pipeline {self.graph.name} ({self.executor_name} executor)")
        started = time.time()
        previous = self._trap_sigterm()
        state, error = "completed", None
        try:
            self._loop()
        except BaseException as exc:
            state = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
            error = (
                "cancelled by the user" if state == "cancelled" else f"{type(exc).__name__}: {exc}"
            )
            held = self._hold_signals()  # a second Ctrl-C must not cut the cleanup short
            if state == "cancelled":
                self._say(f"run {self.run_id}: stopping its steps (Ctrl-C again is ignored)")
            try:
                self._cancel()
            finally:  # the run's record ends even if stopping its steps went wrong
                try:
                    self._end(state, error, started, git_thread, git)
                finally:
                    self._release_signals(held)
            self._say(f"run {self.run_id} {state}")
            raise
        finally:
            self._restore_sigterm(previous)
            self._close()
        bad = [r for r in self.results.values() if r.state == "failed"]
        if bad:
            state = "failed"
            error = f"step {bad[0].name} failed: {bad[0].error}"
        self._end(state, error, started, git_thread, git)
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.state] = counts.get(result.state, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        self._say(f"run {self.run_id} {state} in {time.time() - started:.2f} s ({summary})")
        self._cached_metrics()
        for result in self.results.values():
            if result.metrics:
                shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(result.metrics.items()))
                self._say(f"  metrics  {result.name}: {shown}")
        return RunResult(self.run_id, self.graph.name, state, dict(self.results), error)

    def _cached_metrics(self) -> None:
        """A cached step's metrics are those of the execution whose output it reused."""
        if not self._cached_from:
            return
        found = self.k.meta.metrics_of(self._cached_from.values())
        for name, source in self._cached_from.items():
            if found.get(source):
                self.results[name].metrics = found[source]

    def _end(
        self,
        state: str,
        error: str | None,
        started: float,
        thread: threading.Thread,
        git: list[Any],
    ) -> None:
        thread.join(timeout=10)
        states = {name: r.state for name, r in self.results.items()}
        self.k.meta.finish_execution(
            self.run_id,
            state,
            error=error,
            resources={"wall_s": round(time.time() - started, 6), "steps": states},
            env_artifact_id=self.env_id,
            git_commit=git[0].commit if git else None,
            git_dirty=git[0].dirty if git else None,
        )

    def _close(self) -> None:
        # The executor first: it ends any step process still alive, so the pool's threads
        # (which wait for their process) can finish and the shutdown cannot hang.
        if self._executor is not None:
            self._executor.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._mlmode is not None:
            self._mlmode.close()

    @staticmethod
    def _trap_sigterm() -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        return signal.signal(signal.SIGTERM, stop)

    @staticmethod
    def _hold_signals() -> dict[int, Any]:
        """Ignore Ctrl-C and SIGTERM while a stopped run ends its steps and its record
        (bounded: each step process gets SIGKILL after its grace period)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _release_signals(held: dict[int, Any]) -> None:
        for signum, handler in held.items():
            signal.signal(signum, handler)

    @staticmethod
    def _restore_sigterm(previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

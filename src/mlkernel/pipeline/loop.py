"""The loop of a pipeline run: the DAG in order, independent steps in parallel on the
executor (inline, process or Ray), each retried while it has retries left; Ctrl-C and
SIGTERM end the running steps' process groups; step processes claim ML mode.

Only the thread that calls :meth:`Loop.run` touches the metadata store (through the
:class:`~mlkernel.pipeline.record.Recorder`); worker threads only wait for executors.
Per ready step: the cache prepares it and looks for an execution to reuse
(:mod:`mlkernel.pipeline.cache`); if there is none it goes to the executor. A failed step
skips everything downstream of it; other branches go on.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlkernel.errors import MLKernelError, UsageError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.pipeline.cache import Prepared, StepCache
    from mlkernel.pipeline.executors import Executor, LogSink
    from mlkernel.pipeline.graph import Graph, Node
    from mlkernel.pipeline.record import Recorder, Running
    from mlkernel.pipeline.results import StepResult

__all__ = ["DONE", "Loop", "MLMode"]

DONE = ("ran", "cached")  # the states a downstream step may start after


class MLMode:
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


# -- signals ---------------------------------------------------------------------------


def _trap_sigterm() -> Any:
    """SIGTERM stops the run as Ctrl-C does (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _hold_signals() -> dict[int, Any]:
    """Ignore Ctrl-C and SIGTERM while a stopped run ends its steps and its record
    (bounded: each step process gets SIGKILL after its grace period)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}


def _release_signals(held: dict[int, Any]) -> None:
    for signum, handler in held.items():
        signal.signal(signum, handler)


def _warn(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a closed stderr loses the warning only
        print(line, file=sys.stderr)


# -- the loop --------------------------------------------------------------------------


class Loop:
    """Runs the steps of ``graph``: what the cache cannot reuse goes to the executor."""

    def __init__(
        self,
        ctx: Context,
        graph: Graph,
        cache: StepCache,
        recorder: Recorder,
        *,
        executor: str,
        workers: int,
        ml_mode: bool,
        ray_address: Any = None,
    ) -> None:
        self.ctx = ctx
        self.graph = graph
        self.cache = cache
        self.recorder = recorder
        self.executor_name = executor
        self.workers = workers
        self.ml_mode = ml_mode
        self.ray_address = ray_address
        self.results: dict[str, StepResult] = {}
        self.outputs: dict[str, ArtifactRecord | None] = {}
        self._active: dict[str, Running] = {}
        self._executor: Executor | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._mlmode: MLMode | None = None

    def run(self) -> None:
        """Run every step. Stopped (Ctrl-C, SIGTERM, an error), it ends the running steps,
        skips the rest, records the run's end and raises again."""
        previous = _trap_sigterm()
        try:
            self._schedule()
        except BaseException as exc:
            self._stop(exc)
            raise
        finally:
            _restore_sigterm(previous)
            self.close()

    def _stop(self, exc: BaseException) -> None:
        state = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        error = "cancelled by the user" if state == "cancelled" else f"{type(exc).__name__}: {exc}"
        held = _hold_signals()  # a second Ctrl-C must not cut the cleanup short
        run_id = self.recorder.run_id
        if state == "cancelled":
            self.recorder.say(f"run {run_id}: stopping its steps (Ctrl-C again is ignored)")
        try:
            self.cancel()
        finally:  # the run's record ends even if stopping its steps went wrong
            try:
                self.recorder.end(state, error, self.results)
            finally:
                _release_signals(held)
        self.recorder.say(f"run {run_id} {state}")

    # -- scheduling ------------------------------------------------------------------

    def _ready(self, node: Node) -> str | None:
        """'run' when every upstream step is done, 'skip' when one failed, else None."""
        states = [self.results[u].state if u in self.results else None for u in node.upstream]
        if any(s not in (None, *DONE) for s in states):
            return "skip"
        return "run" if all(s in DONE for s in states) else None

    def _schedule(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = list(self.graph.nodes)
        running: dict[Future[dict[str, Any]], Running] = {}
        while pending or running:
            self._start_ready(pending, running)
            if running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future.result())
            elif pending:  # pragma: no cover - a DAG always has a ready node
                raise UsageError(f"steps {pending} wait on each other; the graph has a cycle")

    def _start_ready(
        self, pending: list[str], running: dict[Future[dict[str, Any]], Running]
    ) -> None:
        """Take every pending step that can go now, until a pass settles none of them."""
        progressed = True
        while progressed:
            progressed = False
            for name in list(pending):
                taken = self._take(self.graph.nodes[name], running)
                if taken is not None:
                    pending.remove(name)
                    progressed = progressed or taken == "settled"

    def _take(self, node: Node, running: dict[Future[dict[str, Any]], Running]) -> str | None:
        """'settled' (skipped, cached, or run by a serial executor), 'submitted' (to the
        pool), or None: ``node`` waits for its upstream or for a free worker."""
        ready = self._ready(node)
        if ready is None:
            return None
        if ready == "skip":
            failed = [u for u in node.upstream if self.results[u].state not in DONE]
            why = f"upstream step {failed[0]} did not complete"
            self._note(self.recorder.skipped(node, why), None)
            return "settled"
        prepared = self.cache.prepare(node, self.outputs)
        hit = self.cache.lookup(node, prepared)
        if hit is not None:
            self._note(*self.recorder.cached(node, prepared, hit))
            return "settled"
        if not self.executor().parallel:
            step = self._start(node, prepared)
            self._finish(step, self._attempts(node, self._spec(node, prepared), step.sink))
            return "settled"
        if len(running) >= self.workers:
            return None
        future = self._submit(node, prepared)
        running[future] = self._active[node.name]
        return "submitted"

    def _note(self, result: StepResult, output: ArtifactRecord | None) -> None:
        self.results[result.name] = result
        if result.state in DONE:  # what downstream steps are given
            self.outputs[result.name] = output

    # -- executing -------------------------------------------------------------------

    def executor(self) -> Executor:
        """The run's executor, made on first use (and ML mode with it)."""
        if self._executor is None:
            from mlkernel.pipeline.executors import make_executor

            on_start = on_end = None
            if self.ml_mode:
                label = f"project {self.ctx.config.name}, pipeline run"
                self._mlmode = MLMode(self.ctx.config.sections.get("sched"), _warn, label)
                on_start, on_end = self._mlmode.enter, self._mlmode.leave
            self._executor = make_executor(
                self.executor_name,
                root=self.ctx.root,
                task_dir=self.ctx.cache_dir / "tasks",
                on_start=on_start,
                on_end=on_end,
                ray_address=self.ray_address,
            )
        return self._executor

    def target(self, node: Node) -> dict[str, Any]:
        """Where a step process finds the step's function."""
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
            "sys_path": [str(self.ctx.root), *getattr(module, "__mlk_path__", [])],
        }

    def _spec(self, node: Node, prepared: Prepared) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "step": node.name,
            "objects": self.ctx.objects.location,
            "cache": str(self.ctx.cache_dir),
            "args": prepared.args,
            "timeout": node.options.timeout,
            "output": node.step.output,
        }
        if self.executor_name != "inline":
            spec["target"] = self.target(node)
        return spec

    def _start(self, node: Node, prepared: Prepared) -> Running:
        step = self.recorder.running(node, prepared)
        self._active[node.name] = step
        return step

    def _submit(self, node: Node, prepared: Prepared) -> Future[dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mlk-step")
        step = self._start(node, prepared)
        return self._pool.submit(self._attempts, node, self._spec(node, prepared), step.sink)

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

    def _finish(self, step: Running, result: dict[str, Any]) -> None:
        self._active.pop(step.node.name, None)
        self._note(*self.recorder.finished(step, result))

    # -- stopping --------------------------------------------------------------------

    def cancel(self) -> None:
        """Ctrl-C: end running steps (their process groups), skip the rest."""
        if self._executor is not None:
            self._executor.cancel_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for step in list(self._active.values()):
            self._finish(step, {"ok": False, "error": "cancelled"})
        for name, node in self.graph.nodes.items():
            if name not in self.results:
                self._note(self.recorder.skipped(node, "the run was cancelled"), None)

    def close(self) -> None:
        # The executor first: it ends any step process still alive, so the pool's threads
        # (which wait for their process) can finish and the shutdown cannot hang.
        if self._executor is not None:
            self._executor.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._mlmode is not None:
            self._mlmode.close()

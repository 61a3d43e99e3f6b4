"""A tracked run: ``with k.start_run("train", params={...}) as run: ...``.

Metrics are checked at the call (:mod:`mlkernel.tracking.values`), appended to an
in-memory buffer (about a microsecond a call) and written in one transaction when the
buffer holds ``flush_rows`` rows, when its oldest row is ``flush_seconds`` old, and when
the run ends, so every metric logged is durable once the ``with`` block is left, whether
it ended normally or by an exception.

Nothing logged is lost when the database fails. A batch that cannot be written stays in
the buffer and is tried again with the next one (a flush the run started itself warns
once and lets the work go on; ``run.flush()`` raises). If the run's end cannot be
written, the run raises :class:`StorageError`, keeps its buffer (``run.end()`` may be
called again), and saves the unsaved metrics to ``.mlkernel/logs/unsaved-run-ID.json``;
ending that run later (``mlk runs fail ID``, ``mlk runs cancel ID``) writes them in. Until
then, once its process has exited, the run reads as ``lost``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.errors import StorageError, UsageError
from mlkernel.tracking.values import (
    INT64_MAX,
    check_key,
    metric_step,
    metric_time,
    metric_value,
)

if TYPE_CHECKING:
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["ENDED_STATES", "Run", "unsaved_path"]

ENDED_STATES = ("completed", "failed", "cancelled")


def _check_key(key: Any) -> str:
    """A parameter key, checked (kept under this name for ``Kernel.start_run``)."""
    return check_key(key, "parameter key")


def unsaved_path(state_dir: Path, run_id: int) -> Path:
    """Where the metrics a run could not write wait for ``mlk runs fail/cancel``."""
    return state_dir / "logs" / f"unsaved-run-{run_id}.json"


class Run:
    def __init__(
        self, ctx: Context, artifacts: ArtifactService, execution_id: int, name: str
    ) -> None:
        self._ctx = ctx
        self._artifacts = artifacts
        self.id = execution_id
        self.name = name
        self.state = "running"
        tracking = ctx.config.tracking
        self._flush_rows = tracking.flush_rows
        self._flush_seconds = tracking.flush_seconds
        self._buffer: list[tuple[int, str, int, float, float]] = []
        self._oldest = 0.0  # time.monotonic() of the oldest buffered row
        self._retry_at = 0.0  # after a failed flush, automatic flushes wait until then
        self._warned = False
        self._spilled = 0  # the first rows of the buffer saved to unsaved_path() by a failed end
        self._steps: dict[str, int] = {}
        self._keys: set[str] = set()
        self._count = 0
        self._lock = threading.Lock()
        self._started = time.time()
        self._cpu = os.times()
        probe = ctx.shared.provenance
        self._env = probe.environment()
        self._git = probe.git()

    @property
    def actor(self) -> Actor:
        """Who calls: the actor that started the run."""
        return self._ctx.actor

    # -- metrics and params ------------------------------------------------------------

    @exempt("hot path, per value: authorized once when the run was started (runs.start)")
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record ``value`` of ``key`` at ``step`` (default: the key's last step + 1).

        A value, step or timestamp the database could not hold is refused here with a
        UsageError (see :mod:`mlkernel.tracking.values`), so a flush never meets it.
        """
        self._append([self._row(key, value, step, timestamp)])

    @exempt("hot path, per value: authorized once when the run was started (runs.start)")
    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Several metrics at one step: all are checked before any is recorded."""
        if not isinstance(metrics, Mapping):
            raise UsageError(
                f"log_metrics takes a mapping of key to value, not {type(metrics).__name__}"
            )
        steps = dict(self._steps)
        try:
            rows = [self._row(key, value, step, timestamp) for key, value in metrics.items()]
        except BaseException:
            self._steps = steps  # a refused call changes nothing
            raise
        self._append(rows)

    def _row(
        self, key: Any, value: Any, step: Any, timestamp: Any
    ) -> tuple[int, str, int, float, float]:
        if self.state != "running":  # an ended run writes no more: the value would be lost
            raise UsageError(
                f"run {self.id} has ended ({self.state}); log metrics before it ends, "
                "or start a new run"
            )
        if type(key) is not str or key not in self._keys:
            self._keys.add(check_key(key))
        number = metric_value(key, value)
        if step is None:
            step = self._steps.get(key, -1) + 1
            if step > INT64_MAX:
                step = metric_step(key, step)  # raises, naming the range
        else:
            step = metric_step(key, step)
        when = time.time() if timestamp is None else metric_time(key, timestamp)
        self._steps[key] = step
        return (self.id, key, step, number, when)

    def _append(self, rows: list[tuple[int, str, int, float, float]]) -> None:
        buffer = self._buffer
        now = time.monotonic()
        if not buffer:
            self._oldest = now
        buffer.extend(rows)
        self._count += len(rows)
        if (
            len(buffer) >= self._flush_rows or now - self._oldest >= self._flush_seconds
        ) and now >= self._retry_at:
            self._flush_quietly()

    @exempt("calls log_params, which authorizes")
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    @operation("runs.log_params", Action.WRITE, no_cli="SDK: inside a run")
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Set parameters (once each). Values are stored as JSON: NumPy values become
        numbers and lists, NaN and infinities are kept, other objects their ``str()``;
        a value JSON cannot hold (a dict with tuple keys, a cycle) is a UsageError."""
        if not isinstance(params, Mapping):
            raise UsageError(
                f"log_params takes a mapping of key to value, not {type(params).__name__}"
            )
        for key in params:
            check_key(key, "parameter key")
        self._ctx.meta.add_params(self.id, dict(params))

    @exempt("writes what log_metric buffered: authorized when the run was started")
    def flush(self) -> None:
        """Write the buffered metrics now; on failure they stay buffered and this raises."""
        with self._lock:
            self._drop_imported()
            rows, self._buffer = self._buffer, []
            if rows:
                try:
                    self._ctx.meta.insert_metrics(rows)
                except BaseException:
                    self._buffer = rows + self._buffer  # keep them for the next attempt
                    raise
                self._unspill()
            self._retry_at = 0.0

    def _flush_quietly(self) -> None:
        """A flush the run started itself: a failure must not stop the user's work, so
        the rows stay buffered, the next automatic try waits ``flush_seconds``, and the
        end of the run writes them (or reports that it could not)."""
        try:
            self.flush()
        except Exception as exc:
            self._retry_at = time.monotonic() + max(self._flush_seconds, 1.0)
            if not self._warned:
                self._warned = True
                import warnings

                warnings.warn(
                    f"run {self.id}: {len(self._buffer)} metrics could not be written yet "
                    f"({_first_line(exc)}); they stay buffered and are written when the "
                    "run ends",
                    RuntimeWarning,
                    stacklevel=4,
                )

    # -- artifacts ---------------------------------------------------------------------

    @exempt("delegates to ArtifactService.log, which authorizes")
    def log_artifact(
        self,
        path_or_object: Any,
        *,
        kind: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        dedupe: bool = True,
    ) -> ArtifactRecord:
        return self._artifacts.log(
            path_or_object,
            kind=kind,
            name=name,
            properties=properties,
            execution_id=self.id,
            dedupe=dedupe,
        )

    @operation("runs.use_artifact", Action.READ, resource="ref", no_cli="SDK: inside a run")
    def use_artifact(self, ref: str) -> ArtifactRecord:
        """Declare ``ref`` an input of this run (an edge in the lineage graph)."""
        record = self._ctx.table.resolve(ref)
        self._ctx.meta.add_event(self.id, record.id, "in")
        return record

    # -- ending ----------------------------------------------------------------------

    @operation(
        "runs.finish", Action.WRITE, no_cli="SDK: leaving `with k.start_run(...)` ends the run"
    )
    def end(self, state: str = "completed", error: str | None = None) -> None:
        """Write the buffered metrics and the run's outcome in one transaction."""
        if self.state != "running":
            return
        if state not in ENDED_STATES:
            raise UsageError(
                f"a run ends as {', '.join(ENDED_STATES)}, not {state!r}; say why in error=..."
            )
        self.state = state
        env_id = None
        try:
            env_id = self._artifacts.log_env(self._env.result(timeout=60)).id
        except Exception:  # provenance is best effort; the run's own outcome must be kept
            env_id = None
        try:
            # Waiting keeps the answer honest: the lookup ran while this run was alive, so
            # it saw the code the run ran (a run shorter than `git status` waits for it).
            git = self._git.result(timeout=60)
        except Exception:
            git = None
        cpu = os.times()
        resources = {
            "wall_s": round(time.time() - self._started, 6),
            "cpu_user_s": round(cpu.user - self._cpu.user, 6),
            "cpu_system_s": round(cpu.system - self._cpu.system, 6),
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "metrics": self._count,
        }
        with self._lock:
            self._drop_imported()
            rows, self._buffer = self._buffer, []
            try:
                ended = self._ctx.meta.finish_execution(
                    self.id,
                    state,
                    error=error,
                    resources=resources,
                    env_artifact_id=env_id,
                    git_commit=git.commit if git else None,
                    git_dirty=git.dirty if git else None,
                    metrics=rows,
                )
            except BaseException as exc:
                self._buffer = rows
                self.state = "running"
                kept = self._spill(state)
                if isinstance(exc, Exception):
                    raise StorageError(
                        f"run {self.id} could not be recorded as {state} "
                        f"({_first_line(exc)}); {kept}"
                    ) from None
                raise  # Ctrl-C while ending: the metrics are saved all the same
        self._unspill()
        if not ended:  # ended meanwhile by `mlk runs cancel/fail`: that outcome stands
            self.state = self._ctx.meta.get_execution(self.id).state

    def _spill(self, state: str) -> str:
        """Save the unsaved buffer for `mlk runs fail/cancel`; where it is, in words."""
        import json

        from mlkernel.fsutil import write_atomic

        rows = self._buffer
        path = unsaved_path(self._ctx.config.state_dir, self.id)
        kept = f"its {len(rows)} unsaved metrics are kept in this Run object (call end() again)"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            doc = {"run": self.id, "state": state, "metrics": [list(r[1:]) for r in rows]}
            write_atomic(path, json.dumps(doc).encode())
            self._spilled = len(rows)
            kept += (
                f" and in {path}; once the database works, `mlk runs fail {self.id}` writes them in"
            )
        except OSError as err:
            kept += f"; saving them to {path} failed too ({err.strerror or err})"
        return kept

    def _unspill(self) -> None:
        """The saved copy goes once its rows are in the database (no duplicates later)."""
        if self._spilled:
            with contextlib.suppress(OSError):
                unsaved_path(self._ctx.config.state_dir, self.id).unlink(missing_ok=True)
            self._spilled = 0

    def _drop_imported(self) -> None:
        """Rows saved by a failed end that `mlk runs fail/cancel` has since written in
        (it removes the file) are not written a second time."""
        if self._spilled and not unsaved_path(self._ctx.config.state_dir, self.id).exists():
            del self._buffer[: self._spilled]
            self._spilled = 0

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("completed")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("cancelled", "KeyboardInterrupt: cancelled by the user")
        else:
            last = traceback.extract_tb(tb)[-1] if tb is not None else None
            where = f" (at {Path(last.filename).name}:{last.lineno})" if last else ""
            try:
                text = str(exc)
            except Exception:  # an exception that cannot describe itself still ends the run
                text = object.__repr__(exc)
            self.end("failed", f"{type(exc).__name__}: {text}{where}")

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.state}>"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__

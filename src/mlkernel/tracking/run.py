"""A tracked run: ``with k.start_run("train", params={...}) as run: ...``.

Metrics are appended to an in-memory buffer (about a microsecond a call) and written in
one transaction when the buffer holds ``flush_rows`` rows, when its oldest row is
``flush_seconds`` old, and when the run ends, so every metric logged is durable once the
``with`` block is left, whether it ended normally or by an exception.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlkernel.errors import InvalidNameError, UsageError

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["Run"]

MAX_KEY = 250


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise InvalidNameError(f"metric key {key!r} must be 1 to {MAX_KEY} characters")
    if any(ord(c) < 32 for c in key):
        raise InvalidNameError(f"metric key {key!r} contains a control character; remove it")
    return key


class Run:
    def __init__(self, kernel: Kernel, execution_id: int, name: str) -> None:
        self._kernel = kernel
        self.id = execution_id
        self.name = name
        self.state = "running"
        tracking = kernel.config.tracking
        self._flush_rows = tracking.flush_rows
        self._flush_seconds = tracking.flush_seconds
        self._buffer: list[tuple[int, str, int, float, float]] = []
        self._oldest = 0.0
        self._steps: dict[str, int] = {}
        self._keys: set[str] = set()
        self._count = 0
        self._lock = threading.Lock()
        self._started = time.time()
        self._cpu = os.times()
        probe = kernel.provenance
        self._env = probe.environment()
        self._git = probe.git()

    # -- metrics and params ------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        if key not in self._keys:
            self._keys.add(_check_key(key))
        if step is None:
            step = self._steps.get(key, -1) + 1
        self._steps[key] = step
        now = time.time() if timestamp is None else timestamp
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"metric {key!r}: {value!r} is not a number") from None
        buffer = self._buffer
        if not buffer:
            self._oldest = now
        buffer.append((self.id, key, step, number, now))
        self._count += 1
        if len(buffer) >= self._flush_rows or now - self._oldest >= self._flush_seconds:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step=step)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        for key in params:
            _check_key(key)
        self._kernel.meta.add_params(self.id, dict(params))

    def flush(self) -> None:
        with self._lock:
            rows, self._buffer = self._buffer, []
            if rows:
                try:
                    self._kernel.meta.insert_metrics(rows)
                except BaseException:
                    self._buffer = rows + self._buffer  # keep them for the next attempt
                    raise

    # -- artifacts ---------------------------------------------------------------------

    def log_artifact(
        self,
        path_or_object: Any,
        *,
        kind: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        dedupe: bool = True,
    ) -> ArtifactRecord:
        return self._kernel.log_artifact(
            path_or_object,
            kind=kind,
            name=name,
            properties=properties,
            execution_id=self.id,
            dedupe=dedupe,
        )

    def use_artifact(self, ref: str) -> ArtifactRecord:
        """Declare ``ref`` an input of this run (an edge in the lineage graph)."""
        record = self._kernel.resolve(ref)
        self._kernel.meta.add_event(self.id, record.id, "in")
        return record

    # -- ending ----------------------------------------------------------------------

    def end(self, state: str = "completed", error: str | None = None) -> None:
        """Write the buffered metrics and the run's outcome in one transaction."""
        if self.state != "running":
            return
        self.state = state
        env_id = None
        try:
            env_id = self._kernel.env_artifact(self._env.result(timeout=60)).id
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
            rows, self._buffer = self._buffer, []
            try:
                self._kernel.meta.finish_execution(
                    self.id,
                    state,
                    error=error,
                    resources=resources,
                    env_artifact_id=env_id,
                    git_commit=git.commit if git else None,
                    git_dirty=git.dirty if git else None,
                    metrics=rows,
                )
            except BaseException:
                self._buffer = rows
                self.state = "running"
                raise

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
            self.end("failed", f"{type(exc).__name__}: {exc}{where}")

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.state}>"

"""Where a step runs: ``inline`` (this process), ``process`` (a worker subprocess per
step, the default) or ``ray`` (a Ray task). Every executor takes a task spec (see
task.py) and a log sink, and returns the task result; the runner records the metadata.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

from mlkernel.errors import UsageError

__all__ = ["EXECUTORS", "Executor", "LogSink", "make_executor"]

EXECUTORS = ("inline", "process", "ray")
KILL_GRACE_S = 3.0


class LogSink:
    """A step's output: appended to its log file and, if ``echo``, shown live prefixed
    with the step's name."""

    def __init__(self, path: Path, step: str, echo: Callable[[str], None] | None) -> None:
        self.path = path
        self.step = step
        self._echo = echo
        self._file = path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.RLock()
        self._partial = ""
        self._echoing = False

    def write(self, text: str) -> int:
        with self._lock:
            if self._echoing:  # an echo that prints to a redirected stdout: not again
                return len(text)
            self._file.write(text)
            self._file.flush()
            if self._echo is not None:
                joined = self._partial + text
                *lines, self._partial = joined.split("\n")
                self._echoing = True
                try:
                    for line in lines:
                        self._echo(f"{self.step} | {line}")
                finally:
                    self._echoing = False
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._partial and self._echo is not None:
                self._echo(f"{self.step} | {self._partial}")
            self._partial = ""
            self._file.close()


class Executor(Protocol):
    name: str
    parallel: bool

    def run(self, spec: dict[str, Any], step: Any, sink: LogSink) -> dict[str, Any]: ...
    def cancel_all(self) -> None: ...
    def close(self) -> None: ...


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "output": None, "metrics": None, "error": error, "wall_s": None}


# -- inline ----------------------------------------------------------------------------


class _Tee(io.TextIOBase):
    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def write(self, text: str) -> int:
        return self._sink.write(text)

    def flush(self) -> None:
        self._sink.flush()


@contextlib.contextmanager
def _alarm(seconds: float | None, step: str) -> Iterator[None]:
    """A timeout for inline steps (main thread only: SIGALRM)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"step {step} timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class InlineExecutor:
    """Steps run one at a time in this process, so a debugger can step into them."""

    name = "inline"
    parallel = False

    def run(self, spec: dict[str, Any], step: Any, sink: LogSink) -> dict[str, Any]:
        from mlkernel.pipeline.task import run_spec

        tee = _Tee(sink)
        with (
            contextlib.redirect_stdout(tee),
            contextlib.redirect_stderr(tee),
            _alarm(spec.get("timeout"), spec["step"]),
        ):
            return run_spec(spec, step)

    def cancel_all(self) -> None:
        """Ctrl-C reaches the step itself (it runs in the main thread)."""

    def close(self) -> None:
        pass


# -- process ---------------------------------------------------------------------------


class ProcessExecutor:
    """Each step in ``python -m mlkernel.pipeline.worker``, in its own process group."""

    name = "process"
    parallel = True

    def __init__(
        self,
        root: Path,
        task_dir: Path,
        on_start: Callable[[int], None] | None = None,
        on_end: Callable[[int], None] | None = None,
    ) -> None:
        self.root = root
        self.task_dir = task_dir
        self.on_start = on_start
        self.on_end = on_end
        self._live: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._cancelled = False
        self._env = dict(os.environ, PYTHONUNBUFFERED="1")

    def run(self, spec: dict[str, Any], step: Any, sink: LogSink) -> dict[str, Any]:
        self.task_dir.mkdir(parents=True, exist_ok=True)
        base = self.task_dir / f"{spec['step']}-{os.urandom(6).hex()}"
        spec_path, result_path = base.with_suffix(".json"), base.with_suffix(".result.json")
        spec_path.write_text(json.dumps(spec))
        try:
            return self._run(spec, spec_path, result_path, sink)
        finally:
            spec_path.unlink(missing_ok=True)
            result_path.unlink(missing_ok=True)

    def _run(
        self, spec: dict[str, Any], spec_path: Path, result_path: Path, sink: LogSink
    ) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "mlkernel.pipeline.worker", str(spec_path), str(result_path)]
        with self._lock:
            if self._cancelled:
                return _failed("cancelled")
            proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: we end it and its children together
                env=self._env,
            )
            self._live[proc.pid] = proc
        timer = None
        timed_out = threading.Event()
        try:
            if self.on_start is not None:
                self.on_start(proc.pid)
            timeout = spec.get("timeout")
            if timeout is not None:

                def expire() -> None:
                    timed_out.set()
                    _end_group(proc)

                timer = threading.Timer(float(timeout), expire)
                timer.daemon = True
                timer.start()
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                sink.write(raw.decode("utf-8", "replace"))
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._live.pop(proc.pid, None)
            if proc.poll() is None:
                _end_group(proc)
            if self.on_end is not None:
                self.on_end(proc.pid)
        if timed_out.is_set():
            return _failed(f"TimeoutError: step {spec['step']} timed out after {timeout:g} s")
        if self._cancelled:
            return _failed("cancelled")
        try:
            result: dict[str, Any] = json.loads(result_path.read_text())
        except (OSError, ValueError):
            why = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            return _failed(f"the step's process {why} before reporting a result")
        return result

    def cancel_all(self) -> None:
        with self._lock:
            self._cancelled = True
            live = list(self._live.values())
        for proc in live:
            _end_group(proc)

    def close(self) -> None:
        self.cancel_all()


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group, then SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# -- ray -------------------------------------------------------------------------------


def _ray_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a Ray worker: the step, with its output captured (Ray also forwards it)."""
    from mlkernel.pipeline.task import run_spec

    buffer = io.StringIO()

    class Both(io.TextIOBase):
        def __init__(self, real: TextIO) -> None:
            self._real = real

        def write(self, text: str) -> int:
            buffer.write(text)
            return self._real.write(text)

    with (
        contextlib.redirect_stdout(Both(sys.stdout)),
        contextlib.redirect_stderr(Both(sys.stderr)),
    ):
        result = run_spec(spec)
    result["log"] = buffer.getvalue()
    return result


class RayExecutor:
    """Steps as Ray tasks on the cluster at ``address`` (default: a local one)."""

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError(
                "the ray executor needs Ray; install it with `pip install 'mlkernel[ray]'`"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if address:
                options["address"] = address
            elif num_cpus:
                options["num_cpus"] = num_cpus
            ray.init(**options)
        self._remote = ray.remote(max_retries=0)(_ray_task)
        self._live: set[Any] = set()
        self._lock = threading.Lock()
        self._cancelled = False

    def run(self, spec: dict[str, Any], step: Any, sink: LogSink) -> dict[str, Any]:
        ray = self._ray
        with self._lock:
            if self._cancelled:
                return _failed("cancelled")
            ref = self._remote.remote(spec)
            self._live.add(ref)
        try:
            result: dict[str, Any] = ray.get(ref, timeout=spec.get("timeout"))
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            return _failed(
                f"TimeoutError: step {spec['step']} timed out after {spec['timeout']:g} s"
            )
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError) as exc:
            return _failed("cancelled" if self._cancelled else f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._live.discard(ref)
        sink.write(result.pop("log", ""))
        return result

    def cancel_all(self) -> None:
        with self._lock:
            self._cancelled = True
            live = list(self._live)
        for ref in live:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)

    def close(self) -> None:
        pass


def make_executor(
    name: str,
    *,
    root: Path,
    task_dir: Path,
    on_start: Callable[[int], None] | None = None,
    on_end: Callable[[int], None] | None = None,
    ray_address: str | None = None,
) -> Executor:
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor(root, task_dir, on_start, on_end)
    if name == "ray":
        return RayExecutor(ray_address)
    raise UsageError(f"executor {name!r} is unknown; use one of: {', '.join(EXECUTORS)}")

"""ML mode, shown: a training loop alone, against a CPU hog, and against it in ML mode.

``show_ml_mode(kernel)`` is called by ``examples/demo.py`` (``make demo``); it also runs on
its own: ``python examples/demo_mlmode.py``. It takes about 12 s:

1. a 2-thread CPU-bound training loop (numpy, BLAS single-threaded so each thread is one
   busy core) runs alone for a few seconds: steps/s;
2. a background hog (2 busy processes in a session of their own, like someone else's job)
   starts, and the loop runs again;
3. the loop runs a third time inside ``with kernel.ml_mode():``; the trainer is started in
   the block, so it is born in the ``ml`` pool.

The hog is killed and ML mode left however the demo ends (Ctrl-C included); a scheduler
controller the demo had to start is shut down again, which restores every value it changed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TRAINER = r"""
import sys, threading, time
import numpy as np
warm, dur = float(sys.argv[1]), float(sys.argv[2])
counts = [0, 0]
stop = threading.Event()
def loop(i):
    rng = np.random.default_rng(i)
    a = rng.standard_normal((96, 96)); w = rng.standard_normal((96, 96)) * 0.01
    while not stop.is_set():
        for _ in range(20):
            h = np.tanh(a @ w)           # forward
            w -= 1e-4 * (a.T @ h)        # backward + update
        counts[i] += 1
ts = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
for t in ts: t.start()
time.sleep(warm)
c0, t0 = sum(counts), time.monotonic()
time.sleep(dur)
c1, t1 = sum(counts), time.monotonic()
stop.set()
for t in ts: t.join()
print((c1 - c0) / (t1 - t0))
"""
HOG = "import os\nos.fork()\nwhile True:\n    pass\n"  # two busy processes, one session
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(seconds: float, warmup: float = 0.5) -> float:
    """Steps per second of the training loop, run in a child process."""
    p = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(warmup), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **BLAS_ONE_THREAD},
    )
    try:
        out, _ = p.communicate()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"the training loop exited with {p.returncode}")
    return float(out.strip())


def _stop_hog(hog: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(hog.pid, signal.SIGKILL)  # its own session: the group is both processes
    hog.wait()
    # The forked half is not our child: wait until the kill has reached it too, so that
    # nothing of the demo still runs when it returns.
    deadline = time.monotonic() + 5
    while _group_running(hog.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def controller_running(runtime_dir: Path | None) -> bool:
    from mlkernel.sched.client import SOCKET_NAME, ping
    from mlkernel.sched.journal import default_runtime_dir

    return ping((runtime_dir or default_runtime_dir()) / SOCKET_NAME)


def stop_controller_if_unused(runtime_dir: Path | None) -> None:
    """Stop the controller this demo started, unless something else uses it (claims,
    placed jobs, connected clients, an applied policy); say which it is."""
    from mlkernel.errors import MLKernelError
    from mlkernel.sched.client import describe_user, stop_if_unused

    try:
        result = stop_if_unused(runtime_dir)
    except MLKernelError as exc:
        print(f"\nthe scheduler controller this demo started could not be stopped: {exc}")
        return
    if result.stopped:
        print(
            f"\nstopped the scheduler controller this demo started (pid {result.pid}); "
            "every value it changed is restored"
        )
    elif result.pid is not None:
        users = "; ".join(describe_user(u) for u in result.users)
        print(
            f"\nleft the scheduler controller (pid {result.pid}) running: it is used by "
            f"{users}; `mlk mode stop` stops it once they end"
        )


def show_ml_mode(kernel: Any, seconds: float = 3.0, runtime_dir: Path | None = None) -> None:
    """Print steps/s solo, with a background hog, and with the hog in ML mode.

    ``runtime_dir`` names the controller ``kernel.ml_mode()`` reaches when it is not the
    machine's (tests), so that the demo stops only a controller it started itself."""
    print("\n== ML mode: a 2-thread training loop vs a background CPU hog ==")
    try:
        import numpy  # noqa: F401  (the trainer needs it; say so before starting anything)
    except ImportError:
        print("  skipped: numpy is not installed (pip install numpy)")
        return
    from mlkernel.errors import MLKernelError

    started_here = not controller_running(runtime_dir)
    hog: subprocess.Popen[bytes] | None = None
    rows: list[tuple[str, float]] = []
    skipped = ""
    try:
        rows.append(("solo", _train(seconds)))
        hog = subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True)
        rows.append(("with the hog", _train(seconds)))
        try:
            with kernel.ml_mode():
                rows.append(("with the hog, ML mode", _train(seconds)))
        except MLKernelError as exc:
            skipped = f"ML mode skipped: the scheduler controller cannot be started ({exc})"
    finally:
        if hog is not None:
            _stop_hog(hog)
        if started_here and controller_running(runtime_dir):
            stop_controller_if_unused(runtime_dir)
    solo = rows[0][1]
    for label, rate in rows:
        print(f"  {label:24s} {rate:8.1f} steps/s   {rate / solo:5.2f} x solo")
    if skipped:
        print(f"  {skipped}")
    elif rows[-1][1] > 1.05 * solo:
        print("  (ML mode also holds back whatever else runs on this machine, so it can beat solo)")


def main() -> int:
    import tempfile

    import mlkernel

    with tempfile.TemporaryDirectory(prefix="mlk-demo-mlmode-") as d, mlkernel.init(d) as k:
        show_ml_mode(k)
    return 0


if __name__ == "__main__":
    sys.exit(main())

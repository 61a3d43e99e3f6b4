"""Fixtures for the scheduler tests: real cgroup v1 groups under a unique parent, removed
after each test, and helper processes that are always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlkernel.sched.cgroups import PoolGroups
from mlkernel.testing import need

CPU_MOUNT = Path("/sys/fs/cgroup/cpu")

HOG_CODE = (
    "import sys, threading\n"
    "open('/proc/self/comm', 'w').write(sys.argv[1])\n"
    "def spin():\n"
    "    while True: pass\n"
    "threading.Thread(target=spin, daemon=True).start()\n"
    "spin()\n"
)
SLEEPER_CODE = (
    "import sys, threading, time\n"
    "open('/proc/self/comm', 'w').write(sys.argv[1])\n"
    "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    "time.sleep(600)\n"
)


FAMILY_CODE = (
    "import os, sys, time\n"
    "def name(n): open('/proc/self/comm', 'w').write(n)\n"
    "name(sys.argv[1])\n"
    "kids = []\n"
    "for kid, detach in ((sys.argv[2], False), (sys.argv[3], True)):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        if detach: os.setsid()\n"
    "        name(kid); time.sleep(600); os._exit(0)\n"
    "    kids.append(pid)\n"
    "print(*kids, flush=True)\n"
    "time.sleep(600)\n"
)


def cgroup_v1_writable() -> bool:
    return (CPU_MOUNT / "cpu.shares").exists() and os.access(CPU_MOUNT, os.W_OK)


@pytest.fixture
def cg_parent() -> Iterator[str]:
    """A unique parent name for pool groups; the groups are removed afterwards (asserted)."""
    need(cgroup_v1_writable(), f"cgroup v1 cpu hierarchy at {CPU_MOUNT} is missing or not writable")
    name = f"mlkernel-test-{uuid.uuid4().hex[:10]}"
    yield name
    PoolGroups(CPU_MOUNT, 1, "cpu", name).remove()
    assert not (CPU_MOUNT / name).exists(), f"test left cgroup {CPU_MOUNT / name} behind"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start helper processes (own session by default); all are killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        kind: str = "sleeper", name: str = "mlktest", new_session: bool = True
    ) -> subprocess.Popen[bytes]:
        code = HOG_CODE if kind == "hog" else SLEEPER_CODE
        p = subprocess.Popen([sys.executable, "-c", code, name], start_new_session=new_session)
        procs.append(p)
        # Wait until the helper renamed itself and started its second thread.
        import time

        for _ in range(200):
            try:
                comm = Path(f"/proc/{p.pid}/comm").read_text().strip()
                if comm == name and len(os.listdir(f"/proc/{p.pid}/task")) >= 2:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture
def family() -> Iterator[Callable[[str], tuple[int, int, int]]]:
    """Start a parent named NAME with a child forked in its session (NAME-kid) and one that
    called setsid (NAME-away), all forked before anything claims the parent. Returns the
    three pids; all are killed at the end."""
    started: list[int] = []
    procs: list[subprocess.Popen[str]] = []

    def start(name: str) -> tuple[int, int, int]:
        p = subprocess.Popen(
            [sys.executable, "-c", FAMILY_CODE, name, f"{name[:9]}-kid", f"{name[:8]}-away"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        procs.append(p)
        assert p.stdout is not None
        kid, away = (int(x) for x in p.stdout.readline().split())
        started.extend((kid, away))
        import time

        for _ in range(200):  # the children rename themselves after setsid: wait for that
            try:
                names = [Path(f"/proc/{k}/comm").read_text().strip() for k in (kid, away)]
            except OSError:
                names = []
            if names == [f"{name[:9]}-kid", f"{name[:8]}-away"]:
                break
            time.sleep(0.02)
        return p.pid, kid, away

    yield start
    import signal

    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        p.kill()
        p.wait()


def take_snapshot(pid: int) -> dict[str, str]:
    """Every knob mlkernel may turn on ``pid``: per-thread nice, policy and ioprio, the
    autogroup nice and the cpu cgroup."""
    from mlkernel.sched import _proc, knobs

    snap = {
        "autogroup": knobs.read(f"pid:{pid}", "autogroup"),
        "cgroup": knobs.read(f"pid:{pid}", f"cgroup:cpu:{CPU_MOUNT}"),
    }
    for i, tid in enumerate(_proc.threads(pid)):
        for knob in ("nice", "policy", "ioprio"):
            snap[f"thread{i}.{knob}"] = knobs.read(f"tid:{tid}", knob)
    return snap


@pytest.fixture
def snapshot() -> Callable[[int], dict[str, str]]:
    return take_snapshot


def controller_pid(rd: Path) -> int:
    return int((rd / "controller.lock").read_text().split()[0])


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait for an event (not a timing assertion: the bound only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie child of ours also counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except OSError:
        return True


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A runtime dir other users can reach (pytest's tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="mlk-sched-test-"))
    d.chmod(0o755)
    yield d
    if (d / "controller.lock").exists():
        pid = controller_pid(d)
        if pid != os.getpid() and not gone(pid):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: gone(pid), "the controller to die")
    for f in d.iterdir():
        f.unlink()
    d.rmdir()

"""Fixtures for the scheduler tests: real cgroup v1 groups under a unique parent, removed
after each test, and helper processes that are always reaped."""

from __future__ import annotations

import os
import subprocess
import sys
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

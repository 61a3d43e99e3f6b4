"""The controller as it runs in production: a daemon subprocess reached over its socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import ConflictError, PermissionDeniedError
from mlkernel.sched.client import Client
from mlkernel.sched.controller import Controller
from mlkernel.sched.policy import PolicyConfig

from .conftest import CPU_MOUNT, gone, wait_until

Spawn = Callable[..., subprocess.Popen[bytes]]
Snap = Callable[[int], dict[str, str]]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_kill_job_then_kill_controller_restores_every_value(
    runtime_dir: Path, cg_parent: str, spawn: Spawn, snapshot: Snap
) -> None:
    name = f"hog{uuid.uuid4().hex[:8]}"
    cfg = {"parent": cg_parent, "hold": [{"name": name}]}
    job1, job2 = spawn(name="mljob1"), spawn(name="mljob2")
    held = spawn(kind="hog", name=name)
    before = {p.pid: snapshot(p.pid) for p in (job1, job2, held)}

    with Client(runtime_dir, config=cfg) as c:
        c.enter(job1.pid)
        assert snapshot(job1.pid)["cgroup"] == f"/{cg_parent}/ml"
        assert snapshot(held.pid)["cgroup"] == f"/{cg_parent}/batch"
        assert snapshot(held.pid)["thread0.policy"] == "idle"

        # kill -9 of the job: its pidfd ends the claim, and the mode with it.
        job1.kill()
        job1.wait()
        wait_until(lambda: not c.status()["ml_mode"], "the claim of the killed job to end")
        assert snapshot(held.pid) == before[held.pid]

        c.enter(job2.pid)
        assert snapshot(job2.pid) != before[job2.pid]
        assert snapshot(held.pid) != before[held.pid]
        first = c.status()["pid"]

    # kill -9 of the controller: nothing is restored yet...
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first), "the controller to die")
    assert snapshot(held.pid)["thread1.nice"] == "19"
    assert (CPU_MOUNT / cg_parent / "ml" / "cpu.shares").read_text().strip() == "102400"

    # ...until the next start replays the journal.
    with Client(runtime_dir, config=cfg) as c:
        status = c.status()
        assert status["pid"] != first
        assert status["recovered_at_start"] > 0
        assert not status["ml_mode"] and status["journal_open"] == 0
        assert snapshot(job2.pid) == before[job2.pid]
        assert snapshot(held.pid) == before[held.pid]
        assert (CPU_MOUNT / cg_parent / "ml" / "cpu.shares").read_text().strip() == "1024"
        second = status["pid"]
        c.shutdown()
    wait_until(lambda: gone(second), "the controller to exit after shutdown")
    assert not (runtime_dir / "sched.sock").exists()


UNPRIVILEGED_CLIENT = """
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
for pid in (int(sys.argv[2]), os.getpid()):
    f.write((json.dumps({"op": "enter", "pid": pid}) + "\\n").encode()); f.flush()
    print(f.readline().decode().strip())
"""


def test_a_user_may_claim_only_their_own_processes(
    runtime_dir: Path, cg_parent: str, spawn: Spawn
) -> None:
    from mlkernel.testing import need

    need(os.geteuid() == 0, "needs root to run a client as another uid (65534)")
    # The venv's interpreter lives under /root; uid 65534 needs one it can execute.
    python = next(
        (p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None
    )
    need(python is not None, "no system python3 that uid 65534 can run")
    assert python is not None
    root_job = spawn(name="rootjob")
    with Client(runtime_dir, config={"parent": cg_parent}) as c:
        out = subprocess.run(
            [python, "-c", UNPRIVILEGED_CLIENT, str(runtime_dir / "sched.sock"), str(root_job.pid)],
            user=65534,
            group=65534,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
        assert '"kind": "PermissionDeniedError"' in out[0] and "belongs to uid 0" in out[0]
        assert '"ok": true' in out[1]  # its own pid (which then exits: the claim ends)
        wait_until(lambda: not c.status()["ml_mode"], "the nobody client's claim to end")
        # Root may claim anyone's process.
        c.enter(root_job.pid)
        assert c.off() == [root_job.pid]
        c.shutdown()


def test_one_controller_per_runtime_dir(runtime_dir: Path, cg_parent: str) -> None:
    cfg = PolicyConfig.from_dict({"parent": cg_parent})
    a = Controller(runtime_dir, cfg)
    a.start()
    try:
        with pytest.raises(ConflictError, match="already runs"):
            Controller(runtime_dir, cfg).start()
        with Client(runtime_dir, autostart=False) as c:
            assert c.status()["pid"] == os.getpid()
            with pytest.raises(PermissionDeniedError):
                # The in-process controller runs as us; claim a process of another uid.
                a.handle({"op": "enter", "pid": 1}, os.getpid(), 65534)
    finally:
        a.stop()
    assert not (runtime_dir / "sched.sock").exists()


def test_one_controller_per_pool_parent(
    runtime_dir: Path, cg_parent: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two runtime dirs, one cgroup parent: the second controller is refused, and may
    start once the first has stopped."""
    cfg = PolicyConfig.from_dict({"parent": cg_parent})
    other = tmp_path_factory.mktemp("other-runtime")
    first = Controller(runtime_dir, cfg)
    first.start()
    try:
        second = Controller(other, cfg)
        with pytest.raises(ConflictError, match=f"manages the cgroups under .*{cg_parent}"):
            second.start()
        assert not (other / "sched.sock").exists()
    finally:
        first.stop()
    second = Controller(other, cfg)
    second.start()  # the runtime lock of the refused start was released, and the parent's
    second.stop()


def test_ml_mode_context_manager_claims_this_process(
    runtime_dir: Path, cg_parent: str, snapshot: Snap
) -> None:
    from mlkernel.sched import ml_mode

    before = snapshot(os.getpid())
    try:
        with ml_mode(runtime_dir=runtime_dir, config={"parent": cg_parent}) as claim:
            assert claim["claim"]["pid"] == os.getpid()
            assert snapshot(os.getpid())["cgroup"] == f"/{cg_parent}/ml"
        assert snapshot(os.getpid())["cgroup"] == before["cgroup"]
    finally:
        with Client(runtime_dir, autostart=False) as c:
            c.shutdown()


def test_mlk_mode_ml_runs_a_command_in_the_ml_pool(runtime_dir: Path, cg_parent: str) -> None:
    code = "print(open('/proc/self/cgroup').read()); raise SystemExit(3)"
    with Client(runtime_dir, config={"parent": cg_parent}) as c:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlkernel.cli import mode; import argparse;"
                "p = argparse.ArgumentParser(); s = p.add_subparsers(); mode.register(s);"
                "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))",
                "mode",
                "ml",
                "--runtime-dir",
                str(runtime_dir),
                "--",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        assert out.returncode == 3, out.stderr  # the command's exit code comes back
        assert f"cpu:/{cg_parent}/ml" in out.stdout
        wait_until(lambda: not c.status()["ml_mode"], "the claim to end with the command")
        c.shutdown()

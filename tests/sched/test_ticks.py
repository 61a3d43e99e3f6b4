"""What the controller does on its tick: placement rules, load history, ``policy = "auto"``;
and ``mlk mode run --pool``. Real daemons on tmp runtime dirs, ``tick_seconds = 1``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from mlkernel.errors import PermissionDeniedError
from mlkernel.sched import knobs
from mlkernel.sched.client import Client
from mlkernel.sched.controller import Controller
from mlkernel.sched.history import HISTORY_NAME, History
from mlkernel.sched.journal import default_runtime_dir, default_state_dir, state_dir_for
from mlkernel.sched.policy import PolicyConfig

from .conftest import CPU_MOUNT, gone, wait_until
from .test_history import office_load

Spawn = Callable[..., subprocess.Popen[bytes]]
SRC = str(Path(__file__).resolve().parents[2] / "src")
SATURDAY_NOON = datetime(2025, 3, 8, 12)


def cgroup(pid: int) -> str:
    return knobs.read(f"pid:{pid}", f"cgroup:cpu:{CPU_MOUNT}")


def test_rules_are_applied_on_the_tick_journaled_and_restored_after_a_crash(
    runtime_dir: Path, cg_parent: str, spawn: Spawn
) -> None:
    name = f"srv{uuid.uuid4().hex[:8]}"
    home = cgroup(os.getpid())  # helpers are born in ours
    early = spawn(name=name)
    cfg = {"parent": cg_parent, "tick_seconds": 1, "rules": [{"pool": "prod", "name": name}]}
    prod = f"/{cg_parent}/prod"
    with Client(runtime_dir, config=cfg) as c:
        wait_until(lambda: cgroup(early.pid) == prod, "the rule to place a running process")
        late = spawn(name=name)
        wait_until(lambda: cgroup(late.pid) == prod, "a tick to place a new process")
        status = c.status()
        placed = {(p["pid"], p["pool"], p["by"]) for p in status["placements"]}
        assert {(early.pid, "prod", "rule"), (late.pid, "prod", "rule")} <= placed
        assert status["policy"]["rules"] == 1
        # The same tick samples the pools into the history, next to the runtime dir here.
        wait_until(lambda: c.status()["history"]["sample"] > 0, "a load sample")
        assert c.status()["history"]["path"] == str(runtime_dir / HISTORY_NAME)
        first = status["pid"]

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first), "the controller to die")
    assert cgroup(early.pid) == prod  # nothing restored yet...
    with Client(runtime_dir, config={"parent": cg_parent}) as c:  # ...until the next start
        assert c.status()["recovered_at_start"] >= 2
        assert cgroup(early.pid) == cgroup(late.pid) == home
        assert c.status()["placements"] == []
        c.shutdown()


def test_mlk_mode_run_starts_a_command_in_a_pool(runtime_dir: Path, cg_parent: str) -> None:
    code = "print(open('/proc/self/cgroup').read()); raise SystemExit(4)"
    main = (
        "import sys; from mlkernel.cli import mode; import argparse;"
        "p = argparse.ArgumentParser(); s = p.add_subparsers(); mode.register(s);"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    )
    with Client(runtime_dir, config={"parent": cg_parent}) as c:
        cli = [sys.executable, "-c", main, "mode", "run", "--pool", "batch"]
        out = subprocess.run(
            [*cli, "--runtime-dir", str(runtime_dir), "--", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        assert out.returncode == 4, out.stderr
        assert f"cpu:/{cg_parent}/batch" in out.stdout
        wait_until(lambda: c.status()["placements"] == [], "the placement to end with its process")
        assert c.status()["journal_open"] == 0
        c.shutdown()


def test_place_is_refused_for_another_users_process(runtime_dir: Path, cg_parent: str) -> None:
    ctl = Controller(runtime_dir, PolicyConfig.from_dict({"parent": cg_parent}))
    ctl.start()
    try:
        with pytest.raises(PermissionDeniedError, match="only your own"):
            ctl.handle({"op": "place", "pid": 1, "pool": "batch"}, os.getpid(), 65534)
    finally:
        ctl.stop()


@pytest.mark.parametrize(("days", "learned"), [(15, True), (10, False)])
def test_policy_auto_puts_learned_offpeak_windows_ahead_of_the_static_ones(
    runtime_dir: Path, tmp_path: Path, cg_parent: str, days: int, learned: bool
) -> None:
    h = History(tmp_path / HISTORY_NAME)
    h.add_hourly(office_load(days))
    h.close()
    table = {
        "parent": cg_parent,
        "policy": "auto",
        "windows": ["daily 00-24: prod 80 / batch 5"],
    }
    ctl = Controller(runtime_dir, PolicyConfig.from_dict(table), state_dir=tmp_path)
    ctl.start()
    try:
        status = ctl.status()
        assert status["policy"]["mode"] == "auto"
        assert status["policy"]["learned"]["ok"] is learned
        label, weights = ctl.effective.window_at(SATURDAY_NOON)
        if learned:
            assert "weekends 00-24: batch 70" in status["policy"]["learned"]["windows"]
            assert (label, weights) == ("weekends 00-24", {"batch": 70.0})
        else:
            assert "10.0 days" in status["policy"]["learned"]["reason"]
            assert label == "daily 00-24"  # the static policy until 14 days are there
        assert ctl.mode is not None and ctl.mode.config is ctl.effective
    finally:
        ctl.stop()


def test_history_lives_in_the_machine_state_dir_only_for_the_machine_controller(
    tmp_path: Path,
) -> None:
    assert state_dir_for(None) == default_state_dir()
    assert state_dir_for(default_runtime_dir()) == default_state_dir()
    assert state_dir_for(tmp_path) == tmp_path

"""A run whose process is gone reads as ``lost``; any running or lost run can be ended.

On SQLite and PostgreSQL; the processes are real (killed with SIGKILL, so nothing of
theirs can end the run), and the CLI runs in subprocesses where exit codes matter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlkernel.errors import ConflictError
from mlkernel.kernel import Kernel
from mlkernel.testing import run_mlk

WORKER = textwrap.dedent(
    """
    import sys
    import mlkernel

    k = mlkernel.open(sys.argv[1])
    run = k.start_run(sys.argv[2])
    run.log_metric("loss", 0.5)
    run.flush()
    print(run.id, flush=True)
    sys.stdin.read()  # hold the run open until killed
    """
)


def mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlk("-C", str(root), *args)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlk: error: "), result.stderr
    assert fragment in lines[0]


def killed_run(k: Kernel, name: str) -> int:
    """A run started by another process that is then killed; its id."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(k.root), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        run_id = int(worker.stdout.readline())
        # alive: its record reads as running
        assert k.context.meta.get_execution(run_id).state == "running"
        assert [r.id for r in k.runs(state="running")] == [run_id]
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    return run_id


def test_a_killed_run_is_lost_and_can_be_cancelled_or_failed(project: Kernel) -> None:
    first = killed_run(project, "train")
    second = killed_run(project, "tune")
    record = project.context.meta.get_execution(first)
    assert record.state == "lost" and record.proc_start is not None
    assert {r.id for r in project.runs(state="lost")} == {first, second}
    assert project.runs(state="running") == []
    assert project.status().runs == {"lost": 2}

    listed = json.loads(mlk(project.root, "runs", "ls", "--json").stdout)
    assert {r["id"]: r["state"] for r in listed} == {first: "lost", second: "lost"}
    only = json.loads(mlk(project.root, "runs", "ls", "--state", "lost", "--json").stdout)
    assert sorted(r["id"] for r in only) == sorted([first, second])
    shown = mlk(project.root, "runs", "show", str(first))
    assert shown.returncode == 0 and f"run #{first} train  lost" in shown.stdout
    assert f"`mlk runs fail {first}`" in shown.stdout
    status = json.loads(mlk(project.root, "status", "--json").stdout)
    assert status["runs"] == {"lost": 2}

    cancelled = mlk(project.root, "runs", "cancel", str(first))
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"run {first} cancelled"
    failed = mlk(project.root, "runs", "fail", str(second), "--reason", "out of memory")
    assert failed.returncode == 0, failed.stderr
    one = project.context.meta.get_execution(first)
    two = project.context.meta.get_execution(second)
    assert (one.state, two.state) == ("cancelled", "failed")
    assert one.error is not None and "had ended" in one.error
    assert two.error is not None and two.error.endswith("out of memory")
    assert one.ended_at is not None
    assert [v for _k, _s, v, _t in project.metrics(first)] == [0.5]  # kept

    again = mlk(project.root, "runs", "cancel", str(first))
    one_line_error(again, 5, "is not running (it cancelled)")
    one_line_error(mlk(project.root, "runs", "fail", str(second)), 5, "(it failed)")
    one_line_error(mlk(project.root, "runs", "fail", "999999"), 4, "no run with id 999999")


def test_a_reused_pid_or_another_host_is_told_apart(project: Kernel) -> None:
    meta = project.context.meta
    meta.insert_execution("mine", "run", host=project.host, pid=os.getpid(), user="u")
    reused = meta.insert_execution("reused", "run", host=project.host, pid=os.getpid(), user="u")
    with meta.write() as tx:  # this pid, but a process that started an hour earlier
        tx.execute("UPDATE execution SET proc_start = proc_start - 3600 WHERE id = :id",
                   {"id": reused})  # fmt: skip
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(gone.stdout)
    meta.insert_execution("far", "run", host="another-host", pid=dead_pid, user="u")
    states = {r.name: r.state for r in project.runs()}
    assert states == {"mine": "running", "reused": "lost", "far": "running"}


def test_ending_a_live_tracked_run_from_outside_stands(project: Kernel) -> None:
    with project.start_run("train") as run:
        run.log_metric("loss", 1.0)
        assert project.end_run(run.id, "cancelled", "wrong data") == "cancelled"
        run.log_metric("loss", 0.5)
    record = project.context.meta.get_execution(run.id)
    assert record.state == "cancelled" and run.state == "cancelled"
    assert record.error is not None and record.error.endswith("wrong data")
    assert [v for _k, _s, v, _t in project.metrics(run.id)] == [1.0, 0.5]
    with pytest.raises(ConflictError, match="is not running"):
        project.end_run(run.id, "failed")


def test_a_lost_pipeline_run_ends_with_its_running_steps(project: Kernel) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    who = {"host": project.host, "pid": int(gone.stdout), "user": "u"}
    run_id, context = project.context.meta.start_pipeline("pipe", params={}, properties={}, **who)
    done = project.context.meta.record_step("prep", state="completed", context_id=context, ended=True,
                                    **who)  # fmt: skip
    hung = project.context.meta.record_step("train", state="running", context_id=context, **who)
    assert project.context.meta.get_execution(run_id).state == "lost"
    assert project.context.meta.get_execution(hung).state == "lost"
    result = mlk(project.root, "runs", "cancel", str(run_id))
    assert result.returncode == 0, result.stderr
    states = {i: project.context.meta.get_execution(i).state for i in (run_id, done, hung)}
    assert states == {run_id: "cancelled", done: "completed", hung: "cancelled"}


def test_a_pipeline_run_on_another_host_is_failed_not_cancelled(project: Kernel) -> None:
    who = {"host": "another-host", "pid": 4242, "user": "u"}
    run_id, context = project.context.meta.start_pipeline("pipe", params={}, properties={}, **who)
    step = project.context.meta.record_step("train", state="running", context_id=context, **who)
    assert project.context.meta.get_execution(run_id).state == "running"  # cannot be judged here
    one_line_error(mlk(project.root, "runs", "cancel", str(run_id)), 5, "mlk runs fail")
    result = mlk(project.root, "runs", "fail", str(run_id), "--reason", "machine is gone")
    assert result.returncode == 0, result.stderr
    assert project.context.meta.get_execution(run_id).state == "failed"
    assert project.context.meta.get_execution(step).state == "failed"

"""The controller's life cycle as users see it: who started it and what uses it
(`mlk mode status`), `mlk mode stop` stopping it only when nothing needs it, and start
errors that still say why after the controller's runtime directory is gone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import StorageError
from mlkernel.sched.client import Client, start_controller

from .conftest import CPU_MOUNT, controller_pid, gone, wait_until

Spawn = Callable[..., subprocess.Popen[bytes]]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def mlk(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process (exit codes and stderr as a user gets them)."""
    return subprocess.run(
        [sys.executable, "-m", "mlkernel", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"},
    )


def cgroup_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
    raise AssertionError(f"no cpu cgroup for {pid}")


def test_status_names_who_started_it_and_stop_waits_for_its_users(
    runtime_dir: Path, cg_parent: str, spawn: Spawn
) -> None:
    said: list[str] = []
    job = spawn(name="mljob-life")
    before = cgroup_of(job.pid)
    c = Client(
        runtime_dir, config={"parent": cg_parent}, label="project churn (/p)", announce=said.append
    )
    try:
        pid = controller_pid(runtime_dir)
        # Starting the machine's daemon is said, in one line, with the way to stop it.
        assert len(said) == 1 and f"pid {pid}" in said[0] and "`mlk mode stop`" in said[0]
        c.enter(job.pid)
        assert cgroup_of(job.pid) == f"/{cg_parent}/ml"

        status = mlk("mode", "status", "--runtime-dir", str(runtime_dir))
        assert status.returncode == 0, status.stderr
        assert f"controller: pid {pid} (uid {os.getuid()}), running since " in status.stdout
        assert f"started by pid {os.getpid()}" in status.stdout
        assert "[project churn (/p)]" in status.stdout
        assert f"ML-mode job pid {job.pid}: project churn (/p)" in status.stdout

        # A live claim keeps it: the refusal names the job, and nothing is undone.
        refused = mlk("mode", "stop", "--runtime-dir", str(runtime_dir))
        assert refused.returncode == 5, refused.stderr
        assert f"ML-mode job pid {job.pid}: project churn (/p)" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert not gone(pid) and cgroup_of(job.pid) == f"/{cg_parent}/ml"

        # With the claim ended, this test's open connection is the last user.
        c.leave(job.pid)
        refused = mlk("mode", "stop", "--runtime-dir", str(runtime_dir))
        assert refused.returncode == 5
        assert f"client pid {os.getpid()}" in refused.stderr
    finally:
        c.close()

    stopped = mlk("mode", "stop", "--runtime-dir", str(runtime_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the scheduler controller (pid {pid})" in stopped.stdout
    assert gone(pid) and not (runtime_dir / "sched.sock").exists()
    assert cgroup_of(job.pid) == before
    again = mlk("mode", "stop", "--runtime-dir", str(runtime_dir))
    assert again.returncode == 0 and "nothing to stop" in again.stdout


def test_stop_force_stops_it_with_a_live_claim_and_restores(
    runtime_dir: Path, cg_parent: str, spawn: Spawn
) -> None:
    job = spawn(name="mljob-force")
    before = cgroup_of(job.pid)
    with Client(runtime_dir, config={"parent": cg_parent}, announce=None) as c:
        c.enter(job.pid)
        pid = controller_pid(runtime_dir)
    # Without a label, the claim is described by its command line.
    status = mlk("mode", "status", "--runtime-dir", str(runtime_dir), "--json")
    users = json.loads(status.stdout)["users"]
    assert [(u["kind"], u["pid"]) for u in users] == [("claim", job.pid)]
    assert "python" in users[0]["what"]
    out = mlk("mode", "stop", "--force", "--runtime-dir", str(runtime_dir))
    assert out.returncode == 0, out.stderr
    wait_until(lambda: gone(pid), "the controller to exit")
    assert cgroup_of(job.pid) == before


def test_mlk_mode_ml_says_what_it_did(runtime_dir: Path, cg_parent: str) -> None:
    with Client(runtime_dir, config={"parent": cg_parent}, announce=None) as c:
        out = mlk(
            "mode", "ml", "--runtime-dir", str(runtime_dir), "--", sys.executable, "-c", "pass"
        )
        assert out.returncode == 0, out.stderr
        line = out.stderr.strip().splitlines()[-1]
        assert line.startswith("mlk: ML mode for `")
        assert f"pool /{cg_parent}/ml" in line and "moved into" in line
        assert "restored (" in line and "still open" not in line
        assert not c.status()["ml_mode"]
        c.shutdown()


def test_a_failed_start_says_why_after_its_log_is_gone(runtime_dir: Path, cg_parent: str) -> None:
    """The benchmark's case: a second controller on a pool parent the first still holds,
    started in a temporary runtime directory that is deleted right after."""
    with Client(runtime_dir, config={"parent": cg_parent}, announce=None) as first:
        other = Path(tempfile.mkdtemp(prefix="mlk-sched-test-other-"))
        try:
            with pytest.raises(StorageError) as caught:
                start_controller(other, {"parent": cg_parent})
        finally:
            shutil.rmtree(other)
        message = str(caught.value)
        assert "exited with 5" in message
        assert f"manages the cgroups under {CPU_MOUNT / cg_parent}" in message
        assert "\n" not in message
        first.shutdown()


def test_a_controller_that_hangs_up_is_reported_with_its_last_words(tmp_path: Path) -> None:
    """A controller that dies mid-request: the error quotes its log instead of "see its log"."""
    import socket
    import threading

    rd = tmp_path / "rd"
    rd.mkdir()
    (rd / "controller.log").write_text("INFO serving\nERROR journal write failed: disk full\n")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(rd / "sched.sock"))
    server.listen(8)

    def serve() -> None:  # answers pings, hangs up on anything else
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rwb")
                for line in f:
                    if b'"ping"' not in line:
                        break
                    f.write(b'{"ok": true, "pid": 1}\n')
                    f.flush()
                f.close()  # the file holds the socket open too

    threading.Thread(target=serve, daemon=True).start()
    try:
        with Client(rd, autostart=False) as c, pytest.raises(StorageError) as caught:
            c.status()
    finally:
        server.close()
    assert "closed the connection" in str(caught.value)
    assert "ERROR journal write failed: disk full" in str(caught.value)


def test_a_pipeline_run_names_its_project_in_the_controllers_users(
    tmp_path: Path, cg_parent: str, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's ML-mode claims carry the project, which `mlk mode status` shows."""
    from mlkernel.pipeline.loop import MLMode

    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    warnings: list[str] = []
    step = spawn(name="mlstep")
    mode = MLMode({"parent": cg_parent}, warnings.append, "project churn, pipeline run")
    try:
        mode.enter(step.pid)
        assert warnings == []
        with Client(xdg / "mlkernel", autostart=False) as c:
            users = c.status()["users"]
        assert {
            "kind": "claim",
            "pid": step.pid,
            "what": "project churn, pipeline run",
        }.items() <= {k: v for u in users if u["pid"] == step.pid for k, v in u.items()}.items()
        mode.leave(step.pid)
    finally:
        mode.close()
        with Client(xdg / "mlkernel", autostart=False) as c:
            pid = c.status()["pid"]
            c.shutdown()
        wait_until(lambda: gone(pid), "the controller to exit")


def test_kernel_ml_mode_names_the_project(
    tmp_path: Path, cg_parent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlkernel

    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    root = tmp_path / "proj"
    mlkernel.init(root, name="churn").close()
    with (root / "mlkernel.toml").open("a") as f:
        f.write(f'\n[sched]\nparent = "{cg_parent}"\n')
    try:
        with mlkernel.open(root) as k, k.ml_mode():
            with Client(xdg / "mlkernel", autostart=False) as c:
                status = c.status()
            mine = [u for u in status["users"] if u["pid"] == os.getpid()]
            assert [u["what"] for u in mine] == [f"project churn ({root.resolve()})"]
            assert status["started_by"]["pid"] == os.getpid()
    finally:
        with Client(xdg / "mlkernel", autostart=False) as c:
            pid = c.status()["pid"]
            c.shutdown()
        wait_until(lambda: gone(pid), "the controller to exit")

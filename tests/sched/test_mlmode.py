from __future__ import annotations

import dataclasses
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import NotFoundError
from mlkernel.sched._watch import ExitWatcher
from mlkernel.sched.backends import detect
from mlkernel.sched.cgroups import PoolGroups
from mlkernel.sched.journal import Applier, Journal
from mlkernel.sched.mlmode import MLMode
from mlkernel.sched.policy import PolicyConfig

from .conftest import CPU_MOUNT

Spawn = Callable[..., subprocess.Popen[bytes]]
Snap = Callable[[int], dict[str, str]]


def shares(groups: PoolGroups, pool: str | None) -> str:
    return (groups.path(pool) / "cpu.shares").read_text().strip()


def test_refcounted_mode_with_cgroups_restores_exactly(
    tmp_path: Path, cg_parent: str, spawn: Spawn, snapshot: Snap
) -> None:
    name = f"hog{uuid.uuid4().hex[:8]}"
    job1, job2 = spawn(name="mljob1"), spawn(name="mljob2")
    held, bystander = spawn(name=name), spawn(name="bystander")
    before = {p.pid: snapshot(p.pid) for p in (job1, job2, held, bystander)}
    groups = PoolGroups(CPU_MOUNT, 1, "cpu", cg_parent)
    cfg = PolicyConfig.from_dict({"parent": cg_parent, "hold": [{"name": name}]})
    mode = MLMode(Applier(Journal(tmp_path)), detect(), groups, cfg)

    mode.enter(job1.pid)
    assert mode.active
    assert snapshot(job1.pid)["cgroup"] == f"/{cg_parent}/ml"
    assert snapshot(job1.pid)["thread1.ioprio"] == "be/0"
    assert shares(groups, None) == shares(groups, "ml") == "102400"
    assert shares(groups, "dev") == shares(groups, "batch") == "10"
    h = snapshot(held.pid)
    assert h["cgroup"] == f"/{cg_parent}/batch"
    assert {h[f"thread{i}.{k}"] for i in (0, 1) for k in ("nice", "policy", "ioprio")} == {
        "19",
        "idle",
        "idle/0",
    }
    assert snapshot(bystander.pid) == before[bystander.pid]  # no rule: never touched

    mode.enter(job2.pid)
    assert mode.leave(job1.pid)
    assert mode.active and snapshot(job1.pid) == before[job1.pid]
    assert snapshot(held.pid)["cgroup"] == f"/{cg_parent}/batch"
    assert mode.leave(job2.pid)
    assert not mode.active
    for p in (job1, job2, held, bystander):
        assert snapshot(p.pid) == before[p.pid]
    assert shares(groups, "batch") == shares(groups, "ml") == "1024"
    assert mode.applier.journal.pending() == []
    assert not mode.leave(job2.pid)


def test_priority_backend_without_cgroups_restores_exactly(
    tmp_path: Path, spawn: Spawn, snapshot: Snap
) -> None:
    name = f"hog{uuid.uuid4().hex[:8]}"
    job, held = spawn(name="mljob"), spawn(name=name)
    before = {p.pid: snapshot(p.pid) for p in (job, held)}
    report = detect()
    cfg = PolicyConfig.from_dict({"hold": [{"name": name}]})
    mode = MLMode(Applier(Journal(tmp_path)), report, None, cfg)
    mode.enter(job.pid)
    if report.privileged:
        assert snapshot(job.pid)["thread0.nice"] == "-5"
        assert snapshot(held.pid)["autogroup"] == (
            "19"
            if report.autogroup and before[held.pid]["autogroup"] != "none"
            else before[held.pid]["autogroup"]
        )
    assert snapshot(held.pid)["thread1.ioprio"] == "idle/0"
    mode.leave(job.pid)
    assert snapshot(job.pid) == before[job.pid]
    assert snapshot(held.pid) == before[held.pid]


def test_unprivileged_report_uses_only_reversible_knobs(
    tmp_path: Path, spawn: Spawn, snapshot: Snap
) -> None:
    name = f"hog{uuid.uuid4().hex[:8]}"
    job, held = spawn(name="mljob"), spawn(name=name)
    before = snapshot(held.pid)
    report = dataclasses.replace(detect(), privileged=False, rlimit_nice=0)
    mode = MLMode(
        Applier(Journal(tmp_path)), report, None, PolicyConfig.from_dict({"hold": [{"name": name}]})
    )
    mode.enter(job.pid)
    during = snapshot(held.pid)
    assert during["thread0.policy"] == "batch"  # never idle: leaving IDLE needs CAP_SYS_NICE
    assert during["thread0.nice"] == before["thread0.nice"]  # nice up is one-way at RLIMIT_NICE 0
    assert during["autogroup"] == before["autogroup"]
    assert snapshot(job.pid)["thread0.nice"] == "0"
    mode.leave(job.pid)
    assert snapshot(held.pid) == before


def test_claiming_a_missing_process_is_not_found(tmp_path: Path) -> None:
    mode = MLMode(Applier(Journal(tmp_path)), detect(), None)
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(NotFoundError):
        mode.enter(p.pid)
    assert not mode.active


def test_exit_watcher_reports_a_killed_process(spawn: Spawn) -> None:
    exited: list[int] = []
    done = threading.Event()

    def on_exit(pid: int) -> None:
        exited.append(pid)
        done.set()

    w = ExitWatcher(on_exit)
    try:
        p = spawn()
        w.watch(p.pid)
        assert not done.wait(0.2)
        p.kill()
        assert done.wait(10), "no exit notification within 10 s"
        assert exited == [p.pid]
    finally:
        w.close()


def test_a_claim_covers_children_forked_before_it_but_not_detached_ones(
    tmp_path: Path, cg_parent: str, family: Callable[[str], tuple[int, int, int]], snapshot: Snap
) -> None:
    job, kid, away = family(f"job{uuid.uuid4().hex[:8]}")
    before = {p: snapshot(p) for p in (job, kid, away)}
    groups = PoolGroups(CPU_MOUNT, 1, "cpu", cg_parent)
    mode = MLMode(Applier(Journal(tmp_path)), detect(), groups, PolicyConfig(parent=cg_parent))
    mode.enter(job)
    assert snapshot(job)["cgroup"] == snapshot(kid)["cgroup"] == f"/{cg_parent}/ml"
    assert snapshot(kid)["thread0.ioprio"] == "be/0"
    assert snapshot(away) == before[away]  # it called setsid: detached on purpose
    mode.leave(job)
    assert {p: snapshot(p) for p in before} == before


def test_exit_watcher_logs_a_failing_callback_and_keeps_watching(
    spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    second = threading.Event()

    def on_exit(pid: int) -> None:
        calls.append(pid)
        if len(calls) == 1:
            raise RuntimeError("restore exploded")
        second.set()

    w = ExitWatcher(on_exit)
    try:
        a, b = spawn(), spawn()
        w.watch(a.pid)
        a.kill()
        a.wait()
        w.watch(b.pid)
        b.kill()
        assert second.wait(10), "the watcher stopped after a failing callback"
    finally:
        w.close()
    assert calls == [a.pid, b.pid]
    failed = [r for r in caplog.records if "exit callback" in r.getMessage()]
    assert failed and failed[0].exc_info is not None and "restore exploded" in caplog.text

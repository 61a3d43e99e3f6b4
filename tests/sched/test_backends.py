from __future__ import annotations

import os
from pathlib import Path

from mlkernel.sched.backends import detect


def make_tree(
    root: Path, unified: str | None, v1: dict[str, list[str]], *, pure_v2: bool = False
) -> None:
    if unified is not None:
        base = root if pure_v2 else root / "unified"
        base.mkdir(parents=True, exist_ok=True)
        (base / "cgroup.controllers").write_text(unified + "\n")
    for ctrl, files in v1.items():
        (root / ctrl).mkdir(parents=True)
        for f in files:
            (root / ctrl / f).write_text("0\n")


def test_hybrid_host_with_hugetlb_only_in_v2_falls_back_to_v1_and_says_why(tmp_path: Path) -> None:
    make_tree(tmp_path, "hugetlb", {"cpu": ["cpu.shares"], "memory": [], "freezer": []})
    r = detect(tmp_path)
    assert r.cpu == "cgroup-v1"
    assert r.cgroup_version == 1 and r.cgroup_mount == str(tmp_path / "cpu")
    why = r.why_not("cpu")
    assert len(why) == 1
    assert "cpu controller not enabled" in why[0] and "(only hugetlb)" in why[0]
    assert r.memory == "cgroup-v1" and r.pause == "cgroup-v1"


def test_pure_v2_with_cpu_controller_is_preferred(tmp_path: Path) -> None:
    make_tree(tmp_path, "cpu io memory pids", {}, pure_v2=True)
    r = detect(tmp_path)
    assert (r.cpu, r.memory, r.pause) == ("cgroup-v2", "cgroup-v2", "cgroup-v2")
    assert r.cgroup_version == 2 and r.why_not("cpu") == []


def test_no_cgroups_means_priority_with_reasons(tmp_path: Path) -> None:
    r = detect(tmp_path / "nothing")
    assert r.cpu == "priority"
    assert [w.split(":")[0] for w in r.why_not("cpu")] == ["cgroup-v2", "cgroup-v1"]
    assert r.memory == "oom_score_adj" and r.pause == "sigstop"
    assert r.to_dict()["reversible_only"] is (not r.privileged)


def test_this_machine_report_is_consistent() -> None:
    r = detect()
    assert r.cpu in ("cgroup-v2", "cgroup-v1", "priority")
    assert r.io in ("cgroup-v2", "cgroup-v1", "ioprio")
    assert r.privileged == (os.geteuid() == 0 or r.privileged)
    for res in ("cpu", "io", "memory", "pause"):
        active = [m for m in r.mechanisms if m.resource == res and m.name == getattr(r, res)]
        assert active and active[0].available, res

"""Placement in pools: ``[[sched.rules]]`` applied by the controller, and explicit placement."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import ConfigError, UsageError
from mlkernel.sched import knobs
from mlkernel.sched.backends import detect
from mlkernel.sched.cgroups import PoolGroups
from mlkernel.sched.journal import Applier, Journal
from mlkernel.sched.mlmode import MLMode
from mlkernel.sched.placement import Placer, proc_info
from mlkernel.sched.policy import PolicyConfig

from .conftest import CPU_MOUNT

Spawn = Callable[..., subprocess.Popen[bytes]]
Family = Callable[[str], tuple[int, int, int]]
KNOB = f"cgroup:cpu:{CPU_MOUNT}"


def cgroup(pid: int) -> str:
    return knobs.read(f"pid:{pid}", KNOB)


def test_rules_parse_and_errors_name_the_fix() -> None:
    cfg = PolicyConfig.from_dict(
        {"rules": [{"pool": "prod", "exe": "uvicorn"}, {"pool": "batch", "user": "ci"}]}
    )
    assert [(r.pool, r.exe, r.user) for r in cfg.rules] == [
        ("prod", "uvicorn", None),
        ("batch", None, "ci"),
    ]
    for bad, words in [
        ({"rules": [{"pool": "ml", "exe": "x"}]}, ["pool = 'ml'", "prod, dev, batch"]),
        ({"rules": [{"pool": "prod"}]}, ["matches nothing", "name, exe, user, cgroup"]),
        ({"rules": [{"pool": "prod", "pid": 3}]}, ["rules]][0].pid", "accepted keys"]),
        ({"rules": {"pool": "prod"}}, ["[[sched.rules]]"]),
    ]:
        with pytest.raises(ConfigError) as info:
            PolicyConfig.from_dict(bad)
        for w in words:
            assert w in str(info.value)


def test_exe_matches_the_script_an_interpreter_runs(tmp_path: Path, spawn: Spawn) -> None:
    script = tmp_path / "uvicorn"
    script.write_text("import time\ntime.sleep(600)\n")
    p = subprocess.Popen([sys.executable, str(script)])
    try:
        import time

        for _ in range(100):  # until the exec is done and cmdline shows the script
            info = proc_info(p.pid, None)
            if info is not None and "uvicorn" in info.exes:
                break
            time.sleep(0.02)
        assert info is not None
        assert {"uvicorn", str(script), Path(sys.executable).name} <= info.exes
        rule = PolicyConfig.from_dict({"rules": [{"pool": "prod", "exe": "uvicorn"}]}).rules[0]
        assert rule.matches(info)
        assert not rule.matches(proc_info(spawn(name="other").pid, None))  # type: ignore[arg-type]
    finally:
        p.kill()
        p.wait()


def test_rules_place_matches_and_their_earlier_children_then_restore(
    tmp_path: Path, cg_parent: str, family: Family, spawn: Spawn
) -> None:
    name = f"srv{uuid.uuid4().hex[:8]}"
    parent, kid, away = family(name)
    bystander = spawn(name="bystander")
    before = {p: cgroup(p) for p in (parent, kid, away, bystander.pid)}
    groups = PoolGroups(CPU_MOUNT, 1, "cpu", cg_parent)
    groups.ensure()
    cfg = PolicyConfig.from_dict({"parent": cg_parent, "rules": [{"pool": "prod", "name": name}]})
    placer = Placer(Applier(Journal(tmp_path)), groups, cfg)

    moved = placer.apply_rules()
    assert sorted(int(c.target[4:]) for c in moved) == sorted((parent, kid, away))
    # A child follows its placed parent even in its own session: rules name process trees.
    assert {cgroup(p) for p in (parent, kid, away)} == {f"/{cg_parent}/prod"}
    assert cgroup(bystander.pid) == before[bystander.pid]
    assert placer.apply_rules() == []  # the next tick writes nothing: all are in place

    placer.reload(PolicyConfig.from_dict({"parent": cg_parent}))  # rules removed
    assert {p: cgroup(p) for p in before} == before
    assert placer.applier.journal.pending() == []


def test_an_explicit_placement_and_a_claim_win_over_rules(
    tmp_path: Path, cg_parent: str, spawn: Spawn
) -> None:
    name = f"job{uuid.uuid4().hex[:8]}"
    placed, claimed = spawn(name=name), spawn(name=name)
    before = {p.pid: cgroup(p.pid) for p in (placed, claimed)}
    groups = PoolGroups(CPU_MOUNT, 1, "cpu", cg_parent)
    groups.ensure()
    applier = Applier(Journal(tmp_path))
    cfg = PolicyConfig.from_dict({"parent": cg_parent, "rules": [{"pool": "dev", "name": name}]})
    placer = Placer(applier, groups, cfg)
    mode = MLMode(applier, detect(), groups, cfg)

    placer.place(placed.pid, "batch")
    mode.enter(claimed.pid)
    assert placer.apply_rules() == []
    assert cgroup(placed.pid) == f"/{cg_parent}/batch"
    assert cgroup(claimed.pid) == f"/{cg_parent}/ml"
    with pytest.raises(UsageError, match="mlk mode ml"):
        placer.place(placed.pid, "ml")

    mode.leave(claimed.pid)
    assert placer.release(placed.pid) and not placer.placed(placed.pid)
    assert {p: cgroup(p) for p in before} == before
    # With the claim and the placement gone, the rule applies on the next tick.
    assert len(placer.apply_rules()) == 2
    applier.restore()
    assert {p: cgroup(p) for p in before} == before

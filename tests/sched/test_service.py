"""The scheduler's service: what `mlk policy`, `mlk mode` and `mlk doctor` call, for an actor,
with typed results whose ``to_dict()`` is the controller's answer as ``--json`` prints it."""

from __future__ import annotations

import ast
import os
from datetime import datetime
from pathlib import Path

import pytest

from mlkernel import authz
from mlkernel.authz import Action, Actor
from mlkernel.errors import ConfigError, NotFoundError, UsageError
from mlkernel.sched.client import Client
from mlkernel.sched.results import ControllerUser, MachineStatus, Starter
from mlkernel.sched.service import SchedService, sched_table

from .conftest import gone, wait_until

CLI = Path(__file__).resolve().parents[2] / "src" / "mlkernel" / "cli"
ME = Actor("tester")


def test_the_nearest_project_file_gives_the_policy(tmp_path: Path) -> None:
    (tmp_path / "mlkernel.toml").write_text(
        '[project]\nname = "p"\n[sched]\noffpeak = "22:00-06:00"\n'
        'windows = ["weekdays 08-20: prod 50 / dev 40"]\n'
    )
    inner = tmp_path / "src" / "deep"
    inner.mkdir(parents=True)
    sched = SchedService.from_files(ME, start=inner)
    now = sched.policy_now(datetime(2026, 3, 2, 12, 0))  # a Monday, noon
    assert now.window == "weekdays 08-20"
    assert [p.pool for p in now.pools] == ["ml", "prod", "dev", "batch"]
    assert sum(p.share for p in now.pools) == pytest.approx(100, abs=0.5)
    assert now.to_dict()["pools"][1]["weight"] == 50
    night = sched.plan(datetime(2026, 3, 2, 23, 0), hours=1).rows[0]
    assert night.window == "base" and night.to_dict()["start"] == "2026-03-02T23:00:00"


def test_no_file_is_the_default_policy(tmp_path: Path) -> None:
    assert sched_table(start=tmp_path) == (None, {})
    assert SchedService.from_files(ME, start=tmp_path).policy_now().window == "base"


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("[sched]\nheld_weight = 0\n", "[sched] held_weight must be a number between 1 and 10000"),
        ("[sched]\nwindows = ['weekdays 08-20 prod 50']\n", "[sched] windows[0]"),
        ("[sched]\nml_wieght = 5\n", "did you mean 'ml_weight'"),
    ],
)
def test_a_bad_sched_table_is_one_line_naming_file_and_key(
    table: str, words: str, tmp_path: Path
) -> None:
    config = tmp_path / "policy.toml"
    config.write_text(table)
    sched = SchedService.from_files(ME, config_file=config)  # the doctor still works with it
    for op in (sched.policy_now, sched.plan, sched.apply):
        with pytest.raises(ConfigError) as info:
            op()
        message = str(info.value)
        assert message.startswith(f"{config}: ") and words in message and "\n" not in message
    config_check = next(c for c in sched.doctor().checks if c.name == "config")
    assert config_check.status == "fail" and words in config_check.detail


def test_a_missing_config_file_and_bad_hours_are_said_at_once(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        SchedService.from_files(ME, config_file=tmp_path / "nope.toml")
    with pytest.raises(UsageError, match="from 1 to 336"):
        SchedService(ME).plan(hours=0)


def test_status_without_a_controller_is_this_machine(tmp_path: Path) -> None:
    status = SchedService(ME, runtime_dir=tmp_path).status()
    assert status.pid is None and not status.running and status.claims == ()
    assert status.controller is None
    assert status.backends.cpu in ("cgroup-v2", "cgroup-v1", "priority")
    assert set(status.why_not) == {"cpu", "io", "memory", "pause"}
    data = status.to_dict()
    assert data["pid"] is None and data["backends"]["cpu"] == status.backends.cpu
    assert not (tmp_path / "sched.sock").exists()  # asking started nothing


def test_without_a_controller_release_and_stop_say_so(tmp_path: Path) -> None:
    sched = SchedService(ME, runtime_dir=tmp_path)
    with pytest.raises(NotFoundError, match="no scheduler controller"):
        sched.release(os.getpid())
    stopped = sched.stop()
    assert (stopped.pid, stopped.stopped, stopped.users) == (None, False, ())
    assert stopped.to_dict() == {"pid": None, "stopped": False, "users": []}


def test_typed_answers_give_back_the_controllers_json_exactly(
    runtime_dir: Path, cg_parent: str
) -> None:
    """A real controller: every answer read into a result and written back by ``to_dict``
    is the answer itself, so ``--json`` prints what it printed before the service."""
    sched = SchedService(
        ME, runtime_dir=runtime_dir, config={"parent": cg_parent}, label="project t (/t)"
    )
    try:
        with sched.ml_mode() as claimed:
            assert claimed.pid == os.getpid() and claimed.pool == f"/{cg_parent}/ml"
            with Client(runtime_dir, autostart=False) as c:
                answer = c.status()
            status = sched.status()
            answer.pop("ok")
            assert MachineStatus.from_answer(answer).to_dict() == answer
            assert status.ml_mode and [c.pid for c in status.claims] == [os.getpid()]
            ctl = status.controller
            assert ctl is not None and ctl.started_by.pid == os.getpid()
            assert [u.what for u in ctl.users if u.pid == os.getpid()] == ["project t (/t)"]
            assert [u.describe() for u in ctl.users if u.kind == "claim"] == [
                f"ML-mode job pid {os.getpid()}: project t (/t)"
            ]
            assert claimed.to_dict()["claim"] == status.claims[0].to_dict()
        assert not sched.status().ml_mode  # the block released the claim
        again = sched.claim()
        released = sched.release(again.pid)
        assert released.left and released.claims == 0 and not released.ml_mode
        assert sched.release_all().left == ()
        applied = sched.apply()
        assert applied.to_dict()["ok"] is True and all(" -> " in c for c in applied.changes)
    finally:
        with Client(runtime_dir, autostart=False) as c:
            pid = c.status()["pid"]
            c.shutdown()
        wait_until(lambda: gone(pid), "the controller to exit")


@pytest.mark.parametrize(
    "user",
    [
        {"kind": "claim", "pid": 1, "uid": 0, "since": 1.5, "what": "project p"},
        {"kind": "placement", "pid": 2, "pool": "batch", "what": "make"},
        {"kind": "client", "pid": 3, "uid": 0, "what": "python"},
        {"kind": "policy", "pid": 4, "uid": 0, "since": 2.0, "what": "a policy"},
    ],
)
def test_each_kind_of_user_round_trips(user: dict[str, object]) -> None:
    assert ControllerUser.from_answer(user).to_dict() == user


def test_a_controller_started_by_hand_knows_only_its_parent() -> None:
    assert Starter.from_answer({"pid": 7}).to_dict() == {"pid": 7}


def test_each_operation_names_the_actor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[Actor, Action, str, str]] = []
    monkeypatch.setattr(authz, "authorize", lambda *a: seen.append(a))
    sched = SchedService(Actor("alice"), runtime_dir=tmp_path)
    sched.status()
    with pytest.raises(NotFoundError):
        sched.release(42)
    assert seen == [
        (Actor("alice"), Action.READ, "", "mode.status"),
        (Actor("alice"), Action.EXECUTE, "42", "mode.release"),
    ]


@pytest.mark.parametrize("module", ["policy.py", "mode.py", "doctor.py"])
def test_the_scheduler_commands_only_call_the_service(module: str) -> None:
    """mlk policy / mode / doctor parse, call SchedService and render: they read no TOML,
    no history, and never talk to the controller themselves."""
    tree = ast.parse((CLI / module).read_text())
    imported = {
        f"{n.module}.{a.name}" if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    sched = {m for m in imported if m.startswith("mlkernel.sched.")}
    assert sched <= {
        "mlkernel.sched.service.SchedService",
        "mlkernel.sched.results.Claimed",
        "mlkernel.sched.results.ControllerState",
        "mlkernel.sched.results.Released",
    }, sched
    assert not {m for m in imported if m.startswith(("tomllib", "sqlite3"))}
    assert "Client(" not in (CLI / module).read_text()

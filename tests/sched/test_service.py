"""The scheduler's services the CLI calls: the policy of a project, the machine's status."""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import pytest

from mlkernel.errors import ConfigError
from mlkernel.sched.service import load_policy, machine_status, policy_now, sched_table

CLI = Path(__file__).resolve().parents[2] / "src" / "mlkernel" / "cli"


def test_the_nearest_project_file_gives_the_policy(tmp_path: Path) -> None:
    (tmp_path / "mlkernel.toml").write_text(
        '[project]\nname = "p"\n[sched]\noffpeak = "22:00-06:00"\n'
        'windows = ["weekdays 08-20: prod 50 / dev 40"]\n'
    )
    inner = tmp_path / "src" / "deep"
    inner.mkdir(parents=True)
    source = load_policy(start=inner)
    assert source.path == tmp_path / "mlkernel.toml"
    assert source.config.is_offpeak(datetime(2026, 3, 2, 23, 0))
    now = policy_now(source.config, datetime(2026, 3, 2, 12, 0))  # a Monday, noon
    assert now.window == "weekdays 08-20"
    assert [p.pool for p in now.pools] == ["ml", "prod", "dev", "batch"]
    assert sum(p.share for p in now.pools) == pytest.approx(100, abs=0.5)
    assert now.to_dict()["pools"][1]["weight"] == 50


def test_no_file_is_the_default_policy(tmp_path: Path) -> None:
    assert sched_table(start=tmp_path) == (None, {})
    assert load_policy(start=tmp_path).config.windows == ()


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
    with pytest.raises(ConfigError) as info:
        load_policy(config)
    message = str(info.value)
    assert message.startswith(f"{config}: ") and words in message and "\n" not in message


def test_status_without_a_controller_is_this_machine(tmp_path: Path) -> None:
    status = machine_status(tmp_path)
    assert status.pid is None and not status.running and status.claims == []
    assert status.backends["cpu"] in ("cgroup-v2", "cgroup-v1", "priority")
    assert set(status.why_not) == {"cpu", "io", "memory", "pause"}
    assert status.to_dict()["pid"] is None


@pytest.mark.parametrize("module", ["policy.py", "mode.py", "doctor.py"])
def test_the_scheduler_commands_read_no_file_themselves(module: str) -> None:
    """mlk policy / mode / doctor call sched.service; they parse no TOML and ask the
    controller for its status only through it."""
    tree = ast.parse((CLI / module).read_text())
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert "tomllib" not in imported
    assert "mlkernel.sched.backends" not in imported

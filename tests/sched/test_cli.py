from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mlkernel.cli import mode, policy
from mlkernel.errors import ConfigError, UsageError
from mlkernel.sched.history import History

from .test_history import office_load

TOML = """
[sched]
windows = ["weekdays 08-20: prod 50 / dev 40 / batch 10", "otherwise: batch 70"]
[sched.pools.prod]
guarantee = 30
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlk")
    sub = p.add_subparsers(dest="command")
    mode.register(sub)
    policy.register(sub)
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


def test_policy_plan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mlkernel.toml"
    cfg.write_text(TOML)
    assert (
        run(
            [
                "policy",
                "plan",
                "--config",
                str(cfg),
                "--start",
                "2025-03-03T19:00",
                "--hours",
                "3",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["window"] for r in rows] == ["weekdays 08-20", "otherwise", "otherwise"]
    assert rows[1]["weights"]["batch"] == 70


def test_policy_show_table_and_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "mlkernel.toml"
    cfg.write_text(TOML)
    assert run(["policy", "show", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "cpu.shares" in out and "batch" in out
    cfg.write_text("[sched]\npolicy = 'smart'\n")
    with pytest.raises(ConfigError, match="static, auto"):
        run(["policy", "show", "--config", str(cfg)])


def test_policy_suggest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = History(tmp_path / "load.db")
    h.add_hourly(office_load(15))
    h.close()
    assert run(["policy", "suggest", "--history", str(tmp_path / "load.db"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and "weekends 00-24: batch 70" in data["windows"]


def test_mode_status_json_without_controller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["mode", "status", "--json", "--runtime-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pid"] is None and data["backends"]["cpu"] in ("cgroup-v2", "cgroup-v1", "priority")
    assert set(data["why_not"]) == {"cpu", "io", "memory", "pause"}


def test_mode_ml_needs_a_command() -> None:
    with pytest.raises(UsageError, match="mode ml -- COMMAND"):
        run(["mode", "ml"])

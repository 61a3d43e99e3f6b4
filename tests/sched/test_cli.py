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


def test_policy_plan_collapses_identical_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row, whatever the worker's terminal
    cfg = tmp_path / "mlkernel.toml"
    cfg.write_text(TOML)
    # Monday 2025-03-03 from 05:00, 48 hours: otherwise, weekdays 08-20, otherwise (overnight),
    # weekdays 08-20 on Tuesday, otherwise until the end.
    argv = ["policy", "plan", "--config", str(cfg), "--start", "2025-03-03T05:00"]
    assert run([*argv, "--hours", "48"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    labels = [line.split("│")[1].strip() for line in rows]
    assert labels == ["Mon 05-08", "Mon 08-20", "Mon 20 - Tue 08", "Tue 08-20", "Tue 20 - Wed 05"]
    assert [line.split("│")[2].strip() for line in rows].count("otherwise") == 3


def test_collapse_keeps_different_weights_apart() -> None:
    from datetime import datetime

    from mlkernel.sched.policy import PlanRow, collapse

    t = datetime(2025, 3, 3, 22)
    rows = [
        PlanRow(t.replace(hour=22), "w", {"ml": 100.0}),
        PlanRow(t.replace(hour=23), "w", {"ml": 100.0}),
        PlanRow(datetime(2025, 3, 4, 0), "w", {"ml": 50.0}),
    ]
    spans = collapse(rows)
    assert [s.label for s in spans] == ["Mon 22-24", "Tue 00-01"]
    assert [s.weights["ml"] for s in spans] == [100.0, 50.0]

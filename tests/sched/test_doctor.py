"""``mlk doctor``: backends plus checks, read-only, one exit code for scripts."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from mlkernel.cli import doctor
from mlkernel.sched.controller import Controller
from mlkernel.sched.doctor import diagnose
from mlkernel.sched.journal import Applier, Journal
from mlkernel.sched.policy import PolicyConfig


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    p = argparse.ArgumentParser(prog="mlk")
    doctor.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["doctor", "--json", *argv])
    code: int = args.func(args)
    return code, json.loads(capsys.readouterr().out)


def checks(data: dict[str, object]) -> dict[str, tuple[str, str]]:
    rows = data["checks"]
    assert isinstance(rows, list)
    return {c["name"]: (c["status"], c["detail"]) for c in rows}


def test_a_fresh_machine_passes_and_reports_backends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = run(["--runtime-dir", str(tmp_path / "run")], capsys)
    assert code == 0 and data["ok"] is True
    found = checks(data)
    assert set(found) == {
        "config",
        "controller",
        "journal",
        "load history",
        "pools",
        "pressure (PSI)",
        "privileges",
    }
    assert found["controller"][0] == "ok" and "not running" in found["controller"][1]
    assert "will be created" in found["journal"][1]
    assert found["load history"][1].startswith("none yet")
    backends = data["backends"]
    assert isinstance(backends, dict) and backends["cpu"] in ("cgroup-v2", "cgroup-v1", "priority")
    assert set(data["why_not"]) == {"cpu", "io", "memory", "pause"}  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()  # the doctor changed nothing


def test_a_bad_config_fails_with_the_key_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "mlkernel.toml"
    cfg.write_text('[sched]\n[[sched.rules]]\npool = "gpu"\nexe = "x"\n')
    code, data = run(["--runtime-dir", str(tmp_path), "--config", str(cfg)], capsys)
    assert code == 1 and data["ok"] is False
    status, detail = checks(data)["config"]
    assert status == "fail" and "[[sched.rules]] #1 pool must be one of prod, dev, batch" in detail
    assert "got 'gpu'" in detail


def test_an_unwritable_runtime_dir_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    diag = diagnose({}, blocker / "run")
    status, detail = next((c.status, c.detail) for c in diag.checks if c.name == "journal")
    assert status == "fail" and "not writable" in detail and "XDG_RUNTIME_DIR" in detail
    assert not diag.ok


def test_open_journal_without_controller_warns_and_a_live_one_is_found(
    tmp_path: Path, cg_parent: str
) -> None:
    knob = tmp_path / "knob"
    knob.mkdir()
    (knob / "value").write_text("1")
    Applier(Journal(tmp_path)).set("mode", f"path:{knob}", "value", "2")  # a "dead" controller
    diag = diagnose({}, tmp_path)
    journal = next(c for c in diag.checks if c.name == "journal")
    assert journal.status == "warn" and "1 change(s) left open" in journal.detail

    ctl = Controller(tmp_path, PolicyConfig.from_dict({"parent": cg_parent}))
    ctl.start()  # it restores the open change, then serves
    try:
        found = {c.name: c for c in diagnose({"parent": cg_parent}, tmp_path).checks}
        assert found["controller"].detail.startswith(f"pid {os.getpid()} answers")
        # An idle controller is the machine's and keeps running: the doctor says how to stop it.
        assert "; running since " in found["controller"].detail
        assert "nothing uses it (`mlk mode stop` stops it)" in found["controller"].detail
        assert found["journal"].status == "ok" and "0 open" in found["journal"].detail
        assert found["pools"].status == "ok" and cg_parent in found["pools"].detail
        assert (knob / "value").read_text() == "1"
    finally:
        ctl.stop()

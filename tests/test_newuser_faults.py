"""Faults a new user met following the README and the docs, each as the shell sees it:
real ``mlk`` subprocesses in a real project, checking the exit code and the words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlkernel

INTERNAL_ERROR = 70


def mlk(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mlkernel", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    mlkernel.init(tmp_path / "p").close()
    return tmp_path / "p"


def test_user_text_with_brackets_is_shown_as_typed_not_read_as_markup(project: Path) -> None:
    # Column names, parameters, metric names and file paths are the user's text; rich
    # markup in them was interpreted (mangled) or raised MarkupError (exit 70).
    src = project / "[red]in.csv"
    src.write_text("[red]x[/red],[bold],b\n1,2,3\n4,5,6\n")
    assert mlk(project, "data", "add", src.name, "--name", "m").returncode == 0
    with mlkernel.open(project) as k, k.start_run("r", params={"[x]": "[/y]"}) as run:
        run.log_metric("[bold]loss", 1.0)
    for args in (
        ("data", "show", "m"),
        ("data", "head", "m"),
        ("data", "profile", "m"),
        ("data", "drift", "m@1", "m@1"),
        ("runs", "show", str(run.id)),
    ):
        done = mlk(project, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
        out = done.stdout
        if args[1] != "show" or args[0] == "data":
            assert "[red]x[/red]" in out and "[bold]" in out, (args, out)
        if args[0] == "runs":
            assert "[x]" in out and "[/y]" in out and "[bold]loss" in out, out
    assert "[red]in.csv" in mlk(project, "data", "show", "m").stdout
    done = mlk(project, "data", "export", "m", "-o", "[bold]out.csv")
    assert done.returncode == 0 and "wrote [bold]out.csv" in done.stdout, done.stdout


def test_negative_counts_are_refused_in_one_line_not_read_as_zero(project: Path) -> None:
    # `mlk data head -n -3` printed "(no rows)" and exited 0; `runs ls -n -1` listed all.
    (project / "t.csv").write_text("a\n1\n2\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    for args in (
        ("data", "head", "t", "-n", "-3"),
        ("runs", "ls", "-n", "-1"),
        ("lineage", "dataset:t", "--depth", "-2"),
        ("data", "watch", "--once", "--poll", "-1"),
        ("data", "watch", "--once", "--poll", "nan"),
    ):
        done = mlk(project, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "(no rows)" not in done.stdout
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and ("0 or more" in errors[0] or "above 0" in errors[0]), errors
    with mlkernel.open(project) as k, pytest.raises(mlkernel.errors.UsageError, match="0 or more"):
        k.data.head("t", -3)

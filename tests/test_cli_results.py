"""Results people look for, in the text output (not only --json): the time an artifact
was created in `mlk status`, alias history in `mlk show`, and `mlk data head` on tables
wider than the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mlkernel
from mlkernel.cli.render import human_time


def mlk(root: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLK_DEBUG"}
    env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "mlkernel", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    with mlkernel.init(path, name="proj") as k:
        k.log_artifact({"w": 1}, kind="model", name="churn")
        k.log_artifact({"w": 2}, kind="model", name="churn")
    return path


def test_status_created_column_shows_local_time(root: Path) -> None:
    with mlkernel.open(root) as k:
        created = k.show("model:churn@2").record.created_at
    out = mlk(root, "status", columns=200)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "model:churn" in line)
    assert human_time(created) in row  # e.g. 2026-12-04 16:35:10, in local time
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)
    assert str(created) not in row


def test_show_prints_alias_history(root: Path) -> None:
    assert mlk(root, "alias", "set", "model:churn@1", "production").returncode == 0
    assert mlk(root, "alias", "set", "model:churn@2", "production").returncode == 0
    out = mlk(root, "show", "model:churn@2", columns=200)
    assert out.returncode == 0, out.stderr
    moves = [line.split() for line in out.stdout.splitlines() if "production" in line]
    moves = [m for m in moves if "->" in m]
    assert [m[2:6] for m in moves] == [
        ["production", "-", "->", "1"],
        ["production", "1", "->", "2"],
    ]
    assert all(m[-2] == "by" and m[-1] for m in moves)


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    path = tmp_path / "wide"
    names = [f"feature_number_{i}" for i in range(30)]
    csv = tmp_path / "wide.csv"
    lines = [",".join(names)]
    lines += [",".join(f"{r * 1000 + i * 3.14159265358979}" for i in range(30)) for r in range(4)]
    lines.append(",".join(["a very long text value that goes on and on"] * 30))
    csv.write_text("\n".join(lines) + "\n")
    with mlkernel.init(path, name="wide") as k:
        k.data.add(str(csv), name="wide")
    return path


def test_data_head_fits_the_terminal_one_line_per_row(wide: Path) -> None:
    out = mlk(wide, "data", "head", "wide", columns=80)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    rows = [line for line in lines if "│" in line]
    assert len(rows) == 5  # each row on one line, not wrapped over several
    assert "feature_number_0" in out.stdout
    assert re.search(r"\(\d+ more column\(s\): feature_number_\d+", out.stdout)
    assert "a very long text value …" in out.stdout  # cut, not wrapped


def test_data_head_columns(wide: Path) -> None:
    out = mlk(
        wide, "data", "head", "wide", "-n", "2", "--columns", "feature_number_29,feature_number_3"
    )
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if "feature_number" in line)
    assert header.split() == ["feature_number_29", "┃", "feature_number_3"]
    assert len([line for line in out.stdout.splitlines() if "│" in line]) == 2

    bad = mlk(wide, "data", "head", "wide", "--columns", "feature_numbr_3")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert "no column 'feature_numbr_3'" in bad.stderr and "feature_number_3" in bad.stderr

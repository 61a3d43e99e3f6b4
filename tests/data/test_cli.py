"""`mlk data ...` end to end through the real argument parser and the exit-code mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mlkernel
from mlkernel.cli.main import main


@pytest.fixture
def root(tmp_path: Path) -> Path:
    mlkernel.init(tmp_path / "proj", name="proj").close()
    return tmp_path / "proj"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_add_ls_show_head_diff(
    root: Path,
    write: Callable[[str, str | bytes], Path],
    sample: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = write("sales.csv", sample(30))
    assert main(["-C", str(root), "data", "add", str(first), "-q"]) == 0
    out = capsys.readouterr().out
    assert "dataset:sales@1" in out and "30 rows x 6 columns" in out
    assert main(["-C", str(root), "data", "add", str(first), "-q"]) == 0
    assert "no new version" in capsys.readouterr().out

    second = write("sales2.csv", "id,price\n1,2.5\n")
    added = _json(capsys, "-C", str(root), "data", "add", str(second), "--name", "sales", "--json")
    assert isinstance(added, dict) and added["ref"] == "dataset:sales@2" and added["created"]

    listed = _json(capsys, "-C", str(root), "data", "ls", "--json")
    assert isinstance(listed, list) and [r["ref"] for r in listed] == ["dataset:sales@2"]

    shown = _json(capsys, "-C", str(root), "data", "show", "sales@1", "--json")
    assert (
        isinstance(shown, dict)
        and shown["properties"]["rows"] == 30
        and shown["versions"] == [1, 2]
    )
    assert main(["-C", str(root), "data", "show", "sales@1"]) == 0
    text = capsys.readouterr().out
    assert "timestamp[s, tz=UTC]" in text and "data add sales" in text

    head = _json(capsys, "-C", str(root), "data", "head", "sales@1", "-n", "2", "--json")
    assert isinstance(head, list) and [r["id"] for r in head] == [0, 1]
    assert main(["-C", str(root), "data", "head", "sales@1", "-n", "2"]) == 0
    assert "2024-01-02" in capsys.readouterr().out

    diff = _json(capsys, "-C", str(root), "data", "diff", "sales@1", "sales@2", "--json")
    assert isinstance(diff, dict) and diff["schema"]["removed"] == ["city", "at", "day", "ok"]
    assert main(["-C", str(root), "data", "diff", "sales@1", "sales@2"]) == 0
    assert "- column city" in capsys.readouterr().out


def test_bad_rows_option_and_errors_map_to_exit_codes(
    root: Path, write: Callable[[str, str | bytes], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ragged = write("r.csv", "a,b\n1,2\n3\n")
    assert main(["-C", str(root), "data", "add", str(ragged)]) == 2
    assert "line 3 has 1 fields" in capsys.readouterr().err
    assert (
        main(["-C", str(root), "data", "add", str(ragged), "--on-bad-rows", "quarantine", "-q"])
        == 0
    )
    assert "into file:r.quarantine@1 (lines 3)" in capsys.readouterr().err
    assert main(["-C", str(root), "data", "show", "nope"]) == 4
    assert "run `mlk ls dataset`" in capsys.readouterr().err


def test_importing_the_data_cli_stays_light() -> None:
    code = (
        "import sys; import mlkernel.cli.data, mlkernel.data; "
        "from mlkernel.cli.main import build_parser; build_parser(); "
        "heavy = [m for m in ('pyarrow', 'polars', 'numpy', 'pandas', 'rich') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_path_that_is_no_file_is_named_as_such(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(root), "data", "add", "/dev/null"]) == 2
    assert "/dev/null is not a regular file or a folder" in capsys.readouterr().err

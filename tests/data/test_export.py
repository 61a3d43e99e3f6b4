"""``mlk data export`` and ``mlk get``: the format a file's name promises, written whole or
not at all, and no file overwritten unless asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mlkernel
from mlkernel.cli.main import main
from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel

ROWS = "id,price,city\n1,1.5,a\n2,2.5,b\n3,,a\n"


@pytest.fixture
def root(sqlite_project: Kernel, tmp_path: Path) -> Path:
    source = tmp_path / "sales.csv"
    source.write_text(ROWS)
    sqlite_project.data.add(source, name="sales", progress=False)
    sqlite_project.log_artifact({"w": 1}, kind="model", name="churn")
    return sqlite_project.root


def _read(path: Path, format: str) -> Any:
    """The file read back with the library that format belongs to, as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if format == "csv":
        return pacsv.read_csv(path)
    if format == "parquet":
        return pq.read_table(path)
    if format == "arrow":
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    lines = path.read_text().splitlines()
    return pa.Table.from_pylist([json.loads(line) for line in lines])


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("s.csv", "csv"),
        ("s.parquet", "parquet"),
        ("s.pq", "parquet"),
        ("s.arrow", "arrow"),
        ("s.feather", "arrow"),
        ("s.ndjson", "ndjson"),
        ("s.jsonl", "ndjson"),
    ],
)
def test_export_writes_the_format_the_name_says(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, format: str
) -> None:
    out = tmp_path / "out" / name
    out.parent.mkdir()
    assert main(["-C", str(root), "data", "export", "sales@1", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    back = _read(out, format)
    assert back.column("id").to_pylist() == [1, 2, 3]
    assert back.column("price").to_pylist() == [1.5, 2.5, None]
    assert [str(v) for v in back.column("city").to_pylist()] == ["a", "b", "a"]
    assert sorted(p.name for p in out.parent.iterdir()) == [name]  # no temporary left


def test_format_option_overrides_the_name_and_unknown_names_are_refused(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sales.txt"
    assert main(["-C", str(root), "data", "export", "sales", "-o", str(out)]) == 2
    assert "--format" in capsys.readouterr().err and not out.exists()
    argv = ["-C", str(root), "data", "export", "sales", "-o", str(out), "--format", "parquet"]
    assert main(argv) == 0
    assert _read(out, "parquet").num_rows == 3


def test_export_and_get_keep_an_existing_file_unless_forced(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["data", "export", "sales"], ["get", "dataset:sales@1"], ["get", "model:churn"]):
        out = tmp_path / "kept.csv"
        out.write_text("mine\n")
        assert main(["-C", str(root), *argv, "-o", str(out)]) == 5, argv
        err = capsys.readouterr().err
        assert "exists; pass --force" in err and len(err.strip().splitlines()) == 1
        assert out.read_bytes() == b"mine\n"
        assert main(["-C", str(root), *argv, "-o", str(out), "--force"]) == 0
        assert out.read_bytes() != b"mine\n"
        capsys.readouterr()


def test_get_of_a_dataset_exports_by_name_and_gives_the_arrow_file_otherwise(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa

    assert main(["-C", str(root), "get", "dataset:sales@1", "-o", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == '"id","price","city"'
    folder = tmp_path / "dl"
    folder.mkdir()
    assert main(["-C", str(root), "get", "dataset:sales@1", "-o", str(folder)]) == 0
    assert [p.name for p in folder.iterdir()] == ["sales.arrow"]
    table = pa.ipc.open_file(pa.memory_map(str(folder / "sales.arrow"))).read_all()
    assert table.num_rows == 3


@pytest.mark.parametrize("command", [["get", "model:churn"], ["data", "export", "sales"]])
def test_unwritable_destinations_are_one_line_errors(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    for dest, code, says in (
        (tmp_path / "missing" / "dir" / "m.csv", 4, "does not exist"),
        (a_file / "m.csv", 2, "is a file, not a folder"),
    ):
        assert main(["-C", str(root), *command, "-o", str(dest)]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "missing").exists()


def test_a_failed_export_leaves_nothing(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlkernel
    from mlkernel.data import service

    def half_then_fail(format: str, source: Path, dest: Path, ref: str) -> None:
        dest.write_bytes(b"id,price\n1,")
        raise UsageError("the disk went away")

    monkeypatch.setattr(service, "_write_export", half_then_fail)
    out = tmp_path / "out"
    out.mkdir()
    with mlkernel.open(root) as k, pytest.raises(UsageError, match="disk went away"):
        k.data.export("sales", out / "s.csv")
    assert list(out.iterdir()) == []


def test_csv_refuses_nested_columns_naming_the_formats_that_hold_them(
    sqlite_project: Kernel, tmp_path: Path
) -> None:
    import pyarrow as pa

    sqlite_project.data.add(pa.table({"tags": [[1, 2], [3]], "n": [1, 2]}), name="nested")
    with pytest.raises(UsageError, match=r"CSV cannot hold; export to \.parquet"):
        sqlite_project.data.export("nested", tmp_path / "n.csv")
    assert not (tmp_path / "n.csv").exists()
    written = sqlite_project.data.export("nested", tmp_path / "n.ndjson")
    assert written.read_text().splitlines()[0] == '{"tags":[1,2],"n":1}'


def test_get_of_a_folder_keeps_an_existing_one_unless_forced(
    sqlite_project: Kernel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("new")
    sqlite_project.log_artifact(src, kind="file", name="tree")
    out = tmp_path / "out"
    (out / "src").mkdir(parents=True)  # `get` into `out` unpacks as out/src: taken
    (out / "src" / "mine.txt").write_text("keep")
    root = str(sqlite_project.root)
    assert main(["-C", root, "get", "file:tree", "-o", str(out)]) == 5
    assert "pass --force" in capsys.readouterr().err
    assert (out / "src" / "mine.txt").read_text() == "keep"
    assert main(["-C", root, "get", "file:tree", "-o", str(out), "--force"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "src",
        "src/sub",
        "src/sub/a.txt",
    ]


def test_a_dash_writes_to_standard_output(tmp_path: Path) -> None:
    # `-o -` wrote a file named "-" instead of writing to standard output.
    import subprocess
    import sys

    root = tmp_path / "proj"
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    with mlkernel.init(root, name="proj") as k:
        k.data.add(tmp_path / "t.csv", name="t", progress=False)

    def mlk(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "mlkernel", "-C", str(root), *args],
            capture_output=True,
            cwd=tmp_path,
            timeout=120,
        )

    exported = mlk("data", "export", "t", "-o", "-", "--format", "csv")
    assert exported.returncode == 0 and exported.stdout.splitlines()[1:] == [b'1,"x"', b'2,"y"']
    nameless = mlk("data", "export", "t", "-o", "-")
    assert nameless.returncode == 2 and b"pass --format" in nameless.stderr
    copied = mlk("get", "dataset:t@1", "-o", "-")
    assert copied.returncode == 0 and copied.stdout.startswith(b"ARROW1")
    assert not (tmp_path / "-").exists()

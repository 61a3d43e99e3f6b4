"""Every user error is one line on stderr that names the fix, with its own exit code."""

import subprocess
from pathlib import Path

import pytest

import mlkernel
from mlkernel.testing import run_mlk


def mlk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_mlk(*args, cwd=cwd, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlk: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    with mlkernel.init(path, name="proj") as k:
        k.log_artifact({"w": 1}, kind="model", name="churn")
        k.log_artifact(b"abc", kind="file", name="notes")
    return path


def test_unknown_reference(root: Path) -> None:
    one_line_error(mlk("-C", str(root), "show", "model:chrun"), 4, "did you mean 'churn'")


@pytest.mark.parametrize("name", ["../x", "a/b", "bad\x01name", "x" * 201])
def test_invalid_names(root: Path, name: str) -> None:
    one_line_error(mlk("-C", str(root), "show", name), 2, "use")


def test_invalid_alias(root: Path) -> None:
    one_line_error(mlk("-C", str(root), "alias", "set", "churn@1", "7"), 2, "read as a version")


def test_no_project(tmp_path: Path) -> None:
    one_line_error(mlk("status", cwd=tmp_path), 4, "run `mlk init`")


def test_config_typo(root: Path) -> None:
    config = root / "mlkernel.toml"
    config.write_text(config.read_text().replace("flush_rows", "flush_rowz"))
    one_line_error(mlk("-C", str(root), "status"), 3, "did you mean 'flush_rows'")


def test_corrupt_database(root: Path) -> None:
    db = root / ".mlkernel" / "meta.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    one_line_error(mlk("-C", str(root), "status"), 7, "is corrupt")


def test_missing_object(root: Path) -> None:
    with mlkernel.open(root) as k:
        path = k.context.objects.path(k.resolve("notes").digest)
    path.unlink()
    one_line_error(mlk("-C", str(root), "get", "notes", "-o", str(root / "out")), 6, "missing")
    result = mlk("-C", str(root), "verify")
    assert result.returncode == 6
    assert "file:notes@1" in result.stdout


def test_altered_object(root: Path) -> None:
    with mlkernel.open(root) as k:
        path = k.context.objects.path(k.resolve("notes").digest)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    out = root / "out.txt"
    one_line_error(mlk("-C", str(root), "get", "notes", "-o", str(out)), 6, "was altered")
    assert not out.exists()  # nothing half-written


def test_get_writes_content(root: Path) -> None:
    out = root / "notes.txt"
    result = mlk("-C", str(root), "get", "notes", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == b"abc"
    assert mlk("-C", str(root), "verify").returncode == 0


def test_debug_shows_traceback(root: Path) -> None:
    result = mlk("--debug", "-C", str(root), "show", "nope")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_init_twice(root: Path) -> None:
    one_line_error(mlk("init", str(root)), 5, "already an mlkernel project")


def test_init_bad_postgres_url_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = mlk("init", str(target), "--metadata", "postgresql://nobody@127.0.0.1:1/none")
    one_line_error(result, 7, "cannot be used")
    assert not target.exists()

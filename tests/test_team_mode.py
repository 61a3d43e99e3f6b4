"""Two folders on one PostgreSQL database share metadata, not objects: ``mlk init``,
``mlk status`` and a read of a teammate's artifact say so, naming where it was written;
a database that does not exist is named with the command that creates it."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

import mlkernel
from mlkernel.testing import run_mlk

LOCAL = "local to this machine and folder"


def mlk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_mlk(*args, cwd=cwd)


def test_objects_are_local_and_every_place_says_so(pg_url: str, tmp_path: Path) -> None:
    name = f"team{uuid.uuid4().hex[:8]}"
    mine, theirs = tmp_path / "alice", tmp_path / "bob"
    for folder in (mine, theirs):
        made = mlk("init", str(folder), "--name", name, "--metadata", pg_url)
        assert made.returncode == 0, made.stderr
        assert LOCAL in made.stdout and str(folder / ".mlkernel" / "objects") in made.stdout
    with mlkernel.open(mine) as k:
        k.log_artifact({"w": 1}, kind="model", name="m1")

    listed = mlk("-C", str(theirs), "ls")
    assert "m1" in listed.stdout
    got = mlk("-C", str(theirs), "get", "model:m1", "-o", str(tmp_path / "m.pkl"))
    assert got.returncode == 6
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in got.stderr
    assert "local to the machine and folder that wrote them" in lines[0]
    assert f"created in {mine}" in lines[0]
    assert not (tmp_path / "m.pkl").exists()

    status = mlk("-C", str(theirs), "status")
    assert status.returncode == 0 and LOCAL in status.stdout
    # The writer's own folder reads it as before.
    assert mlk("-C", str(mine), "get", "model:m1", "-o", str(tmp_path / "m.pkl")).returncode == 0


def test_sqlite_projects_carry_no_team_note(tmp_path: Path) -> None:
    made = mlk("init", str(tmp_path / "solo"))
    assert made.returncode == 0 and LOCAL not in made.stdout
    assert LOCAL not in mlk("-C", str(tmp_path / "solo"), "status").stdout


def test_a_missing_database_names_createdb(pg_url: str, tmp_path: Path) -> None:
    missing = f"mlk_absent_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url.rsplit('/', 1)[0]}/{missing}"
    made = mlk("init", str(tmp_path / "p"), "--metadata", url)
    assert made.returncode not in (0, 70)
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1 and f"createdb {missing}" in lines[0], made.stderr
    assert "check that the server runs" not in lines[0]
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("reader", ["load", "data"])
def test_the_sdk_says_the_same(pg_url: str, tmp_path: Path, reader: str) -> None:
    import pyarrow as pa

    name = f"team{uuid.uuid4().hex[:8]}"
    with mlkernel.init(tmp_path / "a", name=name, metadata_url=pg_url) as k:
        k.log_artifact({"w": 1}, kind="model", name="m1")
        k.data.add(pa.table({"x": [1, 2]}), name="d")
    with mlkernel.init(tmp_path / "b", name=name, metadata_url=pg_url) as k:
        from mlkernel.errors import IntegrityError

        with pytest.raises(IntegrityError, match="local to the machine and folder"):
            if reader == "load":
                k.load("model:m1")
            else:
                k.data.open("d")

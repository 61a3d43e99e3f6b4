"""The in-memory table stays correct while another process changes the database."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel

READER = textwrap.dedent(
    """
    import sys
    import mlkernel

    k = mlkernel.open(sys.argv[1])
    print("ready", flush=True)
    for line in sys.stdin:
        ref = line.strip()
        try:
            record = k.resolve(ref)
            print(f"{record.kind}:{record.name}@{record.version}", flush=True)
        except mlkernel.MLKernelError as exc:
            print(f"error: {exc}", flush=True)
    """
)


def test_a_second_process_sees_every_change(project: Kernel) -> None:
    import pyarrow as pa

    project.log_artifact({"v": 1}, kind="model", name="churn")
    project.alias_set("model:churn@1", "production")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(project.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None

    def ask(ref: str) -> str:
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write(ref + "\n")
        reader.stdin.flush()
        return reader.stdout.readline().strip()

    try:
        assert reader.stdout.readline().strip() == "ready"
        assert ask("model:churn@production") == "model:churn@1"
        # the reader has the table in memory now; change the database behind its back
        project.log_artifact({"v": 2}, kind="model", name="churn")
        assert ask("churn") == "model:churn@2"
        project.alias_set("model:churn@2", "production")
        assert ask("model:churn@production") == "model:churn@2"
        project.alias_rm("model:churn", "production")
        assert ask("model:churn@production").startswith("error: model 'churn' has no alias")
        project.data.add(pa.table({"d": [1]}), name="fresh")  # a dataset is ingested
        assert ask("dataset:fresh") == "dataset:fresh@1"
        for version in range(3, 8):
            project.log_artifact({"v": version}, kind="model", name="churn")
            project.alias_set(f"model:churn@{version}", "staging")
            assert ask("model:churn@staging") == f"model:churn@{version}"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)


HOLDER = textwrap.dedent(
    """
    import sys
    import mlkernel

    k = mlkernel.open(sys.argv[1])
    k.resolve("model:churn")  # the change watcher reads its map of the WAL index
    if sys.argv[2] == "and-closes-another":  # the map they share stays open for k
        other = mlkernel.open(sys.argv[1])
        other.resolve("model:churn")
        other.close()
        k.resolve("model:churn")
    print("ready", flush=True)
    sys.stdin.read()
    """
)

_DEAD_MAN_SWITCH = 128  # the byte of meta.db-shm every connection locks shared (walformat)


@pytest.mark.skipif(sys.platform != "linux", reason="struct flock is laid out for Linux here")
@pytest.mark.parametrize("holder_does", ["opens", "and-closes-another"])
def test_a_process_with_the_project_open_keeps_sqlites_locks(
    sqlite_project: Kernel, holder_does: str
) -> None:
    """The change watcher once closed a descriptor of ``meta.db-shm``, which drops every
    lock the process holds on that file, SQLite's among them: another process could then
    take the WAL index for abandoned and truncate it under the first (which died of
    SIGBUS in tests/test_concurrency.py)."""
    import fcntl
    import struct

    sqlite_project.log_artifact({"v": 1}, kind="model", name="churn")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(sqlite_project.root), holder_does],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "ready"
        (shm,) = sqlite_project.root.rglob("*.db-shm")
        with shm.open("rb") as handle:  # F_GETLK names a lock of another process only
            query = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, _DEAD_MAN_SWITCH, 1, 0)
            answer = fcntl.fcntl(handle.fileno(), fcntl.F_GETLK, query)
        kind, _whence, _start, _length, pid = struct.unpack("hhqqi4x", answer)
        assert kind == fcntl.F_RDLCK and pid == holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.skipif(sys.platform != "linux", reason="counts descriptors in /proc/self/fd")
def test_closed_projects_leave_no_descriptors(tmp_path: Path) -> None:
    """The change watcher's map of the WAL index goes with the last kernel that used it,
    while others of the same project stay open and after."""
    import os

    import mlkernel
    from mlkernel.meta import changes

    def ours() -> list[str]:  # this process's descriptors of files under tmp_path
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(tmp_path)):
                found.append(target)
        return found

    def users() -> list[int]:
        keys = set()
        for shm in tmp_path.glob("p*/.mlkernel/meta.db-shm"):
            info = shm.stat()
            keys.add((info.st_dev, info.st_ino))
        return sorted(held.users for key, held in changes._MAPS.items() if key in keys)

    for i in range(2):
        mlkernel.init(tmp_path / f"p{i}", name=f"p{i}").close()
    assert ours() == []
    staying = [mlkernel.open(tmp_path / f"p{i}") for i in range(2)]
    for k in staying:
        k.log_artifact({"v": 1}, kind="model", name="m")
    for _round in range(10):
        opened = [mlkernel.open(tmp_path / f"p{i}") for i in range(2) for _copy in range(2)]
        for k in opened:
            k.resolve("model:m")
        assert users() == [3, 3]
        for k in opened:
            k.close()
        assert users() == [1, 1]
    for k in staying:
        k.close()
    assert users() == [] and ours() == []

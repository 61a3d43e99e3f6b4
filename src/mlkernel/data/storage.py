"""Writing a version's files: Arrow IPC (memory-mappable) and Parquet (zstd), atomically.

Both are written to temporary files named after this process (``data-<pid>-…``), hashed,
and only then moved into the object store. A process killed mid-write leaves just those
temporary files, which the next ingest removes (:func:`sweep`) because their process is
gone; nothing is registered, so no version and no object appear.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.data.sources import file_sha256

if TYPE_CHECKING:
    from mlkernel.artifacts.store import ObjectStore

__all__ = ["Written", "commit", "sweep", "temp_path", "write_version"]

PREFIX = "data-"
PARQUET_ZSTD_LEVEL = 1  # level 1 is ~3x faster than the default 3 and within ~5% in size


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    digest: str
    size: int


def temp_path(folder: Path, what: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}.{what}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(folder: Path) -> list[Path]:
    """Remove temporary files left by ingests whose process has died."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(PREFIX):
            continue
        pid_text = entry.name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_ipc(table: Any, path: Path) -> Written:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    _fsync(path)
    return Written(path, file_sha256(path), path.stat().st_size)


def _write_parquet(table: Any, path: Path) -> Written:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_like = [
        f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)
    ]
    pq.write_table(
        table,
        str(path),
        compression="zstd",
        compression_level=PARQUET_ZSTD_LEVEL,
        use_dictionary=text_like or False,
    )
    _fsync(path)
    return Written(path, file_sha256(path), path.stat().st_size)


def write_version(table: Any, folder: Path) -> tuple[Written, Written]:
    """Write ``table`` as IPC and Parquet into ``folder`` (in parallel); return both."""
    ipc_path = temp_path(folder, "arrow")
    parquet_path = temp_path(folder, "parquet")
    box: dict[str, Any] = {}

    def parquet_job() -> None:
        try:
            box["parquet"] = _write_parquet(table, parquet_path)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=parquet_job, name="mlk-parquet", daemon=True)
    worker.start()
    try:
        ipc = _write_ipc(table, ipc_path)
    finally:
        worker.join()
    if "error" in box:
        ipc_path.unlink(missing_ok=True)
        parquet_path.unlink(missing_ok=True)
        raise box["error"]
    return ipc, box["parquet"]


def commit(store: ObjectStore, written: Written) -> bool:
    """Move a written file into the object store; True if this created the object."""
    final = store.path(written.digest)
    if final.exists():
        written.path.unlink(missing_ok=True)
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(written.path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(written.path, final)
    _fsync(final.parent)
    return True


def uncommit(store: ObjectStore, digest: str) -> None:
    """Remove an object this ingest created, when registering it failed."""
    path = store.path(digest)
    if path.exists():
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        path.unlink(missing_ok=True)

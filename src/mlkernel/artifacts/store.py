"""Content-addressed objects under ``.mlkernel/objects/ab/cdef...`` (BLAKE3, :mod:`mlkernel.digest`).

A write goes to a temporary file in ``objects/tmp``, is fsynced, renamed into place and
made read-only, so an object either exists whole or not at all; identical content is
stored once. Directories are stored as a deterministic tar (sorted names, zeroed times).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlkernel import digest as digests
from mlkernel.errors import IntegrityError, NotFoundError, UsageError
from mlkernel.fsutil import fsync_dir

__all__ = ["GCReport", "ObjectStore"]

CHUNK = 1 << 20
TMP_MAX_AGE = 3600.0  # temporary files older than this are leftovers of a crash


@dataclass(frozen=True, slots=True)
class GCReport:
    removed: list[str]
    bytes: int
    kept: int
    dry_run: bool


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        if not digests.is_digest(digest):
            raise UsageError(f"{digest!r} is not a BLAKE3 digest (64 lowercase hex characters)")
        return self.root / digest[:2] / digest[2:]

    def uri(self, digest: str) -> str:
        return f"objects/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    # -- writing ---------------------------------------------------------------------

    def adopt(self, tmp_path: Path, digest: str) -> Path:
        """Move a finished, fsynced temporary file whose digest is ``digest`` into place.

        For writers that hash while they write (e.g. dataset ingest); the file must be on
        the store's file system (``self.tmp`` is). If the object exists, the file goes.
        """
        final = self.path(digest)
        if final.exists():
            tmp_path.unlink()
            return final
        final.parent.mkdir(exist_ok=True)
        os.chmod(tmp_path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp_path, final)
        fsync_dir(final.parent)
        return final

    def _write_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        hasher = digests.new()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="obj-")
        tmp_path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            self.adopt(tmp_path, digest)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = digests.of_bytes(data)
        if self.exists(digest):
            return digest, len(data)
        return self._write_stream([data])

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a file or a directory; return (digest, size in bytes)."""
        if path.is_dir():
            return self.put_bytes(pack_dir(path))
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{path} does not exist; check the path") from None
        except IsADirectoryError:  # pragma: no cover - raced with is_dir
            raise UsageError(f"{path} is a directory") from None
        with handle:
            return self._write_stream(iter(lambda: handle.read(CHUNK), b""))

    # -- reading ---------------------------------------------------------------------

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO:
        path = self.path(digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise IntegrityError(
                f"object {digest[:12]} is missing from {self.root}; restore it from a backup "
                "or re-create the artifact"
            ) from None
        if verify:
            actual = digests.of_file(path)
            if actual != digest:
                handle.close()
                raise IntegrityError(
                    f"object {digest[:12]} was altered on disk (its content hashes to "
                    f"{actual[:12]}); restore it from a backup or re-create the artifact"
                )
            handle.seek(0)
        return handle

    def read_bytes(self, digest: str, *, verify: bool = False) -> bytes:
        with self.open(digest, verify=verify) as handle:
            return handle.read()

    def verify(self, digest: str) -> None:
        self.open(digest, verify=True).close()

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for obj in sub.iterdir():
                yield sub.name + obj.name, obj.stat().st_size

    def usage(self) -> tuple[int, int]:
        """(objects, bytes) stored."""
        count = total = 0
        for _digest, size in self.iter_digests():
            count += 1
            total += size
        return count, total

    def gc(self, referenced: set[str], *, dry_run: bool = True) -> GCReport:
        removed: list[str] = []
        freed = kept = 0
        for digest, size in self.iter_digests():
            if digest in referenced:
                kept += 1
                continue
            removed.append(digest)
            freed += size
            if not dry_run:
                path = self.path(digest)
                os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
                path.unlink(missing_ok=True)
        if self.tmp.is_dir():
            cutoff = time.time() - TMP_MAX_AGE
            for leftover in self.tmp.iterdir():
                if leftover.stat().st_mtime < cutoff:
                    removed.append(f"tmp/{leftover.name}")
                    freed += leftover.stat().st_size
                    if not dry_run:
                        leftover.unlink(missing_ok=True)
        return GCReport(removed=removed, bytes=freed, kept=kept, dry_run=dry_run)


def pack_dir(path: Path) -> bytes:
    """A deterministic tar of ``path``: same files, same bytes, same digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in sorted(p for p in path.rglob("*")):
            info = tar.gettarinfo(str(file), arcname=str(file.relative_to(path)))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if file.is_file():
                with file.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()

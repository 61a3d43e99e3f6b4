"""The local object store: objects under ``.mlkernel/objects/ab/cdef...`` (BLAKE3, :mod:`mlkernel.digest`).

:class:`LocalObjectStore` is the one owner of this layout (the ``ab/cdef…`` files, the
``tmp`` folder, read-only mode, the gc lock files of :mod:`mlkernel.gclock` in the store's
folder); everything else goes through the :class:`mlkernel.artifacts.base.ObjectStore`
operations. A pipeline's worker process opens the store from its location
(``LocalObjectStore(Path(location))``), so this module imports nothing heavier than ``os``
at load time: each step's process pays for it.

A write goes to a temporary file in ``objects/tmp``, is fsynced, renamed into place and
made read-only, so an object either exists whole or not at all; identical content is
stored once. Directories are stored as a deterministic tar (sorted names, zeroed times).

Garbage collection runs beside writers (:mod:`mlkernel.gclock`): a writer holds the
store's shared lock from putting its object (or finding it there, which also touches the
object's modification time) until the artifact that references it is committed; ``gc``
picks objects that are unreferenced AND older than a grace period, then, holding the
exclusive lock, re-reads the referenced digests and re-checks each object's age before it
deletes. Writers that cannot hold the lock until registration (the pipeline's workers,
whose runner registers later) are covered by the grace period.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from mlkernel import digest as digests
from mlkernel import gclock
from mlkernel.errors import IntegrityError, NotFoundError, UsageError

# Not `from typing import TYPE_CHECKING`: worker processes import this module (see above).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from typing import BinaryIO

    from mlkernel.artifacts.gc import GCReport

__all__ = ["DEFAULT_GC_GRACE", "LocalObjectStore", "touch"]

CHUNK = 1 << 20
TMP_MAX_AGE = 3600.0  # temporary files older than this are leftovers of a crash
DEFAULT_GC_GRACE = 600.0  # the same as mlkernel.artifacts.gc's, without its import


def touch(path: Path | str) -> None:
    """Mark an existing object as just used, so gc's grace period covers it again."""
    with contextlib.suppress(PermissionError):  # another user's object: the lock covers it
        os.utime(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalObjectStore:
    """Objects in a local folder; implements :class:`mlkernel.artifacts.base.ObjectStore`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / "tmp"

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, digest: str) -> Path:
        """The file holding an object (this backend only; others use
        :meth:`local_path_for_reading`, which works for every backend)."""
        if not digests.is_digest(digest):
            raise UsageError(f"{digest!r} is not a BLAKE3 digest (64 lowercase hex characters)")
        return self.root / digest[:2] / digest[2:]

    def uri(self, digest: str) -> str:
        return f"objects/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def writing(self) -> AbstractContextManager[None]:
        """Keep gc from deleting while the block puts objects and registers them.

        Hold it from the put until the artifact that references the object is committed.
        """
        return gclock.shared(self.root)

    # -- writing ---------------------------------------------------------------------

    def adopt(self, tmp_path: Path, digest: str) -> None:
        """Move a finished, fsynced temporary file whose digest is ``digest`` into place.

        For writers that hash while they write (e.g. dataset ingest); the file must be on
        the store's file system (``self.staging`` is). If the object exists, the file goes.
        """
        final = self.path(digest)
        with self.writing():  # an object found here might be gc's candidate: touch it
            if final.exists():
                tmp_path.unlink()
                touch(final)
                return
            self._place(tmp_path, final)
        _fsync_dir(final.parent)

    def _place(self, tmp_path: Path, final: Path) -> None:
        final.parent.mkdir(exist_ok=True)
        os.chmod(tmp_path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.utime(tmp_path)  # its age counts from now, not from when writing began
        os.replace(tmp_path, final)

    def _temp_file(self) -> tuple[int, Path]:
        """A new temporary file in ``staging``, named after this process (``obj-<pid>-…``)
        so that gc leaves it alone while the process lives."""
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"obj-{os.getpid()}-{os.urandom(6).hex()}"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path

    def _write_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        hasher = digests.new()
        size = 0
        fd, tmp_path = self._temp_file()
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
        digest = digests.of_bytes(data)  # hashed once: the bytes are known before writing
        final = self.path(digest)
        with self.writing():
            if final.exists():
                touch(final)  # gc's grace period starts again
                return digest, len(data)
            fd, tmp_path = self._temp_file()
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                self._place(tmp_path, final)
            except BaseException:
                tmp_path.unlink(missing_ok=True)
                raise
        _fsync_dir(final.parent)
        return digest, len(data)

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

    def _missing(self, digest: str) -> IntegrityError:
        return IntegrityError(
            f"object {digest[:12]} is missing from {self.root}; restore it from a backup "
            "or re-create the artifact"
        )

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO:
        path = self.path(digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise self._missing(digest) from None
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

    def local_path_for_reading(self, digest: str, *, verify: bool = False) -> Path:
        """The object's own (read-only) file: a local store needs no cache."""
        if verify:
            self.verify(digest)
        return self.path(digest)

    def verify(self, digest: str) -> None:
        self.open(digest, verify=True).close()

    def delete(self, digest: str) -> bool:
        path = self.path(digest)
        try:
            os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        for digest, size, _mtime in self._scan():
            yield digest, size

    def usage(self) -> tuple[int, int]:
        """(objects, bytes) stored."""
        count = total = 0
        for _digest, size in self.iter_digests():
            count += 1
            total += size
        return count, total

    def gc(
        self,
        referenced: Callable[[], set[str]],
        *,
        dry_run: bool = True,
        grace: float = DEFAULT_GC_GRACE,
        caches: Sequence[Path] = (),
    ) -> GCReport:
        """Delete objects no artifact references that are older than ``grace`` seconds.

        ``referenced`` is asked twice: after listing the objects, to pick the candidates,
        and again under the exclusive
        lock (:mod:`mlkernel.gclock`) just before deleting, when no registration is in
        flight; each candidate's age is checked again then too. ``caches`` are folders of
        files derived from a version and named after its digest (``<digest>.parquet``,
        ``<digest>-float64-all.npy``): those of unreferenced digests go as well.
        """
        from mlkernel.artifacts.gc import GCReport

        now = time.time()
        scanned = list(self._scan())
        refs = referenced()  # after the scan: what registered meanwhile is kept
        candidates: list[tuple[str, int]] = []
        young: list[str] = []
        kept = 0
        for digest, size, mtime in scanned:
            if digest in refs:
                kept += 1
            elif mtime > now - grace:
                young.append(digest)
            else:
                candidates.append((digest, size))
        removed: list[str] = []
        freed = 0
        if dry_run:
            removed = [d for d, _ in candidates]
            freed = sum(size for _, size in candidates)
        elif candidates:
            with gclock.exclusive(self.root):
                refs = referenced()
                cutoff = time.time() - grace
                for digest, size in candidates:
                    if digest in refs:
                        kept += 1
                        continue
                    try:
                        if self.path(digest).stat().st_mtime > cutoff:  # touched by a writer
                            young.append(digest)
                            continue
                    except FileNotFoundError:  # another gc was quicker
                        continue
                    if self.delete(digest):
                        removed.append(digest)
                        freed += size
        extra, extra_bytes = self._gc_leftovers(refs, now - grace, caches, dry_run)
        return GCReport(
            removed=removed + extra,
            bytes=freed + extra_bytes,
            kept=kept,
            dry_run=dry_run,
            young=young,
            grace=grace,
        )

    def _scan(self) -> Iterator[tuple[str, int, float]]:
        """(digest, size, modification time) of every object."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for obj in sub.iterdir():
                try:
                    info = obj.stat()
                except FileNotFoundError:
                    continue
                yield sub.name + obj.name, info.st_size, info.st_mtime

    def _gc_leftovers(
        self, refs: set[str], cutoff: float, caches: Sequence[Path], dry_run: bool
    ) -> tuple[list[str], int]:
        """Temporary files of dead writers, and cached files of unreferenced versions."""
        removed: list[str] = []
        freed = 0
        found: list[tuple[str, Path]] = []
        if self.staging.is_dir():
            oldest = time.time() - TMP_MAX_AGE
            for leftover in self.staging.iterdir():
                if _writer_alive(leftover.name):
                    continue  # a live writer's temporary file, however slow it is
                try:
                    if leftover.stat().st_mtime < oldest:
                        found.append((f"tmp/{leftover.name}", leftover))
                except FileNotFoundError:
                    continue
        for cache in caches:
            if not cache.is_dir():
                continue
            for entry in cache.iterdir():
                owner = entry.name[:64]
                if not digests.is_digest(owner) or owner in refs:
                    continue
                try:
                    if entry.stat().st_mtime < cutoff:
                        found.append((f"{cache.name}/{entry.name}", entry))
                except FileNotFoundError:
                    continue
        for label, path in found:
            try:
                size = path.stat().st_size
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(label)
            freed += size
        return removed, freed


def _writer_alive(name: str) -> bool:
    """Whether a temporary file's name (``obj-<pid>-…``, ``data-<pid>-…``) names a live process."""
    from mlkernel.fsutil import pid_alive

    parts = name.split("-")
    return len(parts) > 2 and parts[1].isdigit() and pid_alive(int(parts[1]))


def pack_dir(path: Path) -> bytes:
    """A deterministic tar of ``path``: same files, same bytes, same digest."""
    import io
    import tarfile

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

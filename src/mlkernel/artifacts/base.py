"""The object store's interface: what every backend (local folder today, S3 later) offers.

Objects are immutable byte strings named by their BLAKE3 digest (:mod:`mlkernel.digest`).
Only a backend knows where and how they are kept (for the local one, the folder layout
``ab/cdef…``, its temporary files, read-only mode and the gc lock files); everything else
names objects by digest and goes through these operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from mlkernel.artifacts.gc import GCReport

__all__ = ["ObjectStore"]


class ObjectStore(Protocol):
    """Content-addressed, immutable object storage.

    Reading through a local path: :meth:`local_path_for_reading` returns a file on this
    machine that holds the object's bytes and that callers may memory-map (datasets are
    opened that way). The file is read-only and stays valid while the object is referenced.
    A local backend returns the object's own file; a remote backend downloads the object
    into a local cache first, checks its digest there, and returns the cached file, so a
    caller never maps unverified bytes it did not write itself.

    Writing: :meth:`put_bytes` and :meth:`put_file` copy content in; a writer that produced
    a file itself (hashing while it wrote, as ingest does) stages it in :attr:`staging` and
    hands it over with :meth:`adopt`, which moves it without copying or re-hashing it. Hold
    :meth:`writing` from the put until the artifact referencing the object is registered,
    so that :meth:`gc` cannot remove it in between.
    """

    @property
    def location(self) -> str:
        """Where the store is (a folder, a URL): for messages, and for a worker process to
        open the same store (``LocalObjectStore(Path(location))``)."""
        ...

    @property
    def staging(self) -> Path:
        """A local folder on the store's file system for files that :meth:`adopt` takes."""
        ...

    def uri(self, digest: str) -> str:
        """The object's address as recorded in the metadata (``objects/ab/cdef…``)."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """Bytes stored; raises :class:`IntegrityError` if the object is missing."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """Keep gc from deleting while the block puts objects and registers them."""
        ...

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (digest, size). Identical content is stored once."""
        ...

    def put_file(self, path: Path) -> tuple[str, int]:
        """Copy a file (or a folder, as a deterministic tar) in; return (digest, size)."""
        ...

    def adopt(self, tmp_path: Path, digest: str) -> None:
        """Move a finished, fsynced file from :attr:`staging` whose content hashes to
        ``digest`` into the store (no copy); if the object exists, the file is removed."""
        ...

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO:
        """A read stream; ``verify`` re-hashes the content first."""
        ...

    def read_bytes(self, digest: str, *, verify: bool = False) -> bytes: ...

    def local_path_for_reading(self, digest: str, *, verify: bool = False) -> Path:
        """A read-only local file holding the object, which may be memory-mapped (see the
        class docstring for what a remote backend does)."""
        ...

    def verify(self, digest: str) -> None:
        """Raise :class:`IntegrityError` unless the object is there and hashes to ``digest``."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove an object; True if it was there. Only for objects nothing references."""
        ...

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        """(digest, size) of every object stored."""
        ...

    def usage(self) -> tuple[int, int]:
        """(objects, bytes) stored."""
        ...

    def gc(
        self,
        referenced: Callable[[], set[str]],
        *,
        dry_run: bool = True,
        grace: float = ...,
        caches: Sequence[Path] = (),
    ) -> GCReport:
        """Delete objects no artifact references that are older than ``grace`` seconds."""
        ...

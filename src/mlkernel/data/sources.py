"""Finding the files to ingest and reading their bytes.

A source is one file. :func:`expand` turns a path, a directory or a glob into sorted
files; :func:`sniff` names its format and compression from its magic bytes (falling back
on the extension); :class:`Hasher` hashes the raw bytes (the source digest) beside the
parser, reports progress and notices a file that changes while it is read.
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlkernel.errors import ConflictError, NotFoundError, UsageError

__all__ = ["FORMATS", "Hasher", "Source", "expand", "file_sha256", "sniff"]

FORMATS = ("csv", "tsv", "ndjson", "json", "parquet")
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
HASH_CHUNK = 4 << 20
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"))


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: where, what format, which compression, and its state when found."""

    path: Path
    format: str
    compression: str | None
    size: int
    mtime_ns: int
    inode: int

    def changed(self) -> bool:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return True
        return (st.st_size, st.st_mtime_ns, st.st_ino) != (self.size, self.mtime_ns, self.inode)


def expand(target: str | Path) -> list[Path]:
    """The files ``target`` names: itself, the files in a directory, or a glob's matches."""
    text = str(target)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise UsageError(f"directory {path} holds no files; point at a file or a glob")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        files = [p for p in files if p.is_file()]
        if not files:
            raise NotFoundError(f"no files match {text!r}; check the pattern")
        return files
    raise NotFoundError(f"{path} does not exist; check the path")


def _format_from_name(name: str) -> tuple[str | None, str | None]:
    lower = name.lower()
    compression = None
    stem, ext = os.path.splitext(lower)
    if ext in _COMPRESSED:
        compression = _COMPRESSED[ext]
        stem, ext = os.path.splitext(stem)
    return _EXTENSIONS.get(ext), compression


def _sniff_text(head: bytes) -> str:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "ndjson"
    first = stripped.split(b"\n", 1)[0]
    return "tsv" if first.count(b"\t") > first.count(b",") else "csv"


def sniff(path: Path, fmt: str | None = None) -> Source:
    """Describe ``path``: its format (``fmt`` overrides) and compression, from magic bytes."""
    try:
        st = path.stat()
        with path.open("rb") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist; check the path") from None
    except PermissionError:
        raise UsageError(f"{path} cannot be read; check its permissions") from None
    if st.st_size == 0:
        raise UsageError(f"{path} is empty; nothing to ingest")
    by_name, compression = _format_from_name(path.name)
    for magic, codec in _MAGIC:
        if head.startswith(magic):
            compression = codec
            break
    else:
        compression = None
    if head.startswith(b"PAR1"):
        by_name = "parquet"
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
        chosen = fmt
    elif by_name is not None:
        chosen = by_name
    elif compression is None:
        chosen = _sniff_text(head)
    else:
        chosen = _sniff_text(_decompressed_head(path, compression))
    if chosen == "parquet" and compression is not None:
        raise UsageError(f"{path} is a compressed Parquet file; decompress it first")
    return Source(path, chosen, compression, st.st_size, st.st_mtime_ns, st.st_ino)


def _decompressed_head(path: Path, compression: str) -> bytes:
    import pyarrow as pa

    with pa.input_stream(str(path), compression=compression) as stream:
        data: bytes = stream.read(4096)
    return data


class Hasher:
    """Hashes a source's raw bytes on a thread of its own while the parser reads the file.

    The parser opens the file itself (natively, multi-threaded) instead of pulling every
    byte through Python; this thread reads it a second time from the page cache, which
    costs a memory copy, and hashes it (``hashlib`` releases the GIL), filling the gaps the
    parser's threads leave. ``on_read(bytes, lines)`` is called after every chunk (for
    progress; lines are counted only when ``count_lines``). :meth:`finish` returns the
    SHA-256 and refuses a file whose size, mtime or inode changed since it was found.
    """

    def __init__(
        self,
        source: Source,
        on_read: Callable[[int, int], None] | None = None,
        *,
        count_lines: bool = False,
    ) -> None:
        self.source = source
        self.bytes_read = 0
        self._on_read = on_read
        self._lines = count_lines and source.compression is None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlk-source-hash", daemon=True)
        self._digest = ""
        self._error: BaseException | None = None

    def _run(self) -> None:
        hasher = hashlib.sha256()
        buffer = bytearray(HASH_CHUNK)
        view = memoryview(buffer)
        try:
            with self.source.path.open("rb", buffering=0) as handle:
                while not self._stop.is_set():
                    n = handle.readinto(buffer)
                    if not n:
                        break
                    hasher.update(view[:n])
                    self.bytes_read += n
                    if self._on_read is not None:
                        self._on_read(n, buffer.count(b"\n", 0, n) if self._lines else 0)
        except BaseException as exc:  # re-raised by finish(), in the caller's thread
            self._error = exc
        self._digest = hasher.hexdigest()

    def finish(self) -> str:
        """The source digest, once every byte is hashed; refuse if the file changed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self.source.changed() or self.bytes_read != self.source.size:
            raise ConflictError(
                f"{self.source.path} changed while it was being read; add it again once "
                "nothing is writing to it"
            )
        return self._digest

    def __enter__(self) -> Hasher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # a failed parse: stop hashing
        self._thread.join()


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

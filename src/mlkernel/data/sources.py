"""Finding the files to ingest and reading their bytes.

A source is one file. :func:`expand` turns a path, a directory or a glob into sorted
files; :func:`sniff` names its format and compression from its magic bytes (falling back
on the extension); :class:`Watch` reports how far the parser has read, and
:class:`Hasher` hashes the raw bytes (the source digest) and notices a file that changed.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlkernel import digest as digests
from mlkernel.errors import ConflictError, NotFoundError, UsageError

__all__ = [
    "FORMATS",
    "Hasher",
    "Source",
    "Watch",
    "csv_delimiter",
    "detect_delimiter",
    "expand",
    "sniff",
]

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
# Files people try to add that no reader takes: named, instead of a parse error that
# points elsewhere ("no header line", "pass --encoding latin-1").
_NOT_DATA = (
    (
        b"PK\x03\x04",
        "a zip archive (an Excel .xlsx workbook is one)",
        "unzip it, or save the sheet as CSV",
    ),
    (b"\xd0\xcf\x11\xe0", "an old Office file (Excel .xls)", "save the sheet as CSV"),
    (b"\x89PNG", "a PNG image", "point at a data file"),
    (b"\xff\xd8\xff", "a JPEG image", "point at a data file"),
    (b"%PDF", "a PDF document", "point at a data file"),
    (b"\x7fELF", "a program", "point at a data file"),
)


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: where, what format, which compression, and its state when found."""

    path: Path
    format: str
    compression: str | None
    size: int
    mtime_ns: int
    inode: int
    data: bytes | None = None  # the bytes to parse, when not the file's (a JSON array's records)

    def stream(self) -> Any:
        """The bytes to parse as an Arrow input stream, decompressed."""
        import pyarrow as pa

        if self.data is not None:
            return pa.BufferReader(self.data)
        return pa.input_stream(str(self.path), compression=self.compression)

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
        try:
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        except OSError as exc:  # an entry that cannot be read (e.g. /proc/1/cwd)
            raise UsageError(
                f"cannot read {exc.filename or path} in folder {path}: "
                f"{exc.strerror or type(exc).__name__}; point at a file, a glob or a folder "
                "whose files you can read"
            ) from None
        if not files:
            raise UsageError(f"directory {path} holds no files; point at a file or a glob")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        try:
            files = [p for p in files if p.is_file()]
        except OSError as exc:
            raise UsageError(
                f"cannot read {exc.filename}, which {text!r} matches: "
                f"{exc.strerror or type(exc).__name__}; narrow the pattern"
            ) from None
        if not files:
            raise NotFoundError(f"no files match {text!r}; check the pattern")
        return files
    if path.exists():  # a device, a pipe, a socket
        raise UsageError(f"{path} is not a regular file or a folder; point at a data file")
    raise _missing(path)


def _missing(path: Path) -> Exception:
    """Refuse a path that names no file: a symlink loop, a dangling link, or nothing."""
    import errno

    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return UsageError(
                f"{path} is a symlink loop (it leads back to itself); point at the file itself"
            )
        if path.is_symlink():
            return NotFoundError(
                f"{path} is a symlink to {os.readlink(path)}, which does not exist; check the link"
            )
    return NotFoundError(f"{path} does not exist; check the path")


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
    for magic, what, fix in _NOT_DATA:
        if head.startswith(magic):
            raise UsageError(
                f"{path} is {what}, not a data file; {fix} (mlkernel reads CSV, TSV, NDJSON, "
                "JSON and Parquet, plain or gzip/bz2/zstd-compressed)"
            )
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


# The separators besides the comma that a CSV file's header is checked for, with their
# names (``--delimiter semicolon``); a header without a comma holding one of them, each row
# of the first ones as many fields, is read with it (:func:`detect_delimiter`).
_DETECTED = {";": "semicolon", "\t": "tab", "|": "pipe"}
_DELIMITER_WORDS = {**{v: k for k, v in _DETECTED.items()}, "comma": ",", "\\t": "\t"}
_DETECT_BYTES = 1 << 16
_DETECT_ROWS = 50


def csv_delimiter(text: str) -> str:
    """The field separator ``text`` names: one character, or tab, semicolon, pipe, comma
    (or ``\\t``, as a shell passes it)."""
    delimiter = _DELIMITER_WORDS.get(text.lower(), text)
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise UsageError(
            f"delimiter {text!r} is not one character that can separate fields; pass e.g. "
            "--delimiter ';' (or semicolon, tab, pipe, comma)"
        )
    return delimiter


def detect_delimiter(source: Source) -> str | None:
    """A CSV file's separator, read off its first lines: ``,`` if the header has a comma;
    else the one of ``;``, tab and ``|`` in the header that splits most of the first rows
    into as many fields as the header; None if the header holds none of them (one column).

    Refuses a header without a comma whose separator cannot be told (no candidate splits
    the rows alike, or several do), naming ``--delimiter``: read with a comma, such a file
    would become one column of ``a;b`` strings without a word.
    """
    try:
        with source.stream() as stream:
            head = stream.read(_DETECT_BYTES)
    except (OSError, ValueError):  # a corrupt compressed file: the parse names it
        return None
    if len(head) == _DETECT_BYTES:  # it ends mid-row: keep whole lines
        head = head[: max(head.rfind(b"\n"), 0) + 1] or head
    if b"\0" in head:  # UTF-16 or UTF-32: the parse refuses it, naming the encoding
        return None
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")  # separators are ASCII
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    present = [c for c in _DETECTED if c in header]
    if not present:
        return None
    fits = [c for c in present if _splits_alike(text, c)]
    if len(fits) == 1:
        return fits[0]
    named = " and ".join(f"{_DETECTED[c]}s" for c in present)
    example = "'\\t'" if present[0] == "\t" else f"'{present[0]}'"
    raise UsageError(
        f"{source.path}: the header has no comma but has {named}, and the separator cannot "
        f"be told from the first rows; pass --delimiter {example} (or --delimiter , to read "
        "each line as one column)"
    )


def _splits_alike(text: str, delimiter: str) -> bool:
    """Whether the header splits into several fields, and most of the first rows into as
    many (a bad row among them is then the parse's to name or set aside)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header, *rows = [row for row in itertools.islice(reader, _DETECT_ROWS) if row]
    except (csv.Error, ValueError):  # a stray NUL, a field past csv's limit
        return False
    alike = sum(len(row) == len(header) for row in rows)
    return len(header) > 1 and alike * 2 > len(rows) if rows else len(header) > 1


def _decompressed_head(path: Path, compression: str) -> bytes:
    import pyarrow as pa

    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            data: bytes = stream.read(4096)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the system's error (a disk error), not the file's
        raise UsageError(
            f"{path}: the {compression} data is cut short or corrupt ({exc}); fetch or "
            "compress the file again"
        ) from None
    return data


class Hasher:
    """Hashes sources' raw bytes, one after another, on a thread of its own.

    Ingest starts it once the parse is done, beside the writing of the Arrow file: the
    parse keeps both cores, and the hash fills the one the writer leaves. (Run during the
    parse, it slowed the parse by more than its own cost.) :meth:`finish` returns the
    digest of each source and refuses a file whose size, mtime or inode changed since it
    was found — so a file changed after the parser read it is refused too.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlk-source-hash", daemon=True)
        self._digests: list[str] = []
        self._read: list[int] = []
        self._error: BaseException | None = None

    def _run(self) -> None:
        buffer = bytearray(HASH_CHUNK)
        view = memoryview(buffer)
        try:
            for source in self.sources:
                hasher = digests.new()
                total = 0
                with source.path.open("rb", buffering=0) as handle:
                    while not self._stop.is_set() and (n := handle.readinto(buffer)):
                        hasher.update(view[:n])
                        total += n
                self._digests.append(hasher.hexdigest())
                self._read.append(total)
        except BaseException as exc:  # re-raised by finish(), in the caller's thread
            self._error = exc

    def start(self) -> Hasher:
        self._thread.start()
        return self

    def finish(self) -> list[str]:
        """The digests, once every byte is hashed; refuse if a file changed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        for source, size in zip(self.sources, self._read, strict=True):
            if source.changed() or size != source.size:
                raise ConflictError(
                    f"{source.path} changed while it was being read; add it again once "
                    "nothing is writing to it"
                )
        return self._digests

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # a failure elsewhere: stop hashing
        if self._thread.is_alive():
            self._thread.join()


class Watch:
    """Reports how far a parser has read a file, from a thread that polls its position.

    The parser reads natively; every :data:`POLL` seconds this calls ``on_read(bytes,
    lines)`` with what was read since the last call (lines estimated from the file's
    first MiB). A position reached twice (a parse run again) is not counted twice, and
    :meth:`done` reports the rest of the file.
    """

    POLL = 0.1

    def __init__(
        self, source: Source, on_read: Callable[[int, int], None], *, count_lines: bool
    ) -> None:
        self._source = source
        self._on_read = on_read
        self._reached = 0
        self._per_byte = _lines_per_byte(source) if count_lines else 0.0
        self._lock = threading.Lock()

    def report(self, position: int) -> None:
        with self._lock:
            if position <= self._reached:
                return
            delta, self._reached = position - self._reached, position
        self._on_read(delta, round(delta * self._per_byte))

    def follow(self, raw: Any) -> _Polling:
        """Poll ``raw.tell()`` (the compressed position for compressed files) until closed."""
        return _Polling(self, raw)

    def done(self) -> None:
        self.report(self._source.size)


class _Polling:
    def __init__(self, watch: Watch, raw: Any) -> None:
        self._watch = watch
        self._raw = raw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlk-progress", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        while not self._stop.wait(Watch.POLL):
            try:
                position = self._raw.tell()
            except (OSError, ValueError):  # closed under us: the parse is over
                return
            try:
                self._watch.report(position)
            except BaseException as exc:  # the callback's: raised in the parser's thread
                self._error = exc
                return

    def __enter__(self) -> _Polling:
        self._thread.start()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None and kind is None:
            raise self._error


def _lines_per_byte(source: Source) -> float:
    if source.compression is not None:
        return 0.0
    with source.path.open("rb") as handle:
        head = handle.read(1 << 20)
    return head.count(b"\n") / len(head) if head else 0.0

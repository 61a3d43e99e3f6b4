"""Parsing one source into an Arrow table with Arrow's multi-threaded readers.

Arrow reads the file itself (no byte passes through Python, but for a file read again
without some lines). The fast path runs once; only when something is wrong do the slower
diagnostics in :mod:`mlkernel.data.diagnose` run, to name the line. A row too large for
the read block (say a 10 MB field) makes Arrow fail with "straddling object"; we retry
with a block big enough to hold it.

This module holds what every format shares; :mod:`mlkernel.data.csv_reader` and
:mod:`mlkernel.data.json_reader` read CSV/TSV and NDJSON/JSON arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlkernel.data import diagnose, infer
from mlkernel.data.sources import Source, Watch
from mlkernel.errors import UsageError

__all__ = [
    "BAD_ROW_MODES",
    "BadRow",
    "ReadOptions",
    "ReadResult",
    "memory_pool",
    "normalise",
    "read_source",
]

BAD_ROW_MODES = ("fail", "skip", "quarantine")
BLOCK_SIZE = 4 << 20
MAX_BLOCK = 1 << 30
HEAD_BYTES = 1 << 20  # the rows whose types are inferred before the whole file is parsed
DEFAULT_MAX_CATEGORIES = 1000
# A field that is exactly one of these is missing, in every column type and format (for
# JSON: a string value); pandas' read_csv default list. ``null_values=`` replaces it.
DEFAULT_NULL_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    on_bad_rows: str = "fail"
    column_types: dict[str, Any] = field(default_factory=dict)  # name -> Arrow type
    encoding: str = "utf8"
    max_categories: int = DEFAULT_MAX_CATEGORIES
    block_size: int = BLOCK_SIZE
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES
    delimiter: str | None = None  # CSV's field separator; None: the format's (',' or tab)
    decimal: str = "."  # CSV's decimal mark in numbers: "." or ","

    def key(self) -> dict[str, Any]:
        """What, besides the bytes, decides the stored result (for dedupe)."""
        key = {
            "on_bad_rows": self.on_bad_rows,
            "schema": {k: str(v) for k, v in sorted(self.column_types.items())},
            "encoding": self.encoding,
            "max_categories": self.max_categories,
        }
        if self.null_values != DEFAULT_NULL_VALUES:  # versions made before it stay equal
            key["null_values"] = list(self.null_values)
        if self.delimiter is not None:  # given or detected; versions made before it stay equal
            key["delimiter"] = self.delimiter
        if self.decimal != ".":
            key["decimal"] = self.decimal
        return key


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int | None
    text: str
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "problem": self.problem}


@dataclass(slots=True)
class ReadResult:
    table: Any  # pyarrow.Table
    bad_rows: list[BadRow] = field(default_factory=list)


def read_source(
    source: Source,
    options: ReadOptions,
    on_read: Callable[[int, int], None] | None = None,
    *,
    count_lines: bool = False,
) -> ReadResult:
    """Parse ``source``; raise a one-line :class:`UsageError` naming the line on bad input.

    The parser reads the file natively; ``on_read(bytes, lines)`` hears how far it got
    (see :class:`Watch`). Hashing the source is the caller's (:class:`Hasher`).
    """
    import pyarrow as pa

    from mlkernel.data import csv_reader, json_reader  # they build on this module

    readers = {
        "csv": csv_reader.read_csv,
        "tsv": csv_reader.read_csv,
        "ndjson": json_reader.read_ndjson,
        "json": json_reader.read_json_array,
        "parquet": _read_parquet,
    }
    watch = Watch(source, on_read, count_lines=count_lines) if on_read is not None else None
    block = options.block_size
    while True:
        try:
            _check_encoding(source, options)
            table, bad = readers[source.format](source, options, block, watch)
            table = normalise(source, table, options)
            break
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and block < MAX_BLOCK and block < source.size * 2:
                block *= 16  # a row longer than the block: read again with bigger blocks
                continue
            raise _unreadable(source, options, exc) from None
        except (OSError, UnicodeError, RecursionError) as exc:
            raise _unreadable(source, options, exc) from None
    if watch is not None:
        watch.done()
    return ReadResult(table, bad)


MAX_DEPTH = 64  # nested levels an Arrow file holds (its IPC reader's limit)


def _check_encoding(source: Source, options: ReadOptions) -> None:
    """Refuse a UTF-16 (or UTF-32) text file read as UTF-8: its BOM, or a NUL in every
    other byte of its start. Arrow would read it as one column of garbled values, or
    miscount its fields."""
    if source.format == "parquet" or diagnose.codec(options.encoding) != "utf-8":
        return
    with open_input(source) as stream:
        head = stream.read(64)
    even, odd = head[0::2], head[1::2]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (
        len(head) >= 4 and (not even.strip(b"\0") or not odd.strip(b"\0"))
    ):
        raise UsageError(
            f"{source.path}: file is UTF-16 (or UTF-32), not UTF-8; convert it with "
            f"`iconv -f UTF-16 -t UTF-8 {source.path} > converted.{source.format}`, or pass "
            "--encoding utf-16"
        )


def _unreadable(source: Source, options: ReadOptions, exc: BaseException) -> BaseException:
    """The one-line refusal for a failure no reader named; ``exc`` itself if it is not the
    file's fault (a disk error, or a bug: reported as such)."""
    import pyarrow as pa

    text = first_line(str(exc))
    # The decompressor's errors carry no errno; the system's (a disk error) do, and stand.
    from_codec = isinstance(exc, pa.ArrowInvalid) or (
        isinstance(exc, OSError) and exc.errno is None
    )
    if source.compression is not None and from_codec:
        return UsageError(
            f"{source.path}: the {source.compression} data is cut short or corrupt ({text}); "
            "fetch or compress the file again"
        )
    if isinstance(exc, RecursionError) or "recursion" in text.lower():
        return UsageError(
            f"{source.path}: a value is nested more than {MAX_DEPTH} levels deep, more than a "
            "dataset can hold; flatten it first"
        )
    if isinstance(exc, UnicodeError):
        where = (
            diagnose.not_utf8(source)
            if diagnose.codec(options.encoding) == "utf-8"
            else f"not {options.encoding} ({text})"
        )
        return UsageError(
            f"{source.path}: {where}; pass --encoding with the file's encoding "
            "(e.g. latin-1), or re-encode it as UTF-8"
        )
    return exc


def memory_pool() -> Any:
    """Arrow's jemalloc pool where pyarrow has it, else the C library's allocator.

    With pyarrow's default (mimalloc), a multi-threaded parse of the 860 MB benchmark CSV
    spent 2.3 of its 7 CPU-seconds in the kernel faulting in pages the allocator had just
    given back; with jemalloc 0.6 s, and the parse took 2.6 s instead of 3.7 s. Passed to
    each call, so that the process's default pool stays as it was.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.system_memory_pool()


@contextlib.contextmanager
def open_input(
    source: Source, watch: Watch | None = None, without: Sequence[diagnose.OpenQuote] = ()
) -> Iterator[Any]:
    """The file as a stream, decompressed natively; less the lines ``without``, if any
    (the bytes then pass through Python on their way, a block at a time)."""
    import pyarrow as pa

    raw = pa.OSFile(str(source.path)) if source.data is None else pa.BufferReader(source.data)
    stream = (
        raw
        if source.compression is None or source.data is not None
        else pa.CompressedInputStream(raw, source.compression)
    )
    readable = diagnose.Without(stream, without) if without else stream
    try:
        if watch is None:
            yield readable
        else:
            with watch.follow(raw):
                yield readable
    finally:
        stream.close()
        raw.close()


class ParseError(Exception):
    """Arrow's parse failed (not for want of a bigger block); with the bad rows seen."""

    def __init__(self, message: str, bad: list[BadRow]) -> None:
        super().__init__(message)
        self.bad = bad


def first_line(text: str) -> str:
    """The first line of an error message, for a one-line refusal."""
    return text.strip().splitlines()[0] if text.strip() else "cannot be parsed"


def _read_parquet(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source.path)
    except pa.ArrowException as exc:
        raise UsageError(f"{source.path} is not a readable Parquet file ({exc})") from None
    if options.column_types:
        table = cast_columns(source, table, options.column_types)
    return table, []


def cast_columns(source: Source, table: Any, types: dict[str, Any]) -> Any:
    """``table`` with the declared columns converted to their ``types``; refuse a value
    that does not convert, naming the column."""
    import pyarrow as pa

    for name, dtype in types.items():
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        if table.schema.field(index).type == dtype:
            continue
        try:
            column = table.column(index).cast(dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UsageError(
                f"{source.path}: column {name!r} cannot be read as {dtype} "
                f"({first_line(str(exc))}); fix the value, or declare another type in the "
                "schema file"
            ) from None
        table = table.set_column(index, pa.field(name, dtype), column)
    return table


def normalise(source: Source, table: Any, options: ReadOptions) -> Any:
    """Checks and conversions every format shares."""
    import pyarrow as pa

    seen: dict[str, int] = {}
    for i, name in enumerate(table.column_names):
        if name in seen:
            raise UsageError(
                f"{source.path}: columns {seen[name] + 1} and {i + 1} are both named {name!r}; "
                "rename one in the header"
            )
        seen[name] = i
    if table.num_columns == 0:
        raise UsageError(f"{source.path} has no columns; nothing to ingest")
    if max(_depth(f.type) for f in table.schema) > MAX_DEPTH:
        raise _unreadable(source, options, RecursionError())
    if source.format in ("ndjson", "json"):  # Arrow's CSV reader applies them itself
        table = infer.missing_text(table, options.null_values)
    if source.format != "parquet":
        table = infer.text_dates(table, options.column_types)
    if table.num_rows == 0:
        raise UsageError(f"{source.path} has a header but no rows; nothing to ingest")
    for i, fld in enumerate(table.schema):
        dtype = fld.type
        if pa.types.is_large_string(dtype):
            table = table.set_column(
                i, pa.field(fld.name, pa.string()), table.column(i).cast(pa.string())
            )
            dtype = pa.string()
        if (
            pa.types.is_dictionary(dtype)
            and fld.name not in options.column_types
            and table.column(i).num_chunks
        ):
            column = table.column(i)
            distinct = max(len(c.dictionary) for c in column.chunks)
            if distinct * 2 > table.num_rows:  # mostly unique text is not a category
                table = table.set_column(
                    i, pa.field(fld.name, dtype.value_type), column.cast(dtype.value_type)
                )
                continue
        if (
            pa.types.is_string(dtype)
            and source.format in ("ndjson", "json", "parquet")
            and fld.name not in options.column_types
        ):
            encoded = _as_category(table.column(i), options.max_categories, table.num_rows)
            if encoded is not None:
                table = table.set_column(i, pa.field(fld.name, encoded.type), encoded)
    if any(pa.types.is_dictionary(f.type) for f in table.schema):
        table = table.unify_dictionaries(memory_pool())
    return table


def _depth(dtype: Any) -> int:
    """How many levels a type nests (1 for a scalar)."""
    return 1 + max((_depth(dtype.field(i).type) for i in range(dtype.num_fields)), default=0)


def _as_category(column: Any, limit: int, rows: int) -> Any | None:
    """A text column as a category column, if it has at most ``limit`` distinct values
    and is not mostly unique; else None.

    One pass, the encoding itself (counting the values first cost a second hash pass);
    a first chunk that already holds too many values rules the column out at a fraction
    of that.
    """
    import pyarrow.compute as pc

    if column.num_chunks == 0 or pc.count_distinct(column.chunk(0)).as_py() > limit:
        return None
    encoded = column.dictionary_encode()
    distinct = max(len(chunk.dictionary) for chunk in encoded.chunks)
    return encoded if distinct <= limit and distinct * 2 <= rows else None

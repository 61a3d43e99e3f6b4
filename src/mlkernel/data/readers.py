"""Parsing one source into an Arrow table with Arrow's multi-threaded readers.

Arrow reads the file itself (no byte passes through Python). The fast path runs once; only when something is wrong do the slower diagnostics in
:mod:`mlkernel.data.diagnose` run, to name the line. A row too large for the read block
(say a 10 MB field) makes Arrow fail with "straddling object"; we retry with a block
big enough to hold it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mlkernel.data import diagnose
from mlkernel.data.sources import Source, Watch
from mlkernel.errors import UsageError

__all__ = ["BAD_ROW_MODES", "BadRow", "ReadOptions", "ReadResult", "memory_pool", "read_source"]

BAD_ROW_MODES = ("fail", "skip", "quarantine")
BLOCK_SIZE = 4 << 20
MAX_BLOCK = 1 << 30
HEAD_BYTES = 1 << 20  # the rows whose types are inferred before the whole file is parsed
MAX_OPEN_QUOTES = 100  # lines set aside for quotes never closed; past that, the quoting is off
DEFAULT_MAX_CATEGORIES = 1000


@dataclass(frozen=True, slots=True)
class ReadOptions:
    on_bad_rows: str = "fail"
    column_types: dict[str, Any] = field(default_factory=dict)  # name -> Arrow type
    encoding: str = "utf8"
    max_categories: int = DEFAULT_MAX_CATEGORIES
    block_size: int = BLOCK_SIZE

    def key(self) -> dict[str, Any]:
        """What, besides the bytes, decides the stored result (for dedupe)."""
        return {
            "on_bad_rows": self.on_bad_rows,
            "schema": {k: str(v) for k, v in sorted(self.column_types.items())},
            "encoding": self.encoding,
            "max_categories": self.max_categories,
        }


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

    readers = {
        "csv": _read_csv,
        "tsv": _read_csv,
        "ndjson": _read_ndjson,
        "json": _read_json_array,
        "parquet": _read_parquet,
    }
    watch = Watch(source, on_read, count_lines=count_lines) if on_read is not None else None
    block = options.block_size
    while True:
        try:
            table, bad = readers[source.format](source, options, block, watch)
            break
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and block < MAX_BLOCK and block < source.size * 2:
                block *= 16  # a row longer than the block: read again with bigger blocks
                continue
            raise
    if watch is not None:
        watch.done()
    return ReadResult(_normalise(source, table, options), bad)


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
def _input(
    source: Source, watch: Watch | None = None, without: Sequence[diagnose.OpenQuote] = ()
) -> Iterator[Any]:
    """The file as a stream, decompressed natively; less the lines ``without``, if any
    (the bytes then pass through Python on their way, a block at a time)."""
    import pyarrow as pa

    raw = pa.OSFile(str(source.path))
    stream = (
        raw if source.compression is None else pa.CompressedInputStream(raw, source.compression)
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


def _read_csv(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """Parse the file (:func:`_whole_csv`); set aside the lines of quotes never closed.

    A quote that is never closed makes Arrow read the rest of the file into one value or
    one bad row (or, following quotes across blocks, refuse a row longer than a block).
    Only then is the file scanned for such quotes (:func:`diagnose.open_quotes`), so a
    clean file costs no extra pass. Under ``fail`` the first is refused; under ``skip``
    and ``quarantine`` their lines are set aside as bad rows and the file is parsed once
    more without them.
    """
    how = _Pass(block, watch)
    quotes: list[diagnose.OpenQuote] = []
    try:
        table, bad = _whole_csv(source, options, how)
    except _ParseError as exc:
        swallowed = _breaks_lines(exc.bad) or "Empty CSV file" in str(exc)  # by the header?
        quotes = _open_quotes(source, options) if swallowed else []
        if not quotes:
            raise _csv_problem(source, options, exc) from None
    except _QuoteAcrossBlock as exc:
        quotes = _open_quotes(source, options)
        if not quotes:  # a quoted value longer than a block: read_source retries
            raise exc.straddling from None
    else:
        if _breaks_lines(bad) or diagnose.has_line_break(table):
            quotes = _open_quotes(source, options)
    if quotes:
        try:
            table, bad = _csv_table(source, options, replace(how, without=quotes))
        except _ParseError as exc:
            raise _csv_problem(source, options, exc) from None
    if bad:
        bad = diagnose.number_bad_rows(
            source, _delimiter(source), options.encoding, bad, without=quotes
        )
    diagnose.check_utf8(source, table, options)
    unclosed = [BadRow(q.line, q.text, "opens a quote that is never closed") for q in quotes]
    return table, sorted(bad + unclosed, key=lambda b: b.line or 0)


class _QuoteAcrossBlock(Exception):
    """Following quotes, a row did not end within a block: a quote never closed, surely."""

    def __init__(self, straddling: Exception) -> None:
        super().__init__(str(straddling))
        self.straddling = straddling


def _whole_csv(source: Source, options: ReadOptions, how: _Pass) -> tuple[Any, list[BadRow]]:
    """:func:`_csv_table`; again with blocks cut between rows if a cut fell inside a quote.

    Arrow's multi-threaded reader cuts the file into blocks at line breaks, blind to
    quotes. A cut inside a quoted value (a quote never closed, or a quoted line break)
    loses the rest of the block without a word (:func:`_blocks_whole` notices), or fails
    the parse: "out of sync", or a bad row (the value's second half). Then the file is
    parsed again by a chunker that follows quotes, which costs ~30% more, hence only
    then; if that fails too, the first failure stands.
    """
    import pyarrow as pa

    failed: _ParseError | None = None
    try:
        table, bad = _csv_table(source, options, how)
        if _blocks_whole(source, options, how, table):
            return table, bad
    except _ParseError as exc:
        if not exc.bad and "out of sync with chunker" not in str(exc):
            raise
        failed = exc
    try:
        return _csv_table(source, options, replace(how, quoted_breaks=True))
    except _ParseError:
        if failed is None:
            raise
        raise failed from None
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        raise _QuoteAcrossBlock(exc) from None


@dataclass(frozen=True, slots=True)
class _Pass:
    """How one parse reads the file."""

    block: int
    watch: Watch | None = None
    without: Sequence[diagnose.OpenQuote] = ()  # lines not to read
    quoted_breaks: bool = False  # cut blocks only where no quote is open (~30% slower)


def _csv_table(source: Source, options: ReadOptions, how: _Pass) -> tuple[Any, list[BadRow]]:
    """Parse with the types Arrow infers from the first rows; infer throughout if need be.

    Arrow's reader, left to infer, keeps checking every block for a wider type (an int64
    column that turns out to hold "1.5" becomes double) and pays ~50% more for it. Most
    files keep their types, so we infer on the first rows alone (:data:`HEAD_BYTES`, the
    start of the block Arrow infers from) and parse the file with those types. If a later
    value does not fit (the parse fails), or a category column outgrows ``max_categories``
    in some block (where inference would have turned it into text), we parse again letting
    Arrow infer. A parse that succeeds therefore gives what inference gives, at the cost
    of one; tests/data/test_types.py compares the two.
    """
    types = _first_rows_types(source, options, how)
    if types:
        try:
            table, bad = _parse_csv(source, options, {**types, **options.column_types}, how)
        except _ParseError:
            pass  # a value later on needs another type (or the file is bad): infer
        else:
            if _categories_fit(table, types, options.max_categories):
                return table, bad
    return _parse_csv(source, options, options.column_types, how)


def _blocks_whole(source: Source, options: ReadOptions, how: _Pass, table: Any) -> bool:
    """False if Arrow may have dropped the end of a block.

    Arrow's multi-threaded reader cuts the file into blocks at the last line break before
    each multiple of the block size, and parses them apart; a block whose parse ends
    inside a quote (one never closed, or a quoted line break across the cut) loses the
    rest of its rows without a word. So each chunk's last row must be its block's last
    line: those lines are read (a few bytes each), parsed together and compared as text.
    A line that is a bad row is not compared; a file whose offsets are not Arrow's (one
    decompressed, decoded, or read without some lines) is not checked.
    """
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    chunks = [len(c) for c in table.column(0).chunks] if table.num_columns else []
    if (
        len(chunks) < 2
        or how.without
        or how.quoted_breaks
        or source.compression is not None
        or diagnose.codec(options.encoding) != "utf-8"
    ):
        return True
    lines = diagnose.block_last_lines(source, how.block)
    if lines is None or len(lines) != len(chunks) - 1:
        return False
    skipped: set[int] = set()

    def on_invalid(row: Any) -> str:
        skipped.add(row.number - 1)
        return "skip"

    try:
        parsed = pacsv.read_csv(
            io.BytesIO(b"".join(lines)),
            read_options=pacsv.ReadOptions(
                column_names=table.column_names, use_threads=False, block_size=1 << 26
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=_delimiter(source), invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in table.schema}, strings_can_be_null=False
            ),
        )
        checked = [i for i in range(len(chunks) - 1) if i not in skipped]
        if parsed.num_rows != len(checked) or any(chunks[i] == 0 for i in checked):
            return False
        if not checked:
            return True
        ends = list(itertools.accumulate(chunks))
        rows = [ends[i] - 1 for i in checked]
        expected = pa.concat_tables([table.slice(row, 1) for row in rows])  # take() copies
        return all(
            parsed.column(i).cast(pa.string()).equals(expected.column(i).cast(pa.string()))
            for i in range(table.num_columns)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _breaks_lines(bad: list[BadRow]) -> bool:
    return any("\n" in b.text for b in bad)


def _open_quotes(source: Source, options: ReadOptions) -> list[diagnose.OpenQuote]:
    """The lines to set aside for quotes never closed; refuse them under ``fail``."""
    found = diagnose.open_quotes(source, _delimiter(source), options.encoding)
    fail = options.on_bad_rows == "fail"
    quotes = list(itertools.islice(found, 1 if fail else MAX_OPEN_QUOTES + 1))
    if not quotes:
        return []
    first = quotes[0].line
    if fail or first == 1:
        fix = (
            " in the header"
            if first == 1
            else ", or pass --on-bad-rows skip (or quarantine) to set such lines aside"
        )
        raise UsageError(
            f"{source.path}: the quote opened on line {first} is never closed; close it or "
            f'remove the stray "{fix}'
        )
    if len(quotes) > MAX_OPEN_QUOTES:
        raise UsageError(
            f"{source.path}: more than {MAX_OPEN_QUOTES} lines open a quote that is never "
            f"closed (the first is line {first}); fix the file's quoting"
        )
    return quotes


class _ParseError(Exception):
    """Arrow's parse failed (not for want of a bigger block); with the bad rows seen."""

    def __init__(self, message: str, bad: list[BadRow]) -> None:
        super().__init__(message)
        self.bad = bad


def _delimiter(source: Source) -> str:
    return "\t" if source.format == "tsv" else ","


def _csv_options(
    source: Source,
    options: ReadOptions,
    how: _Pass,
    types: dict[str, Any],
    bad: list[BadRow],
    *,
    threads: bool = True,
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    fail = options.on_bad_rows == "fail"

    def on_invalid(row: Any) -> str:
        bad.append(BadRow(row.number, row.text, _field_problem(row)))
        return "error" if fail else "skip"

    read_opts = pacsv.ReadOptions(
        block_size=how.block, use_threads=threads, encoding=options.encoding
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=_delimiter(source),
        invalid_row_handler=on_invalid,
        newlines_in_values=how.quoted_breaks,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types,
        auto_dict_encode=True,
        auto_dict_max_cardinality=options.max_categories,
        strings_can_be_null=False,
    )
    return read_opts, parse_opts, convert_opts


def _parse_csv(
    source: Source, options: ReadOptions, types: dict[str, Any], how: _Pass
) -> tuple[Any, list[BadRow]]:
    """One multi-threaded parse of the whole file.

    Raises :class:`_ParseError`, or ``pyarrow.ArrowInvalid`` for a row longer than the block.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[BadRow] = []
    read_opts, parse_opts, convert_opts = _csv_options(source, options, how, types, bad)
    try:
        with _input(source, how.watch, how.without) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=read_opts,
                parse_options=parse_opts,
                convert_options=convert_opts,
                memory_pool=memory_pool(),
            )
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise  # read_source retries with bigger blocks
        raise _ParseError(str(exc), bad) from None
    return table, bad


def _first_rows_types(source: Source, options: ReadOptions, how: _Pass) -> dict[str, Any]:
    """The types Arrow infers from the file's first rows (columns it cannot tell left out).

    The rows are the start of Arrow's first block, so a type that fits every value of the
    file is the type Arrow's inference settles on. Empty when they do not parse.
    """
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    size = min(how.block, HEAD_BYTES)
    with _input(source, without=how.without) as stream:
        head = stream.read(size)
    if len(head) == size:  # it ends mid-row: keep whole lines
        head = head[: head.rfind(b"\n") + 1]
    bad: list[BadRow] = []
    read_opts, parse_opts, convert_opts = _csv_options(
        source, options, how, options.column_types, bad, threads=False
    )
    try:
        sample = pacsv.read_csv(
            io.BytesIO(head),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )
    except (pa.ArrowInvalid, UnicodeError):
        return {}
    if sample.num_rows == 0 or bad:
        return {}
    return {f.name: f.type for f in sample.schema if not pa.types.is_null(f.type)}


def _categories_fit(table: Any, types: dict[str, Any], limit: int) -> bool:
    """True unless an inferred category column has a block with over ``limit`` values."""
    import pyarrow as pa

    return not any(
        len(chunk.dictionary) > limit
        for name, dtype in types.items()
        if pa.types.is_dictionary(dtype) and name in table.column_names
        for chunk in table.column(name).chunks
    )


def _csv_problem(source: Source, options: ReadOptions, exc: _ParseError) -> UsageError:
    text = str(exc)
    if "Empty CSV file" in text:
        return UsageError(f"{source.path} has no header line; nothing to ingest")
    if exc.bad and options.on_bad_rows == "fail":
        line = diagnose.csv_bad_row_line(source, _delimiter(source), options.encoding)
        where = f"line {line}" if line else "a row"
        return UsageError(
            f"{source.path}: {where} {exc.bad[0].problem}; fix it, or pass "
            "--on-bad-rows skip (or quarantine) to set such rows aside"
        )
    return UsageError(f"{source.path}: {_first_line(text)}; fix the file")


def _field_problem(row: Any) -> str:
    return f"has {row.actual_columns} fields where the header has {row.expected_columns}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "cannot be parsed"


def _read_ndjson(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """Parse with the types Arrow infers from the first lines; infer throughout if need be.

    The plan of :func:`_read_csv`: the scalar types Arrow infers from the first lines
    (:data:`HEAD_BYTES`) are the explicit schema of the parse of the whole file, which
    spares Arrow's reader its per-block inference and promotion (about a tenth of the
    parse of the 1,000,000-line benchmark file; tokenising the JSON is the rest). A later
    value that does not fit (an int64 field holding 2.5) fails that parse, and the file
    is parsed again letting Arrow infer, so a parse that succeeds gives what inference
    gives. Nested and all-null fields are left to inference, and the columns are put back
    in the order their fields first appear. tests/data/test_json.py compares the two.
    """
    declared = _json_types(options.column_types)
    head = _ndjson_head(source, block)
    table = None
    if head is not None and head.types:
        with contextlib.suppress(_ParseError):  # a later value needs another type: infer
            table = _parse_ndjson(source, block, head.types | declared, watch)
    if table is None:
        try:
            table = _parse_ndjson(source, block, declared, watch)
        except _ParseError:
            return _ndjson_fallback(source, options, block)
    if head is not None:
        table = _in_order(table, head.names)
    return _cast(source, table, options.column_types), []


@dataclass(frozen=True, slots=True)
class _Head:
    names: list[str]  # every field of the first lines, in order
    types: dict[str, Any]  # the scalar ones' types


def _json_types(types: dict[str, Any]) -> dict[str, Any]:
    """Declared types as Arrow's JSON reader takes them: it reads no category, so text."""
    import pyarrow as pa

    return {
        name: dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        for name, dtype in types.items()
    }


def _ndjson_head(source: Source, block: int) -> _Head | None:
    """The fields of the file's first lines and the types Arrow infers for them.

    None when those lines do not parse (the whole-file parse will say why).
    """
    import io

    import pyarrow as pa
    import pyarrow.json as pajson

    size = min(block, HEAD_BYTES)
    with _input(source) as stream:
        head = stream.read(size)
    if len(head) == size:  # it ends mid-line: keep whole lines
        head = head[: head.rfind(b"\n") + 1]
    if not head.strip():
        return None
    try:
        sample = pajson.read_json(
            io.BytesIO(head),
            read_options=pajson.ReadOptions(block_size=len(head), use_threads=False),
        )
    except pa.ArrowInvalid:
        return None
    scalar = (
        f for f in sample.schema if not (pa.types.is_null(f.type) or pa.types.is_nested(f.type))
    )
    return _Head(sample.schema.names, {f.name: f.type for f in scalar})


def _parse_ndjson(source: Source, block: int, types: dict[str, Any], watch: Watch | None) -> Any:
    """One multi-threaded parse of the whole file; fields not in ``types`` are inferred.

    Raises :class:`_ParseError`, or ``pyarrow.ArrowInvalid`` for a line longer than the block.
    """
    import pyarrow as pa
    import pyarrow.json as pajson

    parse_opts = pajson.ParseOptions(
        explicit_schema=pa.schema(list(types.items())) if types else None,
        unexpected_field_behavior="infer",
    )
    read_opts = pajson.ReadOptions(block_size=block, use_threads=True)
    try:
        with _input(source, watch) as stream:
            return pajson.read_json(
                stream, read_options=read_opts, parse_options=parse_opts, memory_pool=memory_pool()
            )
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise  # read_source retries with bigger blocks
        raise _ParseError(str(exc), []) from None


def _ndjson_fallback(source: Source, options: ReadOptions, block: int) -> tuple[Any, list[BadRow]]:
    """The parse failed: name the line, or set bad lines aside; read declared fields as text.

    A field whose JSON type changes from line to line (1, then "x") fails Arrow's reader
    even when its type is declared; here its values are written as text (1 becomes "1")
    and then converted to the declared type, as a CSV column is.
    """
    import io

    import pyarrow as pa
    import pyarrow.json as pajson

    lines = diagnose.split_ndjson(
        source, keep_bad=options.on_bad_rows != "fail", as_text=frozenset(options.column_types)
    )
    if not lines.good:
        raise UsageError(f"{source.path}: no line is a JSON object; nothing to ingest")
    text = [(name, pa.string()) for name in options.column_types]
    try:
        table = pajson.read_json(
            io.BytesIO(lines.good),
            read_options=pajson.ReadOptions(block_size=block),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(text) if text else None,
                unexpected_field_behavior="infer",
            ),
            memory_pool=memory_pool(),
        )
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise
        raise UsageError(f"{source.path}: {_first_line(str(exc))}; fix the file") from None
    table = _in_order(table, lines.names)
    return _cast(source, table, options.column_types), lines.bad


def _in_order(table: Any, names: list[str]) -> Any:
    """``table`` with the columns in ``names`` first, in that order (an explicit schema's
    fields come first in Arrow's output, not where the file has them)."""
    present = set(table.column_names)
    first = [n for n in dict.fromkeys(names) if n in present]
    rest = [n for n in table.column_names if n not in set(first)]
    order = first + rest
    return table if order == table.column_names else table.select(order)


def _read_json_array(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """A JSON array of objects, by polars (Arrow reads only one object per line).

    Polars reads a field that holds numbers and strings as text; one that it cannot read
    (numbers and arrays) is refused unless its type is declared: then its values are
    written as text (1 becomes "1") and converted to the declared type.
    """
    import io

    import polars as pl

    with _input(source, watch) as stream:
        data = stream.read()
    try:
        frame = pl.read_json(io.BytesIO(data), infer_schema_length=None)
    except Exception as exc:  # polars raises several error types for bad JSON
        declared = set(options.column_types)
        text = diagnose.json_array_as_text(source, data, str(exc), declared)
        try:
            frame = pl.read_json(
                io.BytesIO(text),
                infer_schema_length=None,
                schema_overrides={name: pl.String for name in declared},
            )
        except Exception as again:
            raise UsageError(f"{source.path}: {_first_line(str(again))}; fix the file") from None
    table = frame.to_arrow()
    if options.column_types:
        table = _cast(source, table, options.column_types)
    return table, []


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
        table = _cast(source, table, options.column_types)
    return table, []


def _cast(source: Source, table: Any, types: dict[str, Any]) -> Any:
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
                f"({_first_line(str(exc))}); fix the value, or declare another type in the "
                "schema file"
            ) from None
        table = table.set_column(index, pa.field(name, dtype), column)
    return table


def _normalise(source: Source, table: Any, options: ReadOptions) -> Any:
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

"""NDJSON (Arrow's multi-threaded reader, with types from the first lines) and JSON arrays
(their records written one per line, then read as NDJSON); a field whose JSON type changes
is read as text when its type is declared."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlkernel.data import diagnose, infer, readers
from mlkernel.data.readers import (
    BadRow,
    ParseError,
    ReadOptions,
    cast_columns,
    first_line,
    memory_pool,
    open_input,
)
from mlkernel.data.sources import Source, Watch
from mlkernel.errors import UsageError

__all__ = ["read_json_array", "read_ndjson"]


def read_ndjson(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """Parse with the types Arrow infers from the first lines; infer throughout if need be.

    The plan of :func:`mlkernel.data.csv_reader.read_csv`: the scalar types Arrow infers
    from the first lines (:data:`readers.HEAD_BYTES`) are the explicit schema of the parse
    of the whole file, which spares Arrow's reader its per-block inference and promotion:
    up to a tenth of the parse of the 1,000,000-line benchmark file (best of 20), as
    tokenising the JSON is most of the work; the first lines' own parse costs 20-30 ms of
    that back. A later value that does not fit (an int64 field holding 2.5) fails that
    parse, and the file is parsed again letting Arrow infer, so a parse that succeeds
    gives what inference gives. Nested and all-null fields are left to inference, and the
    columns are put back in the order their fields first appear. tests/data/test_json.py
    compares the two.
    """
    declared = _json_types(options.column_types)
    head = _ndjson_head(source, block)
    table = None
    types = declared
    if head is not None and head.types:
        with contextlib.suppress(ParseError):  # a later value needs another type: infer
            types = head.types | declared
            table = _parse_ndjson(source, block, types, watch)
    if table is None:
        try:
            types = declared
            table = _parse_ndjson(source, block, types, watch)
        except ParseError:
            return _ndjson_fallback(source, options, block)

    def parse(again: dict[str, Any]) -> Any:
        return _parse_ndjson(source, block, again, None)

    table = _typed_after(source, table, parse, types, frozenset(declared))
    if head is not None:
        table = _in_order(table, head.names)
    return cast_columns(source, table, options.column_types), []


def _typed_after(
    source: Source,
    table: Any,
    parse: Callable[[dict[str, Any]], Any],
    types: dict[str, Any],
    declared: frozenset[str],
) -> Any:
    """The parsed ``table`` with Arrow's own timestamp inference undone and big integers
    made exact, parsing again (``parse(types)``) only where needed.

    Arrow's JSON reader reads some timestamp forms and not others (and drops a zone);
    those fields are read again as text, for :func:`infer.text_dates` to read as every
    format's dates are read. A float field holding a value at or beyond 2**53 is read
    again as decimal128(38, 0): if every value is whole it is kept exact
    (:func:`infer.narrow_decimal`), else it stays a float field.
    """
    import pyarrow as pa

    stamps = [
        f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.name not in declared
    ]
    if stamps:
        types = types | {name: pa.string() for name in stamps}
        table = parse(types)
    suspects = infer.inexact_floats(table, declared)
    if not suspects:
        return table
    exact: dict[str, Any] = {}
    decimal = pa.decimal128(infer.MAX_DIGITS, 0)
    try:
        again = parse(types | {name: decimal for name in suspects})
        exact = {name: again.column(name) for name in suspects}
    except ParseError:  # some field holds a fraction: find which, one at a time
        for name in suspects:
            with contextlib.suppress(ParseError):
                exact[name] = parse(types | {name: decimal}).column(name)
    for name in suspects:
        if name not in exact:
            _no_long_integer(source, table, name)
            continue
        column = infer.narrow_decimal(exact[name])
        table = table.set_column(
            table.column_names.index(name), pa.field(name, column.type), column
        )
    return table


def _no_long_integer(source: Source, table: Any, name: str) -> None:
    """Refuse a float field that holds an integer of more than 38 digits (a double would
    round it); fields with values below 1e38 cannot, and are not read again."""
    import pyarrow.compute as pc

    if pc.max(pc.abs(table.column(name))).as_py() < 10**infer.MAX_DIGITS:
        return
    for raw in diagnose.lines(source):
        with contextlib.suppress(ValueError, RecursionError):
            record = json.loads(raw) if raw.strip() else None
            value = record.get(name) if isinstance(record, dict) else None
            if type(value) is int and len(str(abs(value))) > infer.MAX_DIGITS:
                raise infer.too_many_digits(source.path, name, value)


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

    size = min(block, readers.HEAD_BYTES)
    with open_input(source) as stream:
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
    # Timestamps are read as text, then as every format's are (:func:`infer.text_dates`).
    return _Head(
        sample.schema.names,
        {f.name: pa.string() if pa.types.is_timestamp(f.type) else f.type for f in scalar},
    )


def _parse_ndjson(source: Source, block: int, types: dict[str, Any], watch: Watch | None) -> Any:
    """One multi-threaded parse of the whole file; fields not in ``types`` are inferred.

    Raises :class:`ParseError`, or ``pyarrow.ArrowInvalid`` for a line longer than the block.
    """
    import pyarrow as pa
    import pyarrow.json as pajson

    parse_opts = pajson.ParseOptions(
        explicit_schema=pa.schema(list(types.items())) if types else None,
        unexpected_field_behavior="infer",
    )
    read_opts = pajson.ReadOptions(block_size=block, use_threads=True)
    try:
        with open_input(source, watch) as stream:
            return pajson.read_json(
                stream, read_options=read_opts, parse_options=parse_opts, memory_pool=memory_pool()
            )
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise  # read_source retries with bigger blocks
        raise ParseError(str(exc), []) from None


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
        source,
        keep_bad=options.on_bad_rows != "fail",
        as_text=frozenset(options.column_types),
        null_values=options.null_values,
    )
    if not lines.good:
        unit = "record" if source.format == "json" else "line"
        raise UsageError(f"{source.path}: no {unit} is a JSON object; nothing to ingest")
    text = {name: pa.string() for name in options.column_types}

    def parse(types: dict[str, Any]) -> Any:
        try:
            return pajson.read_json(
                io.BytesIO(lines.good),
                read_options=pajson.ReadOptions(block_size=block),
                parse_options=pajson.ParseOptions(
                    explicit_schema=pa.schema(list(types.items())) if types else None,
                    unexpected_field_behavior="infer",
                ),
                memory_pool=memory_pool(),
            )
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc):
                raise
            raise ParseError(str(exc), []) from None

    try:
        table = _typed_after(source, parse(text), parse, text, frozenset(text))
    except ParseError as exc:
        raise UsageError(f"{source.path}: {first_line(str(exc))}; fix the file") from None
    table = _in_order(table, lines.names)
    return cast_columns(source, table, options.column_types), lines.bad


def _in_order(table: Any, names: list[str]) -> Any:
    """``table`` with the columns in ``names`` first, in that order (an explicit schema's
    fields come first in Arrow's output, not where the file has them)."""
    present = set(table.column_names)
    first = [n for n in dict.fromkeys(names) if n in present]
    rest = [n for n in table.column_names if n not in set(first)]
    order = first + rest
    return table if order == table.column_names else table.select(order)


def read_json_array(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """A JSON array of objects: its records written one per line, then read as NDJSON.

    So both JSON forms are read by one reader, with the same types, null tokens, dates,
    exact integers, NaN (read as a float NaN, as in NDJSON) and refusals (a key given
    twice in one object; a field whose type changes). Python's ``json`` splits the array
    (Arrow reads only one object per line); messages number the records from 1.
    """
    with open_input(source, watch) as stream:
        data = stream.read()
    records = diagnose.json_array_records(source, data)
    inner = dataclasses.replace(source, data=records, compression=None)
    return read_ndjson(inner, options, block, None)

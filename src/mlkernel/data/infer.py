"""Types decided after the parse, the same way for every text format.

The readers' own inference differs by format (Arrow's CSV reader reads ISO dates, its
JSON reader reads some timestamps and not others, neither reads ``2012/01/01``), and
both turn an integer beyond int64 into a float, rounding it. So, after each parse:

- :func:`missing_text`: JSON string values that are null tokens become null (Arrow's
  CSV reader does this itself, with the same tokens).
- :func:`text_dates`: a text column whose every value is one date or timestamp form
  becomes a date or timestamp column (:data:`DATE_FORMS`).
- :func:`inexact_floats` names the float columns that may hold integers a float
  rounded (a value at or beyond 2**53); only then are those columns read again as text
  (CSV) or as decimals (JSON) and :func:`exact_integers` keeps them exact.

Each is vectorised (Arrow compute over whole columns) and does nothing for a column
that is not a candidate: one value of each text column is looked at in Python.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from typing import Any

from mlkernel.errors import UsageError

__all__ = [
    "DATE_FORMS",
    "exact_integers",
    "inexact_floats",
    "missing_text",
    "narrow_decimal",
    "text_dates",
]

EXACT_FLOAT = 2**53  # every integer below this is exact in a double
MAX_DIGITS = 38  # decimal128's precision

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}\S*)?\Z")  # Arrow's ISO 8601 parser decides
_SLASH_DATE = re.compile(r"\d{4}/\d{1,2}/\d{1,2}\Z")
_SLASH_TIME = re.compile(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}(:\d{2})?\Z")

# The forms a text column is read as a date or timestamp in, in words (docs/datasets.md).
DATE_FORMS = (
    "YYYY-MM-DD (a date)",
    "YYYY-MM-DD HH:MM[:SS[.fraction]], with T or a space, optionally Z or +HH:MM "
    "(a timestamp; with a zone, in UTC)",
    "YYYY/MM/DD (a date)",
    "YYYY/MM/DD HH:MM[:SS] (a timestamp)",
)


def missing_text(table: Any, tokens: Sequence[str]) -> Any:
    """``table`` with every top-level text value that is one of ``tokens`` made null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not tokens:
        return table
    value_set = pa.array(list(tokens), pa.string())
    for i, field in enumerate(table.schema):
        dtype = field.type
        if pa.types.is_dictionary(dtype) and pa.types.is_string(dtype.value_type):
            chunks = []
            for chunk in table.column(i).chunks:
                hit = pc.is_in(chunk.dictionary, value_set=value_set)
                if pc.any(hit).as_py():
                    codes = pc.indices_nonzero(hit).cast(chunk.indices.type)
                    hit_rows = pc.is_in(chunk.indices, value_set=codes)
                    indices = pc.if_else(
                        hit_rows, pa.scalar(None, chunk.indices.type), chunk.indices
                    )
                    chunks.append(pa.DictionaryArray.from_arrays(indices, chunk.dictionary))
                else:
                    chunks.append(chunk)
            column = pa.chunked_array(chunks, dtype)
        elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            hit = pc.is_in(table.column(i), value_set=value_set.cast(dtype))
            if not pc.any(hit).as_py():
                continue
            column = pc.if_else(hit, pa.scalar(None, dtype), table.column(i))
        else:
            continue
        table = table.set_column(i, field, column)
    return table


def text_dates(table: Any, skip: Collection[str]) -> Any:
    """``table`` with each text column (not in ``skip``) whose every value parses in one
    of :data:`DATE_FORMS` read as a date or timestamp column."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if field.name in skip:
            continue
        dtype = field.type
        values = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        if not (pa.types.is_string(values) or pa.types.is_large_string(values)):
            continue
        column = table.column(i)
        sample = _first_value(column)
        if sample is None:
            continue
        converted = _as_dates(column, sample)
        if converted is not None:
            table = table.set_column(i, pa.field(field.name, converted.type), converted)
    return table


def _first_value(column: Any) -> str | None:
    for chunk in column.chunks:
        if chunk.null_count == len(chunk):
            continue
        for start in range(0, len(chunk), 64):
            for value in chunk.slice(start, 64).to_pylist():
                if value is not None:
                    return str(value)
    return None


def _as_dates(column: Any, sample: str) -> Any | None:
    """``column`` (text) as dates or timestamps in the form ``sample`` has; None if a value
    does not parse in it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    attempts: list[Any]
    if _ISO.match(sample):
        attempts = [
            lambda a, t=t: a.cast(t)
            for t in (
                pa.date32(),
                pa.timestamp("s"),
                pa.timestamp("ns"),
                pa.timestamp("s", "UTC"),
                pa.timestamp("ns", "UTC"),
            )
        ]
    elif _SLASH_DATE.match(sample):
        attempts = [lambda a: pc.strptime(a, "%Y/%m/%d", "s").cast(pa.date32())]
    elif _SLASH_TIME.match(sample):
        attempts = [
            lambda a, f=f: pc.strptime(a, f, "s") for f in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
        ]
    else:
        return None
    for attempt in attempts:
        try:
            return _map_values(column, attempt)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _map_values(column: Any, convert: Any) -> Any:
    """``convert`` applied to a text column's values (to a category column's dictionary,
    then spread by its codes)."""
    import pyarrow as pa

    chunks = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunks.append(convert(chunk.dictionary).take(chunk.indices))
        else:
            chunks.append(convert(chunk))
    if not chunks:
        return None
    return pa.chunked_array(chunks, chunks[0].type)


def inexact_floats(table: Any, skip: Collection[str]) -> list[str]:
    """The float columns (not in ``skip``) holding a value a double may have rounded.

    The values are read in place, as NumPy views of Arrow's buffers: four times faster
    than Arrow's ``min_max``, which took 9% of a CSV parse. A null's slot holds whatever
    the reader left there; a large one only costs the column a second look.
    """
    import pyarrow as pa

    found = []
    for field in table.schema:
        if field.name in skip or not pa.types.is_floating(field.type):
            continue
        chunks = table.column(field.name).chunks
        if any(_magnitude(chunk) >= EXACT_FLOAT for chunk in chunks):
            found.append(field.name)
    return found


def _magnitude(chunk: Any) -> float:
    """The largest absolute value in a float array's buffer (NaN skipped; 0 if none)."""
    import numpy as np

    if len(chunk) == 0:
        return 0.0
    dtype = np.dtype(chunk.type.to_pandas_dtype())
    values = np.frombuffer(
        chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
    )
    high, low = values.max(), values.min()
    if np.isnan(high) or np.isnan(low):  # NaN wins max and min: look again without it
        high, low = np.fmax.reduce(values), np.fmin.reduce(values)
    biggest = max(float(-low), float(high))
    return 0.0 if math.isnan(biggest) else biggest


def exact_integers(path: object, name: str, text: Any) -> Any | None:
    """The text column ``text`` as exact integers if every value is one (``-?[0-9]+``);
    None if some value is not (the column is a float column).

    int64 where every value fits, else uint64, else decimal128(38, 0); an integer of more
    than 38 digits is refused, naming it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    is_integer = pc.match_substring_regex(text, r"^-?[0-9]+$")
    if is_integer.null_count == len(is_integer) or not pc.all(is_integer).as_py():
        return None
    digits = pc.utf8_length(pc.replace_substring_regex(text, r"^-?0*", ""))
    if pc.max(digits).as_py() > MAX_DIGITS:
        value = text.filter(pc.greater(digits, MAX_DIGITS))[0].as_py()
        raise too_many_digits(path, name, value)
    for dtype in (pa.int64(), pa.uint64()):
        try:
            return text.cast(dtype)
        except pa.ArrowInvalid:
            continue
    return text.cast(pa.decimal128(MAX_DIGITS, 0))


def narrow_decimal(column: Any) -> Any:
    """A decimal128(38, 0) column as int64 or uint64 where every value fits."""
    import pyarrow as pa

    for dtype in (pa.int64(), pa.uint64()):
        try:
            return column.cast(dtype)
        except pa.ArrowInvalid:
            continue
    return column


def too_many_digits(path: object, name: str, value: object) -> UsageError:
    shown = str(value) if len(str(value)) <= 60 else f"{str(value)[:57]}..."
    return UsageError(
        f"{path}: column {name!r} holds the integer {shown}, longer than the {MAX_DIGITS} "
        "digits a dataset keeps exactly; declare the column as string with --schema "
        f'(e.g. {{"{name}": "string"}})'
    )

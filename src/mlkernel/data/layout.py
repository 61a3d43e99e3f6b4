"""Opening a stored version in the layout the caller declares.

``columns``: the Arrow IPC object, memory-mapped; the returned table's buffers point into
the page cache, so opening costs no copy and no parse. ``rows``: a C-contiguous matrix of
the numeric columns (categories as their codes, booleans as 0/1, dates and timestamps as
seconds since the epoch), built once per version and dtype into ``.mlkernel/cache/data``
as a ``.npy`` file that later opens memory-mapped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkernel.data.storage import sweep, temp_path
from mlkernel.errors import IntegrityError, UsageError

__all__ = ["Rows", "damaged", "iter_batches", "map_table", "rows_matrix", "select"]

ROW_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Rows:
    """A row-major matrix and what its columns mean.

    ``encodings`` maps each categorical column to its categories: code ``i`` in the matrix
    stands for ``encodings[column][i]`` (-1... is never written; nulls are NaN).
    """

    matrix: Any  # numpy.ndarray, C-contiguous, memory-mapped
    columns: list[str]
    encodings: dict[str, list[Any]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # non-numeric columns left out

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.matrix.shape)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        import numpy as np

        return np.asarray(self.matrix, dtype=dtype)


def map_table(path: Path) -> Any:
    """The table in an Arrow IPC file, memory-mapped (zero copy)."""
    import pyarrow as pa

    try:
        return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    except pa.ArrowInvalid as exc:  # a dataset is read without re-hashing: say what broke
        raise damaged(path, exc) from None


def damaged(path: Path, exc: Exception) -> IntegrityError:
    """A one-line error for a stored Arrow file that cannot be read (altered on disk)."""
    return IntegrityError(
        f"the stored Arrow file {path} cannot be read ({exc}): it was altered or cut short "
        "on disk; run `mlk verify` to list the versions affected, then restore the object "
        "from a backup or ingest the data again"
    )


def select(table: Any, columns: Sequence[str] | None, row_filter: Any, ref: str) -> Any:
    import difflib

    if columns is not None:
        for name in columns:
            if name not in table.column_names:
                close = difflib.get_close_matches(name, table.column_names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UsageError(
                    f"{ref} has no column {name!r}; {hint}run `mlk data show {ref}` for its schema"
                )
        table = table.select(list(columns))
    if row_filter is not None:
        table = table.filter(_expression(row_filter))
    return table


def _expression(row_filter: Any) -> Any:
    """A pyarrow expression, or DNF tuples like ``[("age", ">", 30)]`` (as in Parquet)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if isinstance(row_filter, pc.Expression):
        return row_filter
    if isinstance(row_filter, list | tuple):
        try:
            return pq.filters_to_expression(list(row_filter))
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"cannot read filter {row_filter!r} ({exc}); pass a pyarrow expression or "
                "tuples like [('age', '>', 30)]"
            ) from None
    raise UsageError(
        "filter must be a pyarrow.compute expression or tuples like [('age', '>', 30)]"
    )


def _numeric(dtype: Any) -> str | None:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return "category"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "number"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "time"
    return None


def _as_float(column: Any, kind: str, dtype: Any) -> Any:
    """One column of the matrix, as a NumPy vector of ``dtype``, nulls as NaN."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "category":
        column = pa.chunked_array([c.indices for c in column.chunks], type=column.type.index_type)
    elif kind == "bool":
        column = column.cast(pa.int8())
    elif kind == "time":
        if pa.types.is_date(column.type):
            column = column.cast(pa.date32()).cast(pa.int32())
            return _fill(column, dtype) * 86400.0
        unit = column.type.unit
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
        column = column.cast(pa.int64())
        return _fill(column, dtype) / np.asarray(scale, dtype=dtype)
    if column.null_count:
        column = pc.cast(column, pa.float64())
    return _fill(column, dtype)


def _fill(column: Any, dtype: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    if column.null_count:
        column = column.cast(pa.float64())
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)
    return np.asarray(column.to_numpy(), dtype=dtype)


def rows_matrix(
    cache: Path, digest: str, table: Any, dtype_name: str, columns: Sequence[str] | None
) -> Rows:
    """The cached row-major matrix of ``table``'s numeric columns (built if missing)."""
    import numpy as np

    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        raise UsageError(f"unknown dtype {dtype_name!r}; use float64 or float32") from None
    if dtype.kind != "f":
        raise UsageError(f"dtype {dtype_name!r} cannot hold NaN for nulls; use float64 or float32")
    picked = table if columns is None else table.select(list(columns))
    kinds = {f.name: _numeric(f.type) for f in picked.schema}
    names = [n for n, k in kinds.items() if k is not None]
    dropped = [n for n, k in kinds.items() if k is None]
    if columns is not None and dropped:
        raise UsageError(
            f"column {dropped[0]!r} is not numeric or categorical; leave it out of columns="
        )
    if not names:
        raise UsageError("the dataset has no numeric or categorical column for layout='rows'")
    key = f"{digest}-{dtype.name}-" + _columns_key(names, table.column_names)
    npy = cache / f"{key}.npy"
    meta = cache / f"{key}.json"
    encodings = {
        n: picked.column(n).chunk(0).dictionary.to_pylist() if picked.column(n).num_chunks else []
        for n in names
        if kinds[n] == "category"
    }
    if not (npy.exists() and meta.exists()):
        _build(cache, npy, meta, picked, names, kinds, dtype, encodings)
    matrix = np.load(npy, mmap_mode="r")
    return Rows(matrix, names, encodings, dropped)


def _columns_key(names: list[str], all_names: list[str]) -> str:
    import hashlib

    if names == [n for n in all_names if n in set(names)] and len(names) == len(all_names):
        return "all"
    return hashlib.sha256("\0".join(names).encode()).hexdigest()[:16]


def _build(
    cache: Path,
    npy: Path,
    meta: Path,
    table: Any,
    names: list[str],
    kinds: dict[str, str | None],
    dtype: Any,
    encodings: dict[str, list[Any]],
) -> None:
    """Write the matrix block by block (cache friendly) to a temp file, then rename."""
    import numpy as np

    sweep(cache)
    rows, width = table.num_rows, len(names)
    tmp = temp_path(cache, "npy")
    tmp_meta = temp_path(cache, "json")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(rows, width))
        for start in range(0, rows, ROW_BLOCK):
            block = table.slice(start, ROW_BLOCK)
            for j, name in enumerate(names):
                kind = kinds[name]
                assert kind is not None
                out[start : start + block.num_rows, j] = _as_float(block.column(name), kind, dtype)
        out.flush()
        del out
        tmp_meta.write_text(json.dumps({"columns": names, "encodings": encodings}))
        os.replace(tmp_meta, meta)
        os.replace(tmp, npy)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)


def iter_batches(table: Any, rows: int) -> Iterator[Any]:
    """``table`` in record batches of ``rows`` rows (the last may be shorter)."""
    if rows < 1:
        raise UsageError(f"rows must be at least 1, got {rows}")
    for start in range(0, table.num_rows, rows):
        piece = table.slice(start, rows)
        batches = piece.to_batches()
        if len(batches) == 1:
            yield batches[0]
        else:
            yield piece.combine_chunks().to_batches()[0]

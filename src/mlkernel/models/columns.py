"""Columns from what callers hold: pyarrow tables, pandas and polars frames, mappings.

Every reader of model input (signatures, loaded models, the server's codecs) turns its
data into one form, a dict of column name -> 1-D NumPy array, here. The library a value
comes from is told by its type's module, so nothing is imported that the caller did not
already use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlkernel.errors import UsageError

__all__ = ["as_array", "root_module", "to_columns"]


def root_module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def to_columns(data: Any) -> dict[str, Any]:
    """Column name -> 1-D NumPy array, from a pyarrow Table or RecordBatch, a pandas or
    polars DataFrame, or a mapping of names to sequences. Categorical columns become
    object arrays of str; nulls become NaN (numbers) or None (text)."""
    import numpy as np

    root = root_module(data)
    if root == "pyarrow":
        return {name: _arrow_to_numpy(data.column(name)) for name in data.column_names}
    if root == "pandas" and hasattr(data, "columns"):
        out: dict[str, Any] = {}
        for name in data.columns:
            series = data[name]
            if str(series.dtype) == "category":
                out[str(name)] = series.astype(object).where(series.notna(), None).to_numpy()
            else:
                out[str(name)] = series.to_numpy()
        return out
    if root == "polars" and hasattr(data, "columns"):
        return {name: _polars_to_numpy(data[name]) for name in data.columns}
    if isinstance(data, Mapping):
        return {str(k): as_array(v) for k, v in data.items()}
    if isinstance(data, np.ndarray):
        raise UsageError(
            "a NumPy matrix has no column names; pass a table, a DataFrame or a mapping of "
            "column names to values"
        )
    raise UsageError(
        f"cannot read columns from a {type(data).__name__}; pass a pyarrow Table, a pandas "
        "or polars DataFrame, or a mapping of column names to values"
    )


def as_array(values: Any) -> Any:
    import numpy as np

    root = root_module(values)
    if root == "pyarrow":
        return _arrow_to_numpy(values)
    if root == "polars":
        return _polars_to_numpy(values)
    if root == "pandas":
        return values.to_numpy()
    if isinstance(values, np.ndarray):
        return values
    values = list(values) if not isinstance(values, (list, tuple)) else values
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged nested lists
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    if arr.dtype.kind in "US" and arr.ndim == 1:
        return np.array(values, dtype=object)  # text as Python str objects
    return arr


def _arrow_to_numpy(column: Any) -> Any:
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_numpy(zero_copy_only=False).astype(object)
    return column.to_numpy(zero_copy_only=False)


def _polars_to_numpy(series: Any) -> Any:
    import numpy as np

    text = str(series.dtype)
    if text in ("String", "Utf8", "Categorical") or text.startswith("Enum"):
        return np.array(series.cast(str).to_list(), dtype=object)
    return series.to_numpy()

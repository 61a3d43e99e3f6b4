"""Input signatures: the ordered, typed columns a model takes, and what it returns.

A :class:`Signature` is what a model version promises its callers. It is inferred from
the training data (:func:`infer_signature`), stored as JSON with the version
(:meth:`Signature.to_dict`), checked against each request (:meth:`Signature.check`,
:meth:`Signature.coerce`) and compared between versions before an alias moves
(:func:`compatible`).

Column types are deliberately few, the ones a JSON caller can send:

====== ===================================== ==========================================
type   accepts (coercion)                    missing values
====== ===================================== ==========================================
int    integers; integral floats; int text   never
float  integers and floats; number text      NaN (JSON null)
bool   true/false; 0/1; "true"/"false"/0/1   never
string text                                  None (JSON null)
category text (a closed set at training)     None (JSON null)
====== ===================================== ==========================================

An *optional* input column may be left out by a caller; it is then filled with missing
values, so only float, string and category columns can be optional. Columns a caller
sends that the signature does not name are ignored. The order of the columns is part of
the signature: a caller that sends one 2-D tensor (Open Inference Protocol) sends its
columns in this order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlkernel.errors import UsageError
from mlkernel.models.columns import as_array, root_module, to_columns

__all__ = [
    "TYPES",
    "Column",
    "ColumnType",
    "Signature",
    "compatible",
    "infer_signature",
    "to_columns",
]

ColumnType = Literal["int", "float", "bool", "string", "category"]
TYPES: tuple[ColumnType, ...] = ("int", "float", "bool", "string", "category")
_NULLABLE = frozenset({"float", "string", "category"})
# A caller of the old type keeps working with the new one (old -> the new types it fits).
_WIDENS: dict[str, frozenset[str]] = {
    "int": frozenset({"int", "float"}),
    "float": frozenset({"float"}),
    "bool": frozenset({"bool"}),
    "string": frozenset({"string", "category"}),
    "category": frozenset({"string", "category"}),
}
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_SHOWN = 3  # bad values quoted in a problem


@dataclass(frozen=True)
class Column:
    """One named, typed column of a signature."""

    name: str
    type: ColumnType
    optional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UsageError(f"a signature column needs a non-empty name, not {self.name!r}")
        if self.type not in TYPES:
            raise UsageError(
                f"column {self.name!r} has type {self.type!r}; use one of {', '.join(TYPES)}"
            )
        if self.optional and self.type not in _NULLABLE:
            raise UsageError(
                f"column {self.name!r} is {self.type} and cannot be optional (a missing value "
                "has no int or bool form); make it float, or required"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.optional:
            out["optional"] = True
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Column:
        if not isinstance(data, Mapping) or "name" not in data or "type" not in data:
            raise UsageError(f"a signature column is {{'name': ..., 'type': ...}}, not {data!r}")
        return cls(str(data["name"]), data["type"], bool(data.get("optional", False)))


@dataclass(frozen=True)
class Signature:
    """Ordered input columns and, when known, the output columns."""

    inputs: tuple[Column, ...]
    outputs: tuple[Column, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        for role, columns in (("input", self.inputs), ("output", self.outputs)):
            seen: set[str] = set()
            for column in columns:
                if column.name in seen:
                    raise UsageError(f"the signature names {role} column {column.name!r} twice")
                seen.add(column.name)
        if not self.inputs:
            raise UsageError("a signature needs at least one input column")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def column(self, name: str) -> Column:
        for column in self.inputs:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": [c.to_dict() for c in self.inputs]}
        if self.outputs:
            out["outputs"] = [c.to_dict() for c in self.outputs]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise UsageError("a signature is {'inputs': [{'name': ..., 'type': ...}, ...]}")
        outputs = data.get("outputs") or []
        if not isinstance(outputs, list):
            raise UsageError("a signature's 'outputs' is a list of {'name': ..., 'type': ...}")
        return cls(
            tuple(Column.from_dict(c) for c in data["inputs"]),
            tuple(Column.from_dict(c) for c in outputs),
        )

    def check(self, data: Any) -> list[str]:
        """Every problem that stops ``data`` from being this signature's input, each
        naming its column; empty when :meth:`coerce` will succeed."""
        return self._convert(data)[1]

    def coerce(self, data: Any) -> dict[str, Any]:
        """``data``'s columns as NumPy arrays of the signature's types, in its order.

        int -> int64, float -> float64, bool -> bool, string and category -> object
        arrays of str (None where missing). Raises :class:`UsageError` naming every bad
        column."""
        converted, problems = self._convert(data)
        if problems:
            raise UsageError("; ".join(problems))
        return converted

    def _convert(self, data: Any) -> tuple[dict[str, Any], list[str]]:
        import numpy as np

        columns = to_columns(data)
        converted: dict[str, Any] = {}
        problems: list[str] = []
        # The row count most of the signature's columns agree on (a tie: the first's), so
        # that the odd one out is the column named.
        lengths = [len(columns[n]) for n in self.names if n in columns]
        rows = max(lengths, key=lengths.count) if lengths else None
        for column in self.inputs:
            if column.name not in columns:
                if column.optional and rows is not None:
                    fill = np.nan if column.type == "float" else None
                    dtype = np.float64 if column.type == "float" else object
                    converted[column.name] = np.full(rows, fill, dtype=dtype)
                else:
                    problems.append(f"missing column {column.name!r} ({column.type})")
                continue
            values = columns[column.name]
            if rows is not None and len(values) != rows:
                problems.append(
                    f"column {column.name!r} has {len(values)} values; the others have {rows}"
                )
                continue
            array, problem = _coerce(values, column)
            if problem:
                problems.append(problem)
            else:
                converted[column.name] = array
        return converted, problems


def _coerce(values: Any, column: Column) -> tuple[Any, str | None]:
    """``values`` (a 1-D NumPy array) as ``column``'s type, or the problem."""
    import numpy as np

    name, kind = column.name, column.type
    arr = np.asarray(values)
    if arr.ndim != 1:
        return None, f"column {name!r} must be 1-D (one value per row), not shape {arr.shape}"
    dk = arr.dtype.kind
    if kind == "float":
        if dk in "iuf":
            return arr.astype(np.float64, copy=False), None
        if dk == "b":
            return None, f"column {name!r} is bool; expected float (send numbers)"
        return _elementwise(arr, column, _to_float)
    if kind == "int":
        if dk in "iu":
            return arr.astype(np.int64, copy=False), None
        if dk == "f":
            finite = np.isfinite(arr)
            if not finite.all():
                return None, f"column {name!r} has missing values; int columns cannot be missing"
            if (arr != np.round(arr)).any():
                bad = arr[arr != np.round(arr)][:_SHOWN].tolist()
                return None, f"column {name!r} is int; values {bad} are not whole numbers"
            return arr.astype(np.int64), None
        if dk == "b":
            return None, f"column {name!r} is bool; expected int (send numbers)"
        return _elementwise(arr, column, _to_int)
    if kind == "bool":
        if dk == "b":
            return arr, None
        return _elementwise(arr, column, _to_bool)
    # string / category
    if dk in "US":
        return arr.astype(object), None
    if dk in "iufb":
        return None, f"column {name!r} is {_kind_word(dk)}; expected {kind} (send text)"
    return _elementwise(arr, column, _to_text)


def _elementwise(arr: Any, column: Column, convert: Any) -> tuple[Any, str | None]:
    import numpy as np

    out: list[Any] = []
    bad: list[Any] = []
    missing = 0
    for value in arr.tolist():
        if _missing(value):
            if column.type in _NULLABLE:
                out.append(np.nan if column.type == "float" else None)
            else:
                missing += 1
            continue
        try:
            out.append(convert(value))
        except (TypeError, ValueError, OverflowError):
            bad.append(value)
    if missing:
        return None, (
            f"column {column.name!r} has {missing} missing value(s); "
            f"{column.type} columns cannot be missing"
        )
    if bad:
        shown = ", ".join(repr(v) for v in bad[:_SHOWN])
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        return None, f"column {column.name!r} is {column.type}; {shown}{more} cannot be converted"
    dtype = {"float": np.float64, "int": np.int64, "bool": np.bool_}.get(column.type, object)
    return np.array(out, dtype=dtype), None


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(value)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(value)


def _kind_word(dk: str) -> str:
    return {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(dk, "text")


# -- inference -------------------------------------------------------------------------


def infer_signature(
    data: Any,
    output: Any = None,
    *,
    model: Any = None,
    optional: Iterable[str] = (),
) -> Signature:
    """The signature of ``data``: a pyarrow Table, a pandas or polars DataFrame, a mapping
    of names to sequences, or a 2-D NumPy matrix (column names from
    ``model.feature_names_in_`` when given, else ``x0``, ``x1``, ...).

    ``output`` (predictions or labels) adds one output column ``prediction``; a 2-D
    output adds ``prediction`` only, typed by its values. ``optional`` names input
    columns callers may leave out."""
    import numpy as np

    optional = set(optional)
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise UsageError(f"a NumPy input must be a 2-D matrix, not shape {data.shape}")
        names = _feature_names(model, data.shape[1])
        types = [_type_of(data[:, i], names[i]) for i in range(data.shape[1])]
        pairs = list(zip(names, types, strict=True))
    else:
        pairs = _typed_columns(data)
    unknown = optional - {name for name, _ in pairs}
    if unknown:
        raise UsageError(f"optional column(s) {sorted(unknown)} are not in the data")
    inputs = tuple(Column(name, kind, name in optional) for name, kind in pairs)
    outputs: tuple[Column, ...] = ()
    if output is not None:
        values = np.asarray(as_array(output) if not isinstance(output, np.ndarray) else output)
        flat = values.reshape(len(values), -1)[:, 0] if values.ndim > 1 else values
        outputs = (Column("prediction", _type_of(flat, "prediction")),)
    return Signature(inputs, outputs)


def _feature_names(model: Any, width: int) -> list[str]:
    names = getattr(model, "feature_names_in_", None) if model is not None else None
    if names is None:
        return [f"x{i}" for i in range(width)]
    names = [str(n) for n in names]
    if len(names) != width:
        raise UsageError(
            f"the model was fitted on {len(names)} features but the matrix has {width} columns"
        )
    return names


def _typed_columns(data: Any) -> list[tuple[str, ColumnType]]:
    root = root_module(data)
    if root == "pyarrow":
        return [(f.name, _arrow_type(f.type, f.name)) for f in data.schema]
    if root == "pandas" and hasattr(data, "columns"):
        pairs: list[tuple[str, ColumnType]] = []
        for name in data.columns:
            dtype = str(data[name].dtype)
            kind: ColumnType = (
                "category" if dtype == "category" else _type_of(data[name].to_numpy(), str(name))
            )
            pairs.append((str(name), kind))
        return pairs
    if root == "polars" and hasattr(data, "columns"):
        return [
            (n, _polars_type(str(d), n)) for n, d in zip(data.columns, data.dtypes, strict=True)
        ]
    return [(name, _type_of(values, name)) for name, values in to_columns(data).items()]


def _arrow_type(dtype: Any, name: str) -> ColumnType:
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "float"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_dictionary(dtype):
        return "category"
    raise _unsupported(name, str(dtype))


def _polars_type(dtype: str, name: str) -> ColumnType:
    if dtype == "Boolean":
        return "bool"
    if dtype.startswith(("Int", "UInt")):
        return "int"
    if dtype.startswith(("Float", "Decimal")):
        return "float"
    if dtype in ("String", "Utf8"):
        return "string"
    if dtype == "Categorical" or dtype.startswith("Enum"):
        return "category"
    raise _unsupported(name, dtype)


def _type_of(values: Any, name: str) -> ColumnType:
    import numpy as np

    arr = np.asarray(values)
    dk = arr.dtype.kind
    if dk == "b":
        return "bool"
    if dk in "iu":
        return "int"
    if dk == "f":
        return "float"
    if dk in "US":
        return "string"
    if dk == "O":
        seen = {type(v) for v in arr.tolist() if not _missing(v)}
        if not seen:
            return "float"
        if seen <= {str}:
            return "string"
        if seen <= {bool}:
            return "bool"
        if seen <= {int}:
            return "float" if any(_missing(v) for v in arr.tolist()) else "int"
        if seen <= {int, float}:
            return "float"
        kinds = ", ".join(sorted(t.__name__ for t in seen))
        raise UsageError(f"column {name!r} mixes {kinds} values; give it one type first")
    raise _unsupported(name, str(arr.dtype))


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (recognised by type name: pandas is not imported)."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or type(value).__name__ == "NAType"
    )


def _unsupported(name: str, dtype: str) -> UsageError:
    return UsageError(
        f"column {name!r} is {dtype}; models take {', '.join(TYPES)} columns, so convert it "
        "first (e.g. a date to a number of days)"
    )


# -- compatibility ---------------------------------------------------------------------


def compatible(old: Signature, new: Signature) -> list[str]:
    """Why callers of a model with signature ``old`` would break on one with ``new``
    (empty when they would not).

    Breaks: an input column removed (a caller sending one 2-D tensor would send the
    wrong width), retyped so that the old values no longer fit (int -> float and
    string <-> category fit), turned from optional to required, or the common columns
    reordered; a new required column; an output removed or retyped. A new optional
    column is fine."""
    reasons: list[str] = []
    new_by_name = {c.name: c for c in new.inputs}
    old_by_name = {c.name: c for c in old.inputs}
    for column in old.inputs:
        now = new_by_name.get(column.name)
        if now is None:
            reasons.append(f"input column {column.name!r} was removed")
            continue
        if now.type not in _WIDENS[column.type]:
            reasons.append(f"input column {column.name!r} changed from {column.type} to {now.type}")
        if column.optional and not now.optional:
            reasons.append(f"input column {column.name!r} was optional and is now required")
    for column in new.inputs:
        if column.name not in old_by_name and not column.optional:
            reasons.append(f"new required input column {column.name!r} ({column.type})")
    common_old = [c.name for c in old.inputs if c.name in new_by_name]
    common_new = [c.name for c in new.inputs if c.name in old_by_name]
    if common_old != common_new:
        reasons.append(
            "input columns were reordered (callers sending one 2-D tensor rely on the order): "
            f"{_order(common_old)} -> {_order(common_new)}"
        )
    elif [c.name for c in new.inputs][: len(old.inputs)] != [c.name for c in old.inputs] and all(
        c.name in new_by_name for c in old.inputs
    ):
        reasons.append(
            "a new column was inserted before old ones (callers sending one 2-D tensor rely "
            "on the order); add new columns at the end"
        )
    new_outputs = {c.name: c for c in new.outputs}
    for column in old.outputs:
        now = new_outputs.get(column.name)
        if now is None:
            reasons.append(f"output {column.name!r} was removed")
        elif now.type != column.type:
            reasons.append(f"output {column.name!r} changed from {column.type} to {now.type}")
    return reasons


def _order(names: Sequence[str]) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"[{shown}]"

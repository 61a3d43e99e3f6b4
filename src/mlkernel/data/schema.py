"""Schemas: the explicit schema file, the JSON form recorded per version, and diffs.

A schema file is JSON or TOML mapping column names to types, either at the top level or
under ``columns``::

    {"columns": {"id": "int64", "price": "float64", "city": "category",
                 "at": "timestamp[ms, UTC]", "day": "date", "ok": "bool"}}

Columns it does not name are inferred.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlkernel.errors import NotFoundError, UsageError

__all__ = ["describe", "diff_schemas", "load_schema_file", "parse_type", "type_name"]

_SIMPLE = {
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "int": "int64",
    "integer": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "float32": "float32",
    "float": "float64",
    "float64": "float64",
    "double": "float64",
    "bool": "bool_",
    "boolean": "bool_",
    "string": "string",
    "str": "string",
    "text": "string",
    "date": "date32",
    "date32": "date32",
    "binary": "binary",
}
_TIMESTAMP = re.compile(r"timestamp(?:\[\s*(s|ms|us|ns)\s*(?:,\s*(?:tz=)?([^\]]+?))?\s*\])?\Z")
ACCEPTED = "int8..int64, uint8..uint64, float32, float64, bool, string, category, date, timestamp[UNIT, TZ]"


def parse_type(text: str, column: str = "?") -> Any:
    """The Arrow type a schema file's type string names."""
    import pyarrow as pa

    key = text.strip().lower()
    if key in ("category", "categorical", "dictionary"):
        return pa.dictionary(pa.int32(), pa.string())
    if key in _SIMPLE:
        return getattr(pa, _SIMPLE[key])()
    match = _TIMESTAMP.match(text.strip())
    if match:
        unit = match.group(1) or "us"
        return pa.timestamp(unit, tz=match.group(2))
    raise UsageError(f"column {column!r} has unknown type {text!r}; use one of: {ACCEPTED}")


def load_schema_file(path: str | Path) -> dict[str, Any]:
    """Column name -> Arrow type, from a JSON or TOML schema file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"schema file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UsageError(f"schema file {path} cannot be read ({reason}); check the path") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"schema file {path} cannot be parsed ({exc}); fix its syntax") from None
    if isinstance(data, dict) and isinstance(data.get("columns"), dict):
        data = data["columns"]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(
            f'schema file {path} must map column names to type names, e.g. {{"price": "float64"}}'
        )
    return {name: parse_type(kind, name) for name, kind in data.items()}


def type_name(dtype: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return "category"
    return str(dtype)


def describe(schema: Any) -> list[dict[str, Any]]:
    """A schema as JSON: ``[{"name", "type"}, ...]``."""
    return [{"name": f.name, "type": type_name(f.type)} for f in schema]


def diff_schemas(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Columns added, removed and retyped from ``old`` to ``new`` (JSON forms)."""
    before = {c["name"]: c["type"] for c in old}
    after = {c["name"]: c["type"] for c in new}
    return {
        "added": [c["name"] for c in new if c["name"] not in before],
        "removed": [c["name"] for c in old if c["name"] not in after],
        "changed": [
            {"name": n, "from": before[n], "to": t}
            for n, t in after.items()
            if n in before and before[n] != t
        ],
    }


def first_difference(expected: Any, actual: Any) -> str | None:
    """Describe the first way Arrow schema ``actual`` differs from ``expected``, if any."""
    if expected.names != actual.names:
        for i, (a, b) in enumerate(zip(expected.names, actual.names, strict=False)):
            if a != b:
                return f"column {i + 1} is {b!r} here but {a!r} in the first file"
        if len(actual.names) > len(expected.names):
            extra = actual.names[len(expected.names)]
            return f"it has an extra column {extra!r}"
        missing = expected.names[len(actual.names)]
        return f"it lacks column {missing!r}"
    for field, other in zip(expected, actual, strict=True):
        if type_name(field.type) != type_name(other.type):
            return (
                f"column {field.name!r} is {type_name(other.type)} here but "
                f"{type_name(field.type)} in the first file"
            )
    return None

"""Row helpers shared by the metadata store's query modules."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from mlkernel.errors import UsageError
from mlkernel.meta.liveness import LOST, is_lost
from mlkernel.meta.records import ExecutionRecord

__all__ = ["ARTIFACT_COLUMNS", "EXECUTION_COLUMNS", "dump", "dump_param", "execution_record"]
__all__ += ["from_json", "id_list", "metric_rows", "read_metric", "safe_text", "state_filter"]

ARTIFACT_COLUMNS = (
    "id, kind, name, version, digest, uri, size, properties, created_at, created_by, execution_id"
)
EXECUTION_COLUMNS = (
    'id, name, type, state, started_at, ended_at, error, host, pid, "user", git_commit, '
    "git_dirty, env_artifact_id, cache_key, code_digest, context_id, resources, proc_start"
)


def id_list(ids: Iterable[int]) -> str | None:
    """``ids`` as the inside of an SQL ``IN (...)``, sorted and without repeats; None when
    there are none. Integers only (each is passed through ``int``), so safe to inline."""
    wanted = sorted({int(i) for i in ids})
    return ", ".join(str(i) for i in wanted) if wanted else None


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def execution_record(row: Sequence[Any]) -> ExecutionRecord:
    """A record from an ``EXECUTION_COLUMNS`` row; a ``running`` execution whose process
    is gone from this host reads as ``lost`` (see :mod:`mlkernel.meta.liveness`)."""
    values = list(row)
    values[11] = None if values[11] is None else bool(values[11])
    values[16] = from_json(values[16])
    if values[3] == "running" and is_lost(values[7], int(values[8]), values[17]):
        values[3] = LOST
    return ExecutionRecord(*values)


def dump(value: Any) -> str:
    return json.dumps(value, default=str)


def _plain(value: Any) -> Any:
    """NumPy (and similar) scalars and arrays as Python values; anything else as text."""
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def dump_param(key: str, value: Any) -> str:
    """A parameter value as JSON text; NaN and infinities are kept (Python reads them
    back), NumPy values become numbers and lists, other objects their ``str()``."""
    try:
        return json.dumps(value, default=_plain)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(
            f"parameter {key!r} cannot be stored ({exc}); pass numbers, strings, lists "
            "and dicts with string keys"
        ) from None


def metric_rows(
    rows: Iterable[tuple[int, str, int, float, float]],
) -> list[tuple[int, str, int, float | None, float]]:
    """Metric rows as stored: NaN is NULL on both backends (SQLite binds NaN as NULL, so
    PostgreSQL does the same and the two read alike); infinities are stored as such."""
    return [(e, k, s, None if math.isnan(v) else v, t) for e, k, s, v, t in rows]


def read_metric(value: Any) -> float:
    """A stored metric value as read: NULL (or a NaN written directly) is NaN."""
    if value is None:
        return math.nan
    number = float(value)
    return 0.0 if number == 0.0 else number


MAX_TEXT = 4000


def safe_text(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Free text (an error message) that both databases accept: no NUL (PostgreSQL
    refuses it), no lone surrogates (neither driver encodes them), at most ``limit``
    characters."""
    if text is None:
        return None
    text = str(text).replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def state_filter(state: str | None) -> tuple[str | None, bool]:
    """The ``state`` to ask the database for, and whether the rows must be filtered
    again once read: ``running`` and ``lost`` are one state in the database."""
    if state in ("running", LOST):
        return "running", True
    return state, False

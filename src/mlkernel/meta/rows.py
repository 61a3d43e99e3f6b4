"""Row helpers shared by the metadata store's query modules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlkernel.meta.records import ExecutionRecord

__all__ = ["ARTIFACT_COLUMNS", "EXECUTION_COLUMNS", "dump", "execution_record", "from_json"]

ARTIFACT_COLUMNS = (
    "id, kind, name, version, digest, uri, size, properties, created_at, created_by, execution_id"
)
EXECUTION_COLUMNS = (
    'id, name, type, state, started_at, ended_at, error, host, pid, "user", git_commit, '
    "git_dirty, env_artifact_id, cache_key, code_digest, context_id, resources"
)


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def execution_record(row: Sequence[Any]) -> ExecutionRecord:
    values = list(row)
    values[11] = None if values[11] is None else bool(values[11])
    values[16] = from_json(values[16])
    return ExecutionRecord(*values)


def dump(value: Any) -> str:
    return json.dumps(value, default=str)

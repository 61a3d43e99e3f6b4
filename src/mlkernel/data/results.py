"""What ``data show`` and ``data diff`` return: typed results whose ``to_dict()`` is the
JSON ``mlk data show --json`` and ``mlk data diff --json`` print."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.artifacts.results import ArtifactDetail
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["ColumnChange", "DatasetDetail", "DatasetDiff", "FromTo", "SchemaDiff"]


@dataclass(frozen=True)
class DatasetDetail:
    """One dataset version: the catalog's detail of it, what was made from it and what
    made it."""

    detail: ArtifactDetail
    used_by: list[str]  # references of the artifacts made from it (three steps down), sorted
    produced_by_run: str | None  # the name of the execution that produced it

    @property
    def record(self) -> ArtifactRecord:
        return self.detail.record

    @property
    def ref(self) -> str:
        return self.detail.record.ref

    @property
    def properties(self) -> dict[str, Any]:
        """What the version records: rows, columns, schema, sizes, source (a fresh dict)."""
        return self.detail.record.properties

    def to_dict(self) -> dict[str, Any]:
        info = self.detail.to_dict()
        info["used_by"] = list(self.used_by)
        info["produced_by_run"] = self.produced_by_run
        return info


@dataclass(frozen=True)
class FromTo:
    """A number as version ``a`` and version ``b`` record it (None: not recorded)."""

    before: int | None
    after: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.before, "to": self.after}


@dataclass(frozen=True)
class ColumnChange:
    """A column both versions have, with another type in the second."""

    name: str
    from_type: str
    to_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.from_type, "to": self.to_type}


@dataclass(frozen=True)
class SchemaDiff:
    """Columns added, removed and retyped, in the order of the schema they are in."""

    added: list[str]
    removed: list[str]
    changed: list[ColumnChange]

    @classmethod
    def from_dict(cls, changes: dict[str, Any]) -> SchemaDiff:
        """From :func:`mlkernel.data.schema.diff_schemas`' JSON form."""
        return cls(
            added=list(changes["added"]),
            removed=list(changes["removed"]),
            changed=[ColumnChange(c["name"], c["from"], c["to"]) for c in changes["changed"]],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.to_dict() for c in self.changed],
        }


@dataclass(frozen=True)
class DatasetDiff:
    """Schema and size differences from one dataset version to another."""

    from_ref: str
    to_ref: str
    same_content: bool  # the same stored Arrow file
    schema: SchemaDiff
    rows: FromTo
    columns: FromTo
    bytes: FromTo

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_ref,
            "to": self.to_ref,
            "same_content": self.same_content,
            "schema": self.schema.to_dict(),
            "rows": self.rows.to_dict(),
            "columns": self.columns.to_dict(),
            "bytes": self.bytes.to_dict(),
        }

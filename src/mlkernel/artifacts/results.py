"""What the catalog's operations return (``k.catalog``): typed, with ``to_dict()`` giving
the JSON ``--json`` prints. Imported when an operation builds one, so that opening a project
does not pay for creating these classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.meta.records import ArtifactRecord, ExecutionRecord

__all__ = ["AliasChange", "ArtifactDetail", "KindCount", "ProjectStatus"]


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: ``from_version`` None is its creation, ``to_version`` None its
    removal."""

    alias: str
    from_version: int | None
    to_version: int | None
    at: float
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "at": self.at,
            "by": self.by,
        }


@dataclass(frozen=True)
class ArtifactDetail:
    """One artifact version with its aliases, sibling versions, alias history and producer."""

    record: ArtifactRecord
    aliases: dict[str, int]
    versions: list[int]
    alias_history: list[AliasChange]
    produced_by: ExecutionRecord | None

    def to_dict(self) -> dict[str, Any]:
        info = self.record.to_dict()
        info["aliases"] = dict(self.aliases)
        info["versions"] = list(self.versions)
        info["alias_history"] = [m.to_dict() for m in self.alias_history]
        if self.produced_by is not None:
            info["produced_by"] = self.produced_by.to_dict()
        return info


@dataclass(frozen=True)
class KindCount:
    """How many artifacts of one kind: names, versions and bytes."""

    names: int
    versions: int
    bytes: int


@dataclass(frozen=True)
class ProjectStatus:
    """The project at a glance."""

    project: str
    root: str
    metadata: str  # the SQLite file or the server, without a password
    backend: str  # "sqlite" or "postgresql"
    artifacts: dict[str, KindCount]
    latest: list[ArtifactRecord]
    aliases: list[tuple[str, str]]  # (alias, the reference it points at)
    runs: dict[str, int]  # state -> runs
    metrics: int
    objects: int
    stored_bytes: int
    storage_path: str
    note: str | None  # what a team sharing the metadata must know about objects

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "root": self.root,
            "metadata": self.metadata,
            "backend": self.backend,
            "artifacts": {
                k: {"versions": c.versions, "names": c.names, "bytes": c.bytes}
                for k, c in self.artifacts.items()
            },
            "latest": [r.to_dict() for r in self.latest],
            "aliases": [{"ref": ref, "alias": alias} for alias, ref in self.aliases],
            "runs": dict(self.runs),
            "metrics": self.metrics,
            "storage": {
                "objects": self.objects,
                "bytes": self.stored_bytes,
                "path": self.storage_path,
                "shared": False,
                "note": self.note,
            },
        }

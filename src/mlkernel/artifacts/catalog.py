"""The catalog behind ``k.catalog``: names, versions, aliases and lineage of the artifacts of a
project, answered from the in-memory table, and the project at a glance.

Aliases are the seed of the model registry: every move is recorded (who, when, from, to)
and can be rolled back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.errors import ConflictError, NotFoundError, UsageError
from mlkernel.refs import Ref, parse_ref, validate_alias, validate_kind

if TYPE_CHECKING:
    from mlkernel.artifacts.results import AliasChange, ArtifactDetail, ProjectStatus
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord, Lineage

__all__ = ["CatalogService"]


class CatalogService:
    """The names of one project's artifacts. Reached as ``k.catalog``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    # -- resolving -------------------------------------------------------------------

    @operation(
        "artifacts.resolve",
        Action.READ,
        resource="ref",
        no_cli="SDK: every command that takes a reference resolves it",
    )
    def resolve(self, ref: str | Ref, kind: str | None = None) -> ArtifactRecord:
        """The artifact a reference names, answered from memory."""
        return self._ctx.table.resolve(ref, kind)

    @operation(
        "artifacts.get",
        Action.READ,
        resource="artifact_id",
        no_cli="services: the artifact an execution or event names by id",
    )
    def get(self, artifact_id: int) -> ArtifactRecord:
        """The artifact version with id ``artifact_id``."""
        return self._ctx.table.get(artifact_id)

    @operation("artifacts.ls", Action.READ, resource="kind", cli="ls")
    def ls(self, kind: str | None = None) -> list[ArtifactRecord]:
        """The latest version of every artifact (of one ``kind``)."""
        if kind is not None:
            validate_kind(kind)
        return self._ctx.table.latest(kind)

    @operation("artifacts.versions", Action.READ, resource="ref", cli="ls")
    def versions(self, ref: str | ArtifactRecord) -> list[ArtifactRecord]:
        """Every version of the artifact ``ref`` names (a reference or one of its records)."""
        record = self._ctx.table.resolve(ref) if isinstance(ref, str) else ref
        return self._ctx.table.versions(record.kind, record.name)

    @operation("artifacts.show", Action.READ, resource="ref", cli="show")
    def show(self, ref: str) -> ArtifactDetail:
        """One artifact version: its record, aliases, versions, alias history and producer."""
        from mlkernel.artifacts.results import ArtifactDetail

        ctx = self._ctx
        record = ctx.table.resolve(ref)
        producer = record.execution_id
        return ArtifactDetail(
            record=record,
            aliases=ctx.table.aliases_of(record.kind, record.name),
            versions=[v.version for v in ctx.table.versions(record.kind, record.name)],
            alias_history=self._history(record.kind, record.name),
            produced_by=ctx.meta.get_execution(producer) if producer is not None else None,
        )

    def _history(self, kind: str, name: str) -> list[AliasChange]:
        from mlkernel.artifacts.results import AliasChange

        return [
            AliasChange(h["alias"], h["from"], h["to"], h["at"], h["by"])
            for h in self._ctx.meta.alias_history(kind, name)
        ]

    # -- aliases ---------------------------------------------------------------------

    @operation("aliases.ls", Action.READ, cli="ls")
    def aliases(self) -> dict[tuple[str, str, str], int]:
        """Every alias of the project: (kind, name, alias) -> version."""
        return self._ctx.table.all_aliases()

    @operation("aliases.history", Action.READ, resource="ref", cli="show")
    def alias_history(self, ref: str) -> list[AliasChange]:
        """Every move of every alias of the artifact ``ref`` names, oldest first."""
        parsed = parse_ref(ref)
        record = self._ctx.table.resolve(Ref(parsed.kind, parsed.name))
        return self._history(record.kind, record.name)

    @operation("aliases.set", Action.WRITE, resource="ref", cli="alias set")
    def set_alias(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """Point ``alias`` at the version ``ref`` names; return it and the previous version."""
        ctx = self._ctx
        validate_alias(alias)
        record = ctx.table.resolve(ref)
        before = ctx.meta.set_alias(record.kind, record.name, alias, record.version, ctx.actor.name)
        ctx.table.note_alias(record.kind, record.name, alias, record.version)
        return record, before

    @operation("aliases.rm", Action.DELETE, resource="ref", cli="alias rm")
    def remove_alias(self, ref: str, alias: str) -> int:
        """Remove ``alias`` from the artifact ``ref`` names; return the version it pointed at."""
        ctx = self._ctx
        parsed = parse_ref(ref)
        record = ctx.table.resolve(Ref(parsed.kind, parsed.name))
        before = ctx.meta.remove_alias(record.kind, record.name, alias, ctx.actor.name)
        ctx.table.note_alias(record.kind, record.name, alias, None)
        return before

    @operation("aliases.rollback", Action.WRITE, resource="ref", cli="alias rollback")
    def rollback_alias(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """Move ``alias`` back to the version it pointed at before its last move."""
        parsed = parse_ref(ref)
        record = self._ctx.table.resolve(Ref(parsed.kind, parsed.name))
        moves = [m for m in self._history(record.kind, record.name) if m.alias == alias]
        if not moves:
            raise NotFoundError(
                f"{record.kind}:{record.name} never had alias {alias!r}; "
                f"run `mlk show {record.kind}:{record.name}` to see its aliases"
            )
        previous = moves[-1].from_version
        if previous is None:
            raise ConflictError(
                f"alias {alias!r} of {record.kind}:{record.name} has no earlier version to go "
                f"back to; remove it with `mlk alias rm {record.kind}:{record.name} {alias}`"
            )
        return self.set_alias(f"{record.kind}:{record.name}@{previous}", alias)

    # -- lineage ---------------------------------------------------------------------

    @operation("artifacts.lineage", Action.READ, resource="ref", cli="lineage")
    def lineage(self, ref: str, direction: str = "up", depth: int = 100) -> Lineage:
        """The artifacts and runs upstream (or downstream) of ``ref``, ``depth`` levels deep."""
        from mlkernel.meta.records import Lineage

        ctx = self._ctx
        if direction not in ("up", "down"):
            raise UsageError(f"direction must be 'up' or 'down', not {direction!r}")
        root = ctx.table.resolve(ref)
        edges = ctx.meta.lineage_edges(root.id, direction, depth)
        ids = {root.id} | {e.child_id for e in edges} | {e.parent_id for e in edges}
        exec_ids = {e.execution_id for e in edges}
        if root.execution_id is not None:
            exec_ids.add(root.execution_id)
        return Lineage(
            root=root,
            direction=direction,
            edges=edges,
            artifacts={i: ctx.table.get(i) for i in ids},
            executions=ctx.meta.executions(exec_ids),
        )

    # -- the project -----------------------------------------------------------------

    @operation("project.status", Action.READ, cli="status")
    def status(self) -> ProjectStatus:
        """The project at a glance: metadata, counts, latest artifacts, aliases, storage."""
        from mlkernel.artifacts.results import KindCount, ProjectStatus

        ctx = self._ctx
        counts = ctx.meta.counts()
        objects, stored = ctx.objects.usage()
        return ProjectStatus(
            project=ctx.config.name,
            root=str(ctx.root),
            metadata=ctx.meta.display_url,
            backend="sqlite" if ctx.meta.is_sqlite else "postgresql",
            artifacts={
                kind: KindCount(c["names"], c["versions"], c["bytes"])
                for kind, c in counts["kinds"].items()
            },
            latest=[r for r in ctx.table.latest() if r.kind != "env"],
            aliases=[
                (a, f"{k}:{n}@{v}") for (k, n, a), v in sorted(ctx.table.all_aliases().items())
            ],
            runs=counts["runs"],
            metrics=counts["metrics"],
            objects=objects,
            stored_bytes=stored,
            storage_path=ctx.objects.location,
            note=self.objects_note(),
        )

    @property
    def metadata_location(self) -> str:
        """Where the metadata lives, without a password: the SQLite file or the server."""
        return self._ctx.meta.display_url

    @exempt("a sentence about where objects live, from the configuration only")
    def objects_note(self) -> str | None:
        """What a team sharing a PostgreSQL database must know: objects are not shared."""
        ctx = self._ctx
        if ctx.meta.is_sqlite:
            return None
        return (
            f"objects (artifact contents) are local to this machine and folder "
            f"({ctx.objects.location}); teammates on the same PostgreSQL database see every "
            "artifact's metadata but can read only the objects their own folder wrote "
            "(mlkernel has no shared object store yet)"
        )

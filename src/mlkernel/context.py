"""What a service works with: configuration, storage, clock and the actor (issue 12).

Every service (artifacts, catalog, runs, data, monitor, pipelines) is built from one
:class:`Context`, never from the Kernel: the Kernel is only the composition root that
opens the storage once, builds a context for an actor and the services on it
(:meth:`Context.for_actor` makes another actor's context over the same storage).

The storage handles (``meta``, ``objects``, ``table``) are for the services alone; entry
points (the CLI, servers, the daemon) call service operations and never touch them
(``tests/test_architecture.py`` checks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlkernel.authz import Actor
from mlkernel.config import ProjectConfig

if TYPE_CHECKING:
    from mlkernel.artifacts.base import ObjectStore
    from mlkernel.meta.store import MetaStore
    from mlkernel.meta.table import MetadataTable
    from mlkernel.provenance import ProvenanceProbe

__all__ = ["Context", "Shared"]


@dataclass(eq=False)
class Shared:
    """State every actor's context of one open project shares: the background probe that
    finds each run's environment and git commit, and the ids of stored environments."""

    root: Path
    cache_dir: Path
    env_ids: dict[str, int] = field(default_factory=dict)
    _provenance: ProvenanceProbe | None = None

    @property
    def provenance(self) -> ProvenanceProbe:
        if self._provenance is None:
            from mlkernel.provenance import ProvenanceProbe

            self._provenance = ProvenanceProbe(self.root, self.cache_dir)
        return self._provenance

    def close(self) -> None:
        if self._provenance is not None:
            self._provenance.close()
            self._provenance = None


@dataclass(frozen=True, eq=False)
class Context:
    """One project's configuration and storage, seen by one actor."""

    config: ProjectConfig
    actor: Actor
    meta: MetaStore
    objects: ObjectStore
    table: MetadataTable
    host: str
    shared: Shared
    clock: Callable[[], float] = time.time

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def state_dir(self) -> Path:
        """``.mlkernel/``: logs, caches, keys and backups."""
        return self.config.state_dir

    @property
    def cache_dir(self) -> Path:
        return self.config.state_dir / "cache"

    def for_actor(self, actor: Actor) -> Context:
        """The same project and storage, seen by ``actor``."""
        return replace(self, actor=actor)

"""Content-addressed, immutable object storage.

:class:`ObjectStore` is the interface (:mod:`mlkernel.artifacts.base`),
:class:`LocalObjectStore` the backend that keeps objects in a local folder
(:mod:`mlkernel.artifacts.store`). Names load on first use: a pipeline's worker process
imports the local store alone and should not pay for ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from mlkernel.artifacts.base import ObjectStore
    from mlkernel.artifacts.gc import GCReport
    from mlkernel.artifacts.store import LocalObjectStore

__all__ = ["GCReport", "LocalObjectStore", "ObjectStore"]


def __getattr__(name: str) -> object:
    if name == "ObjectStore":
        from mlkernel.artifacts.base import ObjectStore

        return ObjectStore
    if name == "LocalObjectStore":
        from mlkernel.artifacts.store import LocalObjectStore

        return LocalObjectStore
    if name == "GCReport":
        from mlkernel.artifacts.gc import GCReport

        return GCReport
    raise AttributeError(f"module 'mlkernel.artifacts' has no attribute {name!r}")

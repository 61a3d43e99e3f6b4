"""Content-addressed, immutable object storage."""

from mlkernel.artifacts.store import ObjectStore

__all__ = ["ObjectStore"]

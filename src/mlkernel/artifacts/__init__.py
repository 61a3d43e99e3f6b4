"""Content-addressed, immutable object storage."""

from mlkernel.artifacts.store import ObjectStore, file_digest

__all__ = ["ObjectStore", "file_digest"]

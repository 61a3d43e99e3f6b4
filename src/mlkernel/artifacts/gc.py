"""What a garbage collection of the object store did (or, in a dry run, would do)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_GC_GRACE", "GCReport"]

DEFAULT_GC_GRACE = 600.0  # gc leaves objects younger than this (seconds): maybe in flight


@dataclass(frozen=True, slots=True)
class GCReport:
    removed: list[str]
    bytes: int
    kept: int
    dry_run: bool
    young: list[str] = field(default_factory=list)  # unreferenced, but within the grace
    grace: float = DEFAULT_GC_GRACE

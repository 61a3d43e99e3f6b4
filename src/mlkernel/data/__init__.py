"""Datasets: CSV/JSON/Parquet ingested once into columnar storage, opened in a layout.

``k.data.add(path)`` parses with Arrow's multi-threaded readers and stores each version
as an Arrow IPC file (opened memory-mapped) plus Parquet (zstd); ``k.data.open(ref,
layout="columns" | "rows")`` hands it back as an Arrow table or a row-major NumPy matrix.
See docs/datasets.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlkernel.data.ingest import IngestResult
    from mlkernel.data.layout import Rows
    from mlkernel.data.readers import BadRow
    from mlkernel.data.service import DataService

__all__ = ["BadRow", "DataService", "IngestResult", "Rows"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing mlkernel.data costs nothing until a name is used.
    if name == "DataService":
        from mlkernel.data.service import DataService

        return DataService
    if name == "IngestResult":
        from mlkernel.data.ingest import IngestResult

        return IngestResult
    if name == "Rows":
        from mlkernel.data.layout import Rows

        return Rows
    if name == "BadRow":
        from mlkernel.data.readers import BadRow

        return BadRow
    raise AttributeError(f"module 'mlkernel.data' has no attribute {name!r}")

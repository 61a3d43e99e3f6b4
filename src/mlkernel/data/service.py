"""The dataset service behind ``k.data``: ingest, open in a layout, stream, describe."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from mlkernel.errors import UsageError

if TYPE_CHECKING:
    from mlkernel.data.ingest import IngestResult
    from mlkernel.data.layout import Rows
    from mlkernel.kernel import Kernel
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["DataService"]

LAYOUTS = ("columns", "rows")
OUTPUTS = ("arrow", "polars", "pandas")


class DataService:
    """Datasets of one project. Reached as ``k.data``."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    # -- ingest ----------------------------------------------------------------------

    def add(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        schema: str | Path | None = None,
        on_bad_rows: str = "fail",
        encoding: str = "utf8",
        format: str | None = None,
        progress: bool | Callable[[int, int], None] = True,
        parquet: bool = False,
        null_values: Sequence[str] | None = None,
    ) -> IngestResult:
        """Ingest a file, directory or glob as a new version of dataset ``name``.

        ``progress``: True draws a bar on stderr for ingests over a second; a callable
        gets ``(bytes_read, total_bytes)`` as reading proceeds. ``parquet``: store a
        Parquet copy now too (otherwise :meth:`parquet_path` makes it on first need).
        ``null_values``: the field values read as missing, in every column and format
        (default: ``readers.DEFAULT_NULL_VALUES``, pandas' list; ``[]``: none).
        """
        from mlkernel.data.ingest import AddOptions, add

        if isinstance(null_values, str):
            raise UsageError("null_values is a string; pass a list of strings, e.g. ['NA', '']")
        nulls = tuple(null_values) if null_values is not None else None
        options = AddOptions(
            name, schema, on_bad_rows, encoding, format, progress, parquet, null_values=nulls
        )
        return add(self._kernel, path, options)

    # -- finding ---------------------------------------------------------------------

    def resolve(self, ref: str) -> ArtifactRecord:
        record = self._kernel.resolve(ref, kind="dataset")
        if record.kind != "dataset":
            raise UsageError(f"{record.ref} is a {record.kind}, not a dataset; name a dataset")
        return record

    def ls(self) -> list[ArtifactRecord]:
        return self._kernel.ls("dataset")

    def versions(self, ref: str) -> list[ArtifactRecord]:
        record = self.resolve(ref)
        return self._kernel.table.versions("dataset", record.name)

    def ipc_path(self, ref: str | ArtifactRecord) -> Path:
        record = ref if not isinstance(ref, str) else self.resolve(ref)
        path = self._kernel.objects.path(record.digest)
        if not path.exists():
            self._kernel.objects.open(record.digest).close()  # raises IntegrityError
        return path

    def parquet_path(self, ref: str | ArtifactRecord) -> Path:
        """A Parquet (zstd) copy of the version: the stored one, else made once and cached.

        A version ingested with ``parquet=True`` owns a Parquet object; for the others the
        copy is written from the mapped Arrow file on first call (seconds for millions of
        rows) into ``.mlkernel/cache/data/<digest>.parquet``; later calls reuse it.
        """
        from mlkernel.data import layout as layouts
        from mlkernel.data.storage import parquet_copy

        record = ref if not isinstance(ref, str) else self.resolve(ref)
        stored = record.properties.get("objects", {}).get("parquet")
        if stored:
            return self._kernel.objects.path(stored)
        cache = self._kernel.config.state_dir / "cache" / "data"
        table = layouts.map_table(self.ipc_path(record))
        return parquet_copy(cache, record.digest, table)

    # -- opening ---------------------------------------------------------------------

    @overload
    def open(
        self,
        ref: str,
        *,
        layout: Literal["rows"],
        columns: Sequence[str] | None = ...,
        filter: Any = ...,
        as_: str = ...,
        dtype: str = ...,
    ) -> Rows: ...

    @overload
    def open(
        self,
        ref: str,
        *,
        layout: Literal["columns"] = ...,
        columns: Sequence[str] | None = ...,
        filter: Any = ...,
        as_: str = ...,
        dtype: str = ...,
    ) -> Any: ...

    def open(
        self,
        ref: str,
        *,
        layout: str = "columns",
        columns: Sequence[str] | None = None,
        filter: Any = None,
        as_: str = "arrow",
        dtype: str = "float64",
    ) -> Any:
        """A version in the layout you will walk it in.

        ``columns``: a ``pyarrow.Table`` memory-mapped from the stored IPC file (zero copy;
        ``as_="polars"`` or ``"pandas"`` converts). ``rows``: a :class:`Rows` whose
        ``matrix`` is a C-contiguous ``dtype`` matrix of the numeric and categorical
        columns, cached per version and opened memory-mapped.
        """
        from mlkernel.data import layout as layouts

        if layout not in LAYOUTS:
            raise UsageError(f"layout is {layout!r}; use 'columns' or 'rows'")
        if as_ not in OUTPUTS:
            raise UsageError(f"as_ is {as_!r}; use one of: {', '.join(OUTPUTS)}")
        record = self.resolve(ref)
        table = layouts.map_table(self.ipc_path(record))
        if layout == "rows":
            if filter is not None:
                raise UsageError(
                    "filter applies to layout='columns'; filter the table, then build rows"
                )
            layouts.select(table, columns, None, record.ref)  # validates the names
            cache = self._kernel.config.state_dir / "cache" / "data"
            return layouts.rows_matrix(cache, record.digest, table, dtype, columns)
        table = layouts.select(table, columns, filter, record.ref)
        return _convert(table, as_)

    def iter_batches(
        self, ref: str, *, rows: int = 65_536, columns: Sequence[str] | None = None
    ) -> Iterator[Any]:
        """``pyarrow.RecordBatch`` es of ``rows`` rows, read from the memory-mapped file."""
        from mlkernel.data import layout as layouts

        record = self.resolve(ref)
        table = layouts.select(layouts.map_table(self.ipc_path(record)), columns, None, record.ref)
        return layouts.iter_batches(table, rows)

    # -- describing ------------------------------------------------------------------

    def head(self, ref: str, n: int = 10) -> Any:
        return self.open(ref).slice(0, max(n, 0))

    def show(self, ref: str) -> dict[str, Any]:
        """Schema, size, versions and lineage of one version."""
        k = self._kernel
        record = self.resolve(ref)
        info = k.show(record.ref)
        lineage = k.lineage(record.ref, "down", depth=3)
        info["used_by"] = sorted(
            {lineage.artifacts[e.child_id].ref for e in lineage.edges} - {record.ref}
        )
        info["produced_by_run"] = info.get("produced_by", {}).get("name")
        return info

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """Schema and size differences from version ``a`` to version ``b``."""
        from mlkernel.data.schema import diff_schemas

        left, right = self.resolve(a), self.resolve(b)
        lp, rp = left.properties, right.properties
        return {
            "from": left.ref,
            "to": right.ref,
            "same_content": left.digest == right.digest,
            "schema": diff_schemas(lp.get("schema", []), rp.get("schema", [])),
            "rows": {"from": lp.get("rows"), "to": rp.get("rows")},
            "columns": {"from": lp.get("columns"), "to": rp.get("columns")},
            "bytes": {"from": lp.get("bytes"), "to": rp.get("bytes")},
        }


def _convert(table: Any, as_: str) -> Any:
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if as_ == "pandas":
        return table.to_pandas()
    return table

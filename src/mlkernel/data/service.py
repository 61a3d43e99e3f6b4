"""The dataset service behind ``k.data``: ingest, open in a layout, stream, describe."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.errors import UsageError

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.data.ingest import IngestResult
    from mlkernel.data.layout import Rows
    from mlkernel.data.results import DatasetDetail, DatasetDiff
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["DataService"]

LAYOUTS = ("columns", "rows")
OUTPUTS = ("arrow", "polars", "pandas")
#: Export formats and the file name endings that choose them (the first is the default).
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "parquet": (".parquet", ".pq"),
    "arrow": (".arrow", ".feather", ".ipc"),
    "ndjson": (".ndjson", ".jsonl"),
}


class DataService:
    """Datasets of one project. Reached as ``k.data``.

    Built from the project's context, the artifact service (which stores and registers
    each version) and the catalog (which names them); it is the artifact service's
    :class:`~mlkernel.artifacts.service.Datasets` port.
    """

    def __init__(self, ctx: Context, artifacts: ArtifactService, catalog: CatalogService) -> None:
        self._ctx = ctx
        self._artifacts = artifacts
        self._catalog = catalog

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    # -- ingest ----------------------------------------------------------------------

    @operation("data.add", Action.WRITE, resource="name", cli="data add")
    def add(
        self,
        source: str | PathLike[str] | Any,
        *,
        name: str | None = None,
        schema: str | Path | None = None,
        on_bad_rows: str = "fail",
        encoding: str = "utf8",
        format: str | None = None,
        progress: bool | Callable[[int, int], None] = True,
        parquet: bool = False,
        execution_id: int | None = None,
        properties: Mapping[str, Any] | None = None,
        null_values: Sequence[str] | None = None,
        delimiter: str | None = None,
        decimal: str = ".",
    ) -> IngestResult:
        """Ingest a file, directory, glob or in-memory table as a new version of ``name``.

        ``source``: a path (file, folder or glob), or a pandas DataFrame, polars DataFrame
        or pyarrow Table (then ``name`` is required, and the file options ``schema``,
        ``on_bad_rows``, ``encoding``, ``format`` and ``null_values`` do not apply).
        ``progress``: True draws a bar on stderr for ingests over a second; a callable gets
        ``(bytes_read, total_bytes)`` as reading proceeds. ``parquet``: store a Parquet copy
        now too (otherwise :meth:`parquet_path` makes it on first need). ``execution_id``:
        the run that produces the version (``run.log_artifact(..., kind="dataset")`` passes
        its own); without it the ingest records an execution ``data add NAME``.
        ``properties``: more for the version to record. ``null_values``: the field values
        read as missing, in every column and format (default:
        ``readers.DEFAULT_NULL_VALUES``, pandas' list; ``[]``: none). ``delimiter``: the
        CSV field separator, one character or ``tab``/``semicolon``/``pipe``/``comma``
        (default: a header without a comma that ``;``, tab or ``|`` splits is read so).
        ``decimal``: a CSV's decimal mark, ``"."`` or ``","`` (``1,5`` is 1.5).
        """
        from mlkernel.data.ingest import AddOptions, add, add_table

        if isinstance(null_values, str):
            raise UsageError("null_values is a string; pass a list of strings, e.g. ['NA', '']")
        nulls = tuple(null_values) if null_values is not None else None
        options = AddOptions(
            name,
            schema,
            on_bad_rows,
            encoding,
            format,
            progress,
            parquet,
            null_values=nulls,
            delimiter=delimiter,
            decimal=decimal,
        )
        extra = dict(properties or {})
        ctx, artifacts = self._ctx, self._artifacts
        if isinstance(source, str | PathLike):
            return add(
                ctx, artifacts, Path(source), options, execution_id=execution_id, properties=extra
            )
        return add_table(
            ctx, artifacts, source, options, execution_id=execution_id, properties=extra
        )

    # -- finding ---------------------------------------------------------------------

    @operation(
        "data.resolve",
        Action.READ,
        resource="ref",
        no_cli="SDK: every command that takes a reference resolves it",
    )
    def resolve(self, ref: str | ArtifactRecord) -> ArtifactRecord:
        """The ingested dataset version ``ref`` names; a one-line error for anything else."""
        record = ref if not isinstance(ref, str) else self._catalog.resolve(ref, kind="dataset")
        check_ingested(record)
        return record

    @operation(
        "data.ls", Action.READ, cli="data ls", summary="The latest version of every dataset."
    )
    def ls(self) -> list[ArtifactRecord]:
        return self._catalog.ls("dataset")

    @operation(
        "data.versions",
        Action.READ,
        resource="ref",
        cli="data ls",
        summary="Every version of the dataset ``ref`` names.",
    )
    def versions(self, ref: str) -> list[ArtifactRecord]:
        return self._catalog.versions(self.resolve(ref))

    @operation(
        "data.ipc_path",
        Action.READ,
        resource="ref",
        no_cli="SDK: the stored Arrow file, for memory-mapping",
        summary="The stored Arrow IPC file of a version.",
    )
    def ipc_path(self, ref: str | ArtifactRecord) -> Path:
        return self._artifacts.path(self.resolve(ref), verify=False)

    @operation(
        "data.parquet_path",
        Action.READ,
        resource="ref",
        no_cli="SDK: the Parquet copy, for engines that read Parquet",
    )
    def parquet_path(self, ref: str | ArtifactRecord) -> Path:
        """A Parquet (zstd) copy of the version: the stored one, else made once and cached.

        A version ingested with ``parquet=True`` owns a Parquet object; for the others the
        copy is written from the mapped Arrow file on first call (seconds for millions of
        rows) into ``.mlkernel/cache/data/<digest>.parquet``; later calls reuse it.
        """
        from mlkernel.data import layout as layouts
        from mlkernel.data.storage import parquet_copy

        record = self.resolve(ref)
        stored = record.properties.get("objects", {}).get("parquet")
        if stored:
            return self._ctx.objects.local_path_for_reading(stored)  # a companion object
        cache = self._ctx.cache_dir / "data"
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

    @operation("data.open", Action.READ, resource="ref", no_cli="SDK: a table in memory")
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
            cache = self._ctx.cache_dir / "data"
            return layouts.rows_matrix(cache, record.digest, table, dtype, columns)
        table = layouts.select(table, columns, filter, record.ref)
        return _convert(table, as_)

    @operation(
        "data.iter_batches", Action.READ, resource="ref", no_cli="SDK: record batches in memory"
    )
    def iter_batches(
        self, ref: str, *, rows: int = 65_536, columns: Sequence[str] | None = None
    ) -> Iterator[Any]:
        """``pyarrow.RecordBatch`` es of ``rows`` rows, read from the memory-mapped file."""
        from mlkernel.data import layout as layouts

        record = self.resolve(ref)
        table = layouts.select(layouts.map_table(self.ipc_path(record)), columns, None, record.ref)
        return layouts.iter_batches(table, rows)

    # -- exporting -------------------------------------------------------------------

    @operation("data.export", Action.READ, resource="ref", cli="data export")
    def export(
        self,
        ref: str | ArtifactRecord,
        path: str | PathLike[str],
        format: str | None = None,
        *,
        force: bool = False,
    ) -> Path:
        """Write a version to ``path`` as CSV, Parquet, Arrow IPC or NDJSON.

        The format comes from ``format``, else from the file name's ending (see
        :data:`EXPORT_FORMATS`); a folder gets ``NAME.<ext>`` in it. The file is written
        to a temporary file beside it and renamed, so an error leaves nothing half-written;
        an existing file is refused unless ``force``. Returns the path written.
        """
        from mlkernel.fsutil import atomic_output

        record = self.resolve(ref)
        dest = Path(path)
        if format is not None and format not in EXPORT_FORMATS:
            raise UsageError(
                f"export format {format!r} is unknown; use one of: {', '.join(EXPORT_FORMATS)}"
            )
        if dest.is_dir():
            dest = dest / f"{record.name}{EXPORT_FORMATS[format or 'csv'][0]}"
        chosen = format or export_format(dest)
        if chosen is None:
            endings = ", ".join(e for each in EXPORT_FORMATS.values() for e in each)
            raise UsageError(
                f"cannot tell the format from the name {dest.name!r}; end it with one of "
                f"{endings}, or pass --format"
            )
        source = self.ipc_path(record)
        with atomic_output(dest, overwrite=force) as tmp:
            _write_export(chosen, source, tmp, record.ref)
        return dest

    # -- describing ------------------------------------------------------------------

    @operation(
        "data.head",
        Action.READ,
        resource="ref",
        cli="data head",
        summary="The first ``n`` rows of a version.",
    )
    def head(self, ref: str, n: int = 10) -> Any:
        if n < 0:
            raise UsageError(f"n is {n}; ask for 0 or more rows (the first n)")
        return self.open(ref).slice(0, n)

    @exempt("the artifact service's port: delegates to add, which authorizes")
    def ingest(
        self,
        value: Any,
        *,
        name: str | None,
        properties: Mapping[str, Any] | None,
        execution_id: int | None,
    ) -> ArtifactRecord:
        """``log_artifact(..., kind="dataset")``: ingest a path or an in-memory table
        (pandas, polars, pyarrow) as :meth:`add` does, produced by the run when there is
        one; anything else is refused, naming ``k.data.add``, since the data commands could
        not read it. Identical content makes no new version."""
        from mlkernel.data.tables import is_table

        if not isinstance(value, str | PathLike) and not is_table(value):
            raise UsageError(
                f"cannot log a {type(value).__name__} as a dataset: a dataset is ingested from "
                "a file or a pandas/polars/Arrow table (k.data.add(..., name=...)); log other "
                "objects with another kind, e.g. kind='file' or kind='model'"
            )
        result = self.add(
            value, name=name, progress=False, execution_id=execution_id, properties=properties
        )
        return result.record

    @exempt("the artifact service's port: delegates to export, which authorizes")
    def export_as(self, record: ArtifactRecord, dest: Path, *, force: bool) -> Path | None:
        """Export an ingested dataset in the format ``dest``'s name asks for (``mlk get``);
        None when the name asks for none, and the stored Arrow file is copied instead."""
        if not record.ingested or export_format(dest) is None:
            return None
        return self.export(record, dest, force=force)

    @operation("data.show", Action.READ, resource="ref", cli="data show")
    def show(self, ref: str) -> DatasetDetail:
        """Schema, size, versions and lineage of one version."""
        from mlkernel.data.results import DatasetDetail

        record = self.resolve(ref)
        detail = self._catalog.show(record.ref)
        lineage = self._catalog.lineage(record.ref, "down", depth=3)
        made = {lineage.artifacts[e.child_id].ref for e in lineage.edges} - {record.ref}
        producer = detail.produced_by
        return DatasetDetail(
            detail=detail,
            used_by=sorted(made),
            produced_by_run=producer.name if producer is not None else None,
        )

    @operation("data.diff", Action.READ, resource="a", cli="data diff")
    def diff(self, a: str, b: str) -> DatasetDiff:
        """Schema and size differences from version ``a`` to version ``b``."""
        from mlkernel.data.results import DatasetDiff, FromTo, SchemaDiff
        from mlkernel.data.schema import diff_schemas

        left, right = self.resolve(a), self.resolve(b)
        lp, rp = left.properties, right.properties
        return DatasetDiff(
            from_ref=left.ref,
            to_ref=right.ref,
            same_content=left.digest == right.digest,
            schema=SchemaDiff.from_dict(diff_schemas(lp.get("schema", []), rp.get("schema", []))),
            rows=FromTo(lp.get("rows"), rp.get("rows")),
            columns=FromTo(lp.get("columns"), rp.get("columns")),
            bytes=FromTo(lp.get("bytes"), rp.get("bytes")),
        )


def check_ingested(record: ArtifactRecord) -> None:
    """Refuse, in one line naming the fix, what the data commands cannot read."""
    if record.kind != "dataset":
        raise UsageError(
            f"{record.ref} is a {record.kind}, not a dataset; name a dataset "
            "(`mlk data ls` lists them)"
        )
    if not record.ingested:
        stored = record.properties.get("format", "plain object")
        raise UsageError(
            f"{record.ref} was stored as a plain {stored}, not ingested, so the data commands "
            f"cannot read it; ingest the data with `mlk data add FILE --name {record.name}` "
            f"(or k.data.add(...) in Python)"
        )


def export_format(path: Path) -> str | None:
    """The export format a file name's ending chooses, if any."""
    suffix = path.suffix.lower()
    for name, endings in EXPORT_FORMATS.items():
        if suffix in endings:
            return name
    return None


def _write_export(format: str, source: Path, dest: Path, ref: str) -> None:
    import shutil

    from mlkernel.data import layout as layouts

    if format == "arrow":
        shutil.copyfile(source, dest)  # the stored Arrow IPC file is the export
        return
    table = layouts.map_table(source)
    if format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, str(dest), compression="zstd")
    elif format == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        for field in table.schema:
            kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            if pa.types.is_nested(kind) or pa.types.is_binary(kind):
                raise UsageError(
                    f"{ref}'s column {field.name!r} holds {field.type}, which CSV cannot hold; "
                    "export to .parquet, .arrow or .ndjson instead"
                )
        pacsv.write_csv(table, str(dest))
    else:  # ndjson
        import polars as pl

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frame.write_ndjson(str(dest))


def _convert(table: Any, as_: str) -> Any:
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if as_ == "pandas":
        return table.to_pandas()
    return table

"""Tables as dataset versions: what every version records, and a step's table stored as one.

:func:`describe` gives the properties a version records about its table and objects (rows,
columns, schema, categories, sizes, objects) and :func:`schema_changes` what changed from
the previous version; ``data add`` and pipeline steps both use them, so a version reads
the same whichever made it.

A pipeline step with ``output="dataset:NAME"`` returns one of :data:`ACCEPTED`;
:func:`to_table` makes of it the table an ingest would have made:

- a path to a data file is read by the ingest's own reader
  (:func:`~mlkernel.data.readers.read_source`, default options), so the version is the
  very one ``mlk data add`` of that file gives;
- an in-memory table is normalised the way the table of a Parquet file is at ingest: text
  as ``string`` (not ``large_string`` or ``string_view``, as pandas and polars give it),
  categories as ``dictionary<int32, string>``, a text column with few distinct values each
  repeated on average made a category and a mostly unique one left text (the ingest's
  rule, reused); other dictionaries (of numbers, dates) decoded. Its metadata (pandas' and
  polars') is dropped and its chunks combined, because the Arrow file holds both: equal
  tables then give equal bytes, hence one version, whatever chunks they came in.

:func:`write_version` writes the table's Arrow IPC file into the object store the way an
ingest does (:func:`~mlkernel.data.storage.write_ipc`, then
:func:`~mlkernel.data.storage.commit`) and returns what the version records.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from mlkernel.data import schema as schemas
from mlkernel.errors import MLKernelError, UsageError

if TYPE_CHECKING:
    from mlkernel.artifacts.base import ObjectStore
    from mlkernel.data.storage import Written
    from mlkernel.meta.records import ArtifactRecord

__all__ = [
    "ACCEPTED",
    "StepTable",
    "describe",
    "is_empty",
    "is_table",
    "schema_changes",
    "to_table",
    "write_version",
]

ACCEPTED = (
    "a pyarrow Table or RecordBatch, a pandas or polars DataFrame, a dict of columns, "
    "or a pathlib.Path to a CSV, TSV, NDJSON, JSON or Parquet file"
)


@dataclass(frozen=True, slots=True)
class StepTable:
    """A step's return value as the table to store, and where it came from."""

    table: Any  # pyarrow.Table
    format: str  # arrow | pandas | polars | dict, or the file's format (csv, ...)
    compression: str | None = None  # the file's
    python_type: str | None = None  # the in-memory value's
    source_bytes: int | None = None  # the file's size


def describe(table: Any, ipc: Written, parquet: Written | None = None) -> dict[str, Any]:
    """What a version records about its table and its objects in the store."""
    import pyarrow as pa

    categories = {
        f.name: table.column(f.name).chunk(0).dictionary.to_pylist()
        for f in table.schema
        if pa.types.is_dictionary(f.type) and table.column(f.name).num_chunks
    }
    return {
        "rows": table.num_rows,
        "columns": table.num_columns,
        "schema": schemas.describe(table.schema),
        "categories": categories,
        "bytes": ipc.size + (parquet.size if parquet else 0),
        "ipc_bytes": ipc.size,
        **({"parquet_bytes": parquet.size} if parquet else {}),
        "objects": {"ipc": ipc.digest, **({"parquet": parquet.digest} if parquet else {})},
    }


def schema_changes(
    previous: ArtifactRecord | None, schema: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Columns added, removed and retyped since ``previous`` (None for a first version)."""
    if previous is None:
        return None
    return {
        "from_version": previous.version,
        **schemas.diff_schemas(previous.properties.get("schema", []), schema),
    }


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _loaded(module: str, name: str) -> Any:
    """``module.name`` if ``module`` is imported already (a value of it implies it is)."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def _is(value: Any, module: str, *names: str) -> bool:
    classes = tuple(c for c in (_loaded(module, n) for n in names) if isinstance(c, type))
    return bool(classes) and isinstance(value, classes)


def is_table(value: Any) -> bool:
    """Whether ``value`` is an in-memory table: pyarrow, pandas or polars."""
    return (
        _is(value, "pyarrow", "Table", "RecordBatch")
        or _is(value, "pandas", "DataFrame")
        or _is(value, "polars", "DataFrame")
    )


def is_empty(value: Any) -> bool:
    """Whether an in-memory table (see :func:`is_table`) has no rows or no columns."""
    if _is(value, "pyarrow", "Table", "RecordBatch"):
        return bool(value.num_rows == 0 or value.num_columns == 0)
    rows, columns = value.shape
    return bool(rows == 0 or columns == 0)


def to_table(value: Any, label: str, target: str, *, verb: str = "returned") -> StepTable:
    """``value``, which ``label`` (``"step gather"``) returned for ``target``, as a table.

    Raises a one-line :class:`UsageError` naming ``label`` when ``value`` is none of
    :data:`ACCEPTED` or cannot be read; ``verb`` joins the two in messages (``"is"`` for a
    value the caller gave rather than a step returned).
    """
    what = _type_name(value)
    if isinstance(value, PurePath):
        return _from_file(Path(value), label)
    if _is(value, "pyarrow", "Table", "RecordBatch"):
        import pyarrow as pa

        table = value if isinstance(value, pa.Table) else pa.Table.from_batches([value])
        kind = "arrow"
    elif _is(value, "pandas", "DataFrame"):
        table, kind = _from_pandas(value, label, verb), "pandas"
    elif _is(value, "polars", "DataFrame"):
        try:
            table = value.to_arrow()
        except Exception as exc:  # polars raises several types, e.g. for Object columns
            raise UsageError(
                f"{label} {verb} a polars DataFrame that Arrow cannot hold "
                f"({_first_line(exc)}); convert its columns to plain types"
            ) from None
        kind = "polars"
    elif isinstance(value, dict):
        table, kind = _from_columns(value, label), "dict"
    else:
        raise UsageError(
            f"{label} returned a value of type {what}, which cannot be stored as {target}; "
            f"return {ACCEPTED}"
        )
    return StepTable(_normalise(table, label), kind, python_type=what)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_file(path: Path, label: str) -> StepTable:
    from mlkernel.data.readers import ReadOptions, read_source
    from mlkernel.data.sources import sniff

    if path.is_dir():
        raise UsageError(f"{label} returned the folder {path}; return the path of one data file")
    try:
        source = sniff(path)
        table = read_source(source, ReadOptions()).table
    except MLKernelError as exc:
        # The reader's message names the file and an option of `data add`; say it for a step.
        problem = str(exc).removeprefix(f"{path}: ").split("; ")[0]
        raise UsageError(
            f"{label} returned {path}, which cannot be ingested ({problem}); "
            "fix the file the step writes"
        ) from None
    return StepTable(table, source.format, source.compression, source_bytes=source.size)


def _from_pandas(frame: Any, label: str, verb: str = "returned") -> Any:
    import pyarrow as pa

    # A named index is data (a groupby's keys); an unnamed one is row numbers, not a column.
    keep_index = any(name is not None for name in frame.index.names)
    try:
        return pa.Table.from_pandas(frame, preserve_index=keep_index)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise UsageError(
            f"{label} {verb} a pandas DataFrame that Arrow cannot convert ({_first_line(exc)}); "
            "give each column one type"
        ) from None


def _from_columns(columns: dict[Any, Any], label: str) -> Any:
    import pyarrow as pa

    try:
        return pa.table({str(name): values for name, values in columns.items()})
    except (pa.ArrowException, TypeError, ValueError, KeyError) as exc:
        raise UsageError(
            f"{label} returned a dict that is not a table of columns ({_first_line(exc)}); "
            "return {column name: list or array of values}, all of one length"
        ) from None


def _plain(dtype: Any) -> Any:
    """The type an ingest would give a column of ``dtype`` (None: leave it as it is)."""
    import pyarrow as pa

    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_dictionary(dtype):
        values = _plain(dtype.value_type) or dtype.value_type
        if pa.types.is_string(values):
            return pa.dictionary(pa.int32(), pa.string())
        return values  # an ingest makes categories of text only
    return None


def _normalise(table: Any, label: str) -> Any:
    import pyarrow as pa

    from mlkernel.data import readers
    from mlkernel.data.sources import Source

    if table.num_columns == 0:
        raise UsageError(f"{label} returned a table with no columns; a dataset needs one")
    if table.num_rows == 0:
        raise UsageError(
            f"{label} returned a table with no rows; a dataset version needs one "
            "(return None to store nothing)"
        )
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        dtype = _plain(field.type)
        changed = dtype is not None and dtype != field.type
        fields.append(pa.field(field.name, dtype or field.type))  # nullable, no metadata
        columns.append(column.cast(dtype) if changed else column)
    table = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    # The ingest's own checks and category rule, as for a typed (Parquet) file: a source
    # named after the step, so that a refusal (two columns of one name) names the step.
    source = Source(Path(label), "parquet", None, 0, 0, 0)
    return readers.normalise(source, table, readers.ReadOptions()).combine_chunks()


def write_version(value: Any, store: ObjectStore, label: str, target: str) -> dict[str, Any]:
    """Store ``value`` as a version's Arrow IPC file in ``store``.

    Returns ``{"digest", "size", ...}`` with the properties the version records (see
    :func:`describe`), less what needs the metadata (:func:`schema_changes`, who made it).
    """
    from mlkernel.data.storage import commit, write_ipc

    converted = to_table(value, label, target)
    written = write_ipc(converted.table, store.staging)
    try:
        commit(store, written)
    finally:
        written.path.unlink(missing_ok=True)  # gone already once committed
    origin: dict[str, Any] = {"format": converted.format, "compression": converted.compression}
    if converted.python_type is not None:
        origin["python_type"] = converted.python_type
    if converted.source_bytes is not None:
        origin["source_bytes"] = converted.source_bytes
    return {
        "digest": written.digest,
        "size": written.size,
        **origin,
        **describe(converted.table, written),
    }

"""``data add``: parse sources, write the version's files, register them — in that order.

Registration is the last step, so an ingest that fails or is killed before it leaves no
version; its files are temporary until then (see :mod:`mlkernel.data.storage`). A
version's objects: the Arrow IPC file is the dataset artifact's digest (what ``open``
maps). A Parquet copy written at ingest (``parquet=True``) is listed in the artifact's
``properties["objects"]``, which ``mlk gc`` keeps; without it the copy is made on first
need (``k.data.parquet_path``). Bad rows set aside by ``quarantine`` become
``file:<name>.quarantine``.

Where the time goes (5,000,000 rows x 20 columns, 860 MB, 2 cores): the parse, on both
cores; then the Arrow file is written and hashed as it is written, while the source is
hashed on the other core. (Hashing the source during the parse, even at idle priority,
made the whole slower: 3.76 s against 3.43 s.) Parquet (zstd) would cost as much as the parse again, hence it
is made on first need unless asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.data import schema as schemas
from mlkernel.data import tables
from mlkernel.data.progress import Meter
from mlkernel.data.readers import BAD_ROW_MODES, BadRow, ReadOptions, memory_pool, read_source
from mlkernel.data.sources import (
    Hasher,
    Source,
    csv_delimiter,
    detect_delimiter,
    expand,
    sniff,
)
from mlkernel.data.storage import Written, commit, sweep, uncommit, write_ipc, write_parquet
from mlkernel.digest import of_bytes, of_file
from mlkernel.errors import UsageError
from mlkernel.refs import MAX_NAME, validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["SOURCE_COLUMN", "AddOptions", "IngestResult", "add", "add_table"]

SOURCE_COLUMN = "source_file"
MAX_LISTED_FILES = 1000


@dataclass(frozen=True, slots=True)
class AddOptions:
    name: str | None = None
    schema: str | Path | None = None
    on_bad_rows: str = "fail"
    encoding: str = "utf8"
    format: str | None = None
    progress: bool | Callable[[int, int], None] = True
    parquet: bool = False  # also store a Parquet copy now (else made on first need)
    null_values: tuple[str, ...] | None = None  # the fields that are missing; None: the default
    delimiter: str | None = None  # CSV's field separator; None: detected (see _delimiter)
    decimal: str = "."  # CSV's decimal mark: "." or ","


@dataclass(slots=True)
class IngestResult:
    record: ArtifactRecord
    created: bool  # False when identical content was already the latest version
    rows: int
    seconds: float
    bad_rows: list[BadRow] = field(default_factory=list)
    quarantine: ArtifactRecord | None = None

    @property
    def ref(self) -> str:
        return self.record.ref


def _check_encoding_name(encoding: str) -> None:
    import codecs

    from mlkernel.data.diagnose import codec

    try:
        codecs.lookup(codec(encoding))
    except LookupError:
        raise UsageError(
            f"unknown encoding {encoding!r}; pass a name Python knows, e.g. utf-8, latin-1, "
            "cp1252 or utf-16"
        ) from None


def derived_name(name: str, suffix: str, *, prefix: str = "") -> str:
    """``prefix + name + suffix``, shortened when that is longer than a name may be.

    A short result is under :data:`MAX_NAME` characters; a shortened one is exactly
    :data:`MAX_NAME`: the start of ``name``, ``-`` and 16 hex digits of its hash, then the
    suffix. So two names never share a derived name (short and shortened ones differ in
    length; shortened ones differ in their hash).
    """
    whole = f"{prefix}{name}{suffix}"
    if len(whole) < MAX_NAME:
        return whole
    tag = "-" + of_bytes(name.encode())[-16:]
    keep = MAX_NAME - len(prefix) - len(suffix) - len(tag)
    return f"{prefix}{name[:keep]}{tag}{suffix}"


def default_name(target: str | Path, first: Path) -> str:
    path = Path(str(target))
    if path.is_dir():
        base = path.resolve().name
    elif path.is_file():
        base = first.name.split(".")[0]
    else:  # a glob: name it after the folder it searches
        base = Path(str(target).split("*")[0]).name or first.parent.name
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._") or "dataset"
    return base


def add(
    ctx: Context,
    artifacts: ArtifactService,
    target: str | Path,
    options: AddOptions,
    *,
    execution_id: int | None = None,
    properties: dict[str, Any] | None = None,
) -> IngestResult:
    """Ingest ``target``; ``execution_id``: the run that produces the version (default: an
    execution ``data add NAME`` of its own); ``properties``: more for the version to record.
    """
    if options.on_bad_rows not in BAD_ROW_MODES:
        raise UsageError(
            f"on_bad_rows is {options.on_bad_rows!r}; use one of: {', '.join(BAD_ROW_MODES)}"
        )
    _check_encoding_name(options.encoding)
    started = time.monotonic()
    files = expand(target)
    sources = [sniff(p, options.format) for p in files]
    name = options.name if options.name is not None else default_name(target, files[0])
    validate_name(name, "dataset name")  # an empty --name is refused, not replaced
    column_types = schemas.load_schema_file(options.schema) if options.schema else {}
    delimiter, detected = _delimiter(sources, options.delimiter)
    read_opts = ReadOptions(options.on_bad_rows, column_types, options.encoding)
    if options.decimal not in (".", ","):
        raise UsageError(f"decimal mark {options.decimal!r} is neither '.' nor ','; pass one")
    if (
        options.decimal == ","
        and delimiter in (None, ",")
        and any(s.format == "csv" for s in sources)
    ):
        raise UsageError(
            "a decimal comma needs another field separator than the comma; pass --delimiter "
            "(e.g. ';')"
        )
    read_opts = dataclasses.replace(read_opts, delimiter=delimiter, decimal=options.decimal)
    if options.null_values is not None:
        read_opts = dataclasses.replace(read_opts, null_values=tuple(options.null_values))
    latest = _latest(ctx, name)
    unchanged = _unchanged(latest, sources, read_opts)
    if unchanged is not None:
        _note_output(ctx, execution_id, unchanged)
        return IngestResult(unchanged, False, int(unchanged.properties.get("rows", 0)), 0.0)

    staging = ctx.objects.staging
    sweep(staging)
    show = options.progress is not False
    callback = options.progress if callable(options.progress) else None
    meter = Meter(sum(s.size for s in sources), show=show, callback=callback, label=name)
    written: list[Written] = []
    try:
        try:
            table, bad = _read_all(sources, read_opts, meter, count_lines=show)
            _check_schema_names(column_types, table.column_names, target)
            meter.stage("writing")
            with Hasher(sources).start() as hasher:  # the sources, beside the write
                written = _write(table, staging, parquet=options.parquet)
                digests = hasher.finish()
        finally:
            meter.close()
        ipc, parquet = written[0], (written[1] if len(written) > 1 else None)
        if latest is not None and latest.digest == ipc.digest:
            _note_output(ctx, execution_id, latest)
            return IngestResult(latest, False, table.num_rows, time.monotonic() - started, bad)
        props = _properties(target, sources, digests, table, read_opts, latest, ipc, parquet)
        props = {**(properties or {}), **props}
        if detected:
            props["delimiter_detected"] = True  # options.delimiter was read off the file
        return _register(
            ctx, artifacts, name, props, written, bad, table.num_rows, started, execution_id
        )
    finally:
        for each in written:
            each.path.unlink(missing_ok=True)


def _delimiter(sources: list[Source], given: str | None) -> tuple[str | None, bool]:
    """The CSV field separator to parse with (None: the format's), and whether it was
    detected rather than given.

    Given, it is checked (:func:`sources.csv_delimiter`). Otherwise each CSV file's header
    is looked at (:func:`sources.detect_delimiter`): a file separated by ``;``, tab or ``|``
    is read with it, and a header that leaves it in doubt is refused. Files that disagree
    are refused: one version is read with one separator.
    """
    texts = [s for s in sources if s.format in ("csv", "tsv")]
    if given is not None:
        if not texts:
            raise UsageError(
                f"--delimiter applies to CSV and TSV files, not to {sources[0].format}; "
                "leave it out"
            )
        return csv_delimiter(given), False
    found = {s.path.name: detect_delimiter(s) for s in texts if s.format == "csv"}
    seen = {d for d in found.values() if d is not None}
    seen |= {"\t" for s in texts if s.format == "tsv" and seen - {","}}
    if len(seen) > 1:
        listed = ", ".join(f"{name} {d!r}" for name, d in list(found.items())[:5] if d)
        raise UsageError(
            f"the files are separated by different delimiters ({listed}); add them apart, "
            "or pass --delimiter"
        )
    if not seen or seen == {","}:
        return None, False
    return seen.pop(), True


def _check_schema_names(declared: dict[str, Any], columns: list[str], target: Any) -> None:
    """Refuse a schema naming a column the data lacks: a typo would silently do nothing."""
    unknown = [name for name in declared if name not in columns]
    if unknown:
        raise UsageError(
            f"--schema names {', '.join(map(repr, unknown))}, which {target} does not have; "
            f"its columns are {', '.join(columns)}"
        )


def add_table(
    ctx: Context,
    artifacts: ArtifactService,
    value: Any,
    options: AddOptions,
    *,
    execution_id: int | None = None,
    properties: dict[str, Any] | None = None,
) -> IngestResult:
    """Ingest an in-memory table (pandas or polars DataFrame, pyarrow Table or RecordBatch).

    The table is normalised as a pipeline step's is (:func:`mlkernel.data.tables.to_table`:
    text as ``string``, few-valued text as categories), so the version is the one ``data
    add`` of the same rows in a Parquet file gives; then stored and registered as any ingest.
    """
    started = time.monotonic()
    what = type(value).__name__
    if options.name is None:
        raise UsageError(f"name the dataset: k.data.add({what.lower()}, name='...')")
    name = options.name
    validate_name(name, "dataset name")
    _table_options_only(options, what)
    label = f"the value given for dataset {name!r}"
    if not tables.is_table(value):
        raise UsageError(
            f"cannot ingest a {what} as dataset {name!r}: give a file path, a pandas or polars "
            "DataFrame, or a pyarrow Table"
        )
    if tables.is_empty(value):
        raise UsageError(f"{label} has no rows or no columns; a dataset version needs both")
    converted = tables.to_table(value, label, f"dataset:{name}", verb="is")
    table = converted.table
    latest = _latest(ctx, name)
    staging = ctx.objects.staging
    sweep(staging)
    written: list[Written] = []
    try:
        written = _write(table, staging, parquet=options.parquet)
        ipc, parquet = written[0], (written[1] if len(written) > 1 else None)
        if latest is not None and latest.digest == ipc.digest:
            _note_output(ctx, execution_id, latest)
            return IngestResult(latest, False, table.num_rows, time.monotonic() - started)
        described = tables.describe(table, ipc, parquet)
        props: dict[str, Any] = {
            **(properties or {}),
            "format": converted.format,
            "compression": None,
            "source": f"{converted.python_type} in memory",
            "python_type": converted.python_type,
            **described,
            "schema_changes": tables.schema_changes(latest, described["schema"]),
            "options": {"parquet": options.parquet},
        }
        return _register(
            ctx, artifacts, name, props, written, [], table.num_rows, started, execution_id
        )
    finally:
        for each in written:
            each.path.unlink(missing_ok=True)


def _table_options_only(options: AddOptions, what: str) -> None:
    """Refuse the options that only a file's parse uses."""
    given = [
        flag
        for flag, used in (
            ("schema", options.schema is not None),
            ("format", options.format is not None),
            ("encoding", options.encoding != "utf8"),
            ("on_bad_rows", options.on_bad_rows != "fail"),
            ("null_values", options.null_values is not None),
            ("delimiter", options.delimiter is not None),
            ("decimal", options.decimal != "."),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"{', '.join(given)} applies to files, not to a {what}; cast the table's columns "
            "yourself, or write it to a file and add the file"
        )


def _note_output(ctx: Context, execution_id: int | None, record: ArtifactRecord) -> None:
    """A run that ingested content already stored still produced that version."""
    if execution_id is not None:
        ctx.meta.add_event(execution_id, record.id, "out")


def _write(table: Any, folder: Path, *, parquet: bool) -> list[Written]:
    """The Arrow file, and the Parquet copy if asked (on a second thread), in ``folder``."""
    if not parquet:
        return [write_ipc(table, folder)]
    box: dict[str, Any] = {}

    def parquet_job() -> None:
        try:
            box["parquet"] = write_parquet(table, folder)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=parquet_job, name="mlk-parquet", daemon=True)
    worker.start()
    try:
        ipc = write_ipc(table, folder)
    except BaseException:
        worker.join()
        if "parquet" in box:
            box["parquet"].path.unlink(missing_ok=True)
        raise
    worker.join()
    if "error" in box:
        ipc.path.unlink(missing_ok=True)
        raise box["error"]
    return [ipc, box["parquet"]]


def _latest(ctx: Context, name: str) -> ArtifactRecord | None:
    versions = ctx.table.versions("dataset", name)
    return versions[-1] if versions else None


def _stat_key(sources: list[Source]) -> list[list[Any]]:
    return [[str(s.path.resolve()), s.size, s.mtime_ns] for s in sources]


def _unchanged(
    latest: ArtifactRecord | None, sources: list[Source], options: ReadOptions
) -> ArtifactRecord | None:
    """The latest version, if it was made from these very bytes with these options.

    Files whose size and mtime match are hashed (a fraction of a parse) to be sure.
    """
    if latest is None:
        return None
    props = latest.properties
    if props.get("options") != _jsonable(options.key()):
        return None
    if props.get("source_stat") != _stat_key(sources):
        return None
    found = [of_file(s.path) for s in sources]
    return latest if _combine(sources, found) == props.get("source_digest") else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _combine(sources: list[Source], digests: list[str]) -> str:
    if len(sources) == 1:
        return digests[0]
    text = "".join(f"{s.path.name}\0{d}\n" for s, d in zip(sources, digests, strict=True))
    return of_bytes(text.encode())


def _read_all(
    sources: list[Source], options: ReadOptions, meter: Meter, *, count_lines: bool
) -> tuple[Any, list[BadRow]]:
    import pyarrow as pa

    tables: list[Any] = []
    bad: list[BadRow] = []
    for source in sources:
        result = read_source(source, options, meter.advance, count_lines=count_lines)
        bad.extend(result.bad_rows)
        tables.append(result.table)
    if len(tables) == 1:
        return tables[0], bad
    base = _common_root(sources)
    aligned: list[Any] = []
    for source, table in zip(sources, tables, strict=True):
        if SOURCE_COLUMN in table.column_names:
            raise UsageError(
                f"{source.path} already has a column {SOURCE_COLUMN!r}, which ingesting "
                "many files adds; rename it"
            )
        same = _align(sources[0], tables[0], source, table)
        label = str(source.path.resolve().relative_to(base)) if base else str(source.path)
        column = pa.array([label] * same.num_rows, pa.string()).dictionary_encode()
        aligned.append(same.append_column(SOURCE_COLUMN, column))
    pool = memory_pool()
    merged = pa.concat_tables(aligned, promote_options="none", memory_pool=pool)
    merged = merged.unify_dictionaries(pool)
    return merged, bad


def _common_root(sources: list[Source]) -> Path | None:
    try:
        return Path(os.path.commonpath([s.path.resolve().parent for s in sources]))
    except ValueError:
        return None


def _align(first: Source, expected: Any, source: Source, table: Any) -> Any:
    """``table`` cast to ``expected``'s schema where that loses nothing; else refuse."""
    problem = schemas.first_difference(expected.schema, table.schema)
    if problem is None:
        return table.cast(expected.schema) if table.schema != expected.schema else table
    if expected.schema.names == table.schema.names:
        try:
            widened = [
                _widen(a.type, b.type) for a, b in zip(expected.schema, table.schema, strict=True)
            ]
        except TypeError:
            widened = None
        if widened is not None and all(
            w == a.type for w, a in zip(widened, expected.schema, strict=True)
        ):
            return table.cast(expected.schema)
    raise UsageError(
        f"{source.path} does not match {first.path}: {problem}; make the files agree, "
        "or add them as separate datasets"
    )


def _widen(want: Any, have: Any) -> Any:
    import pyarrow as pa

    if want == have or pa.types.is_null(have):
        return want
    if (pa.types.is_floating(want) or pa.types.is_decimal(want)) and pa.types.is_integer(have):
        return want  # an integer column widens to float, or to the decimal of big integers
    if pa.types.is_dictionary(want) and (pa.types.is_dictionary(have) or pa.types.is_string(have)):
        return want
    raise TypeError


def _properties(
    target: str | Path,
    sources: list[Source],
    digests: list[str],
    table: Any,
    options: ReadOptions,
    latest: ArtifactRecord | None,
    ipc: Written,
    parquet: Written | None,
) -> dict[str, Any]:
    described = tables.describe(table, ipc, parquet)  # as pipeline steps' versions record
    return {
        "format": sources[0].format,
        "compression": sources[0].compression,
        "source": str(Path(str(target)).expanduser().resolve())
        if Path(str(target)).exists()
        else str(target),
        "source_digest": _combine(sources, digests),
        "source_bytes": sum(s.size for s in sources),
        "source_files": [
            {"path": str(s.path.resolve()), "digest": d, "bytes": s.size}
            for s, d in list(zip(sources, digests, strict=True))[:MAX_LISTED_FILES]
        ],
        "source_stat": _stat_key(sources),
        **described,
        "schema_changes": tables.schema_changes(latest, described["schema"]),
        "options": _jsonable(options.key()),
    }


def _register(
    ctx: Context,
    artifacts: ArtifactService,
    name: str,
    props: dict[str, Any],
    written: list[Written],
    bad: list[BadRow],
    rows: int,
    started: float,
    run_id: int | None = None,
) -> IngestResult:
    """Move the files into the store, then record the version (and its quarantine).

    The object store's ``writing()`` is held throughout: gc deletes nothing from the move
    into the store until the version exists. The execution stays of type ``register``, like
    any artifact recorded outside a run: ``mlk runs ls`` lists jobs, and an ingest is data
    arriving, not a job to watch. Inside a run (``run_id``), the run is the execution that
    produced the version.
    """
    quarantine_blob = None
    if bad and props["options"].get("on_bad_rows") == "quarantine":
        quarantine_blob = "".join(json.dumps(b.to_dict()) + "\n" for b in bad).encode()
    ipc = written[0]
    created: list[str] = []
    execution: int | None = None
    with ctx.objects.writing():
        try:
            for each in written:
                if commit(ctx.objects, each):
                    created.append(each.digest)
            execution = run_id if run_id is not None else _begin(ctx, name, props)
            quarantine = None
            if quarantine_blob is not None:
                quarantine = artifacts.log(
                    quarantine_blob,
                    kind="file",
                    name=derived_name(name, ".quarantine"),
                    properties={"format": "ndjson"},
                    execution_id=execution,
                    dedupe=False,
                )
                props["quarantine"] = quarantine.ref
            props["bad_rows"] = len(bad)
            seconds = time.monotonic() - started
            props["seconds"] = round(seconds, 3)
            record, _ = artifacts.register(
                "dataset",
                name,
                digest=ipc.digest,
                size=ipc.size,
                properties=props,
                execution_id=execution,
                dedupe=True,
            )
        except BaseException as exc:
            for digest in created:
                uncommit(ctx.objects, digest)
            if execution is not None and run_id is None:  # a run records its own outcome
                ctx.meta.finish_execution(execution, "failed", error=str(exc)[:500])
            raise
        if run_id is None:
            ctx.meta.finish_execution(
                execution,
                "completed",
                resources={
                    "seconds": round(seconds, 3),
                    "rows": rows,
                    "rows_per_s": rows / max(seconds, 1e-9),
                },
            )
    return IngestResult(record, True, rows, seconds, bad, quarantine)


def _begin(ctx: Context, name: str, props: dict[str, Any]) -> int:
    """The execution ``data add NAME`` of an ingest outside a run, with its source and
    options as parameters (an ingest records no Python environment, unlike the
    ``register`` execution of :meth:`ArtifactService.log`).
    """
    return ctx.meta.insert_execution(
        derived_name(name, "", prefix="data add "),
        "register",
        host=ctx.host,
        pid=os.getpid(),
        user=ctx.actor.name,
        params={"source": props["source"], **props["options"]},
    )

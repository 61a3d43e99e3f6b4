"""``mlk data add | ls | show | head | diff | export``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mlkernel.cli._args import add_json, count, open_kernel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "data",
        help="datasets: ingest CSV/JSON/Parquet, list, inspect, compare",
        epilog="example: mlk data add data/train.csv --name train",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    add = verbs.add_parser(
        "add",
        help="ingest a file, directory or glob as a new version",
        epilog="example: mlk data add 'incoming/*.csv' --name train --on-bad-rows quarantine",
    )
    add.add_argument(
        "path", metavar="PATH", help="a file, a directory, or a quoted glob such as 'data/*.csv'"
    )
    add.add_argument(
        "--name", metavar="NAME", help="dataset name (default: the file's or folder's name)"
    )
    add.add_argument("--schema", metavar="FILE", help="JSON/TOML file mapping columns to types")
    add.add_argument(
        "--on-bad-rows",
        choices=["fail", "skip", "quarantine"],
        default="fail",
        help="rows with the wrong field count: stop (default), drop, or keep aside",
    )
    add.add_argument(
        "--encoding", default="utf8", metavar="NAME", help="text encoding (default utf8)"
    )
    add.add_argument(
        "--null-values",
        metavar="LIST",
        help="comma-separated field values read as missing, '' for an empty field "
        "(default: '', NA, N/A, NULL, null, NaN, nan, None and pandas' other tokens)",
    )
    add.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="CSV field separator: one character, or tab, semicolon, pipe (default: ',', or "
        "the ';', tab or '|' that a header without a comma is split by)",
    )
    add.add_argument(
        "--decimal",
        choices=[".", ","],
        default=".",
        help="decimal mark in a CSV's numbers (default '.'; ',' reads 1,5 as 1.5)",
    )
    add.add_argument(
        "--format", choices=["csv", "tsv", "ndjson", "json", "parquet"], help="override sniffing"
    )
    add.add_argument(
        "--parquet",
        action="store_true",
        help="also store a Parquet copy now (default: made on first need)",
    )
    add.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_json(add)
    add.set_defaults(func=_add)

    ls = verbs.add_parser(
        "ls", help="datasets, newest version of each", epilog="example: mlk data ls --json"
    )
    add_json(ls)
    ls.set_defaults(func=_ls)

    show = verbs.add_parser(
        "show",
        help="one version: schema, rows, size, versions, lineage",
        epilog="example: mlk data show train@2",
    )
    show.add_argument("ref", metavar="REF", help="dataset reference: name[@version|@alias]")
    add_json(show)
    show.set_defaults(func=_show)

    head = verbs.add_parser(
        "head", help="the first rows of a version", epilog="example: mlk data head train -n 5"
    )
    head.add_argument("ref", metavar="REF", help="dataset reference: name[@version|@alias]")
    head.add_argument("-n", type=count, default=10, metavar="N", help="how many rows (default 10)")
    head.add_argument(
        "--columns",
        default=None,
        metavar="COLUMNS",
        help="comma-separated column names: only these columns, in this order (default: as many as fit the terminal)",
    )
    add_json(head)
    head.set_defaults(func=_head)

    diff = verbs.add_parser(
        "diff",
        help="schema and size differences between two versions",
        epilog="example: mlk data diff train@1 train@2",
    )
    diff.add_argument("a", metavar="A", help="the older version, e.g. train@1")
    diff.add_argument("b", metavar="B", help="the newer version, e.g. train@2")
    add_json(diff)
    diff.set_defaults(func=_diff)

    export = verbs.add_parser(
        "export",
        help="write a version as CSV, Parquet, Arrow or NDJSON",
        description="Write a dataset version to a file: the format comes from --format, else "
        "from the name (.csv, .parquet/.pq, .arrow/.feather/.ipc, .ndjson/.jsonl). The file "
        "appears whole or not at all; an existing one is kept unless --force.",
        epilog="example: mlk data export train@2 -o train.parquet",
    )
    export.add_argument("ref", metavar="REF", help="dataset reference: name[@version|@alias]")
    export.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="FILE",
        help="the file to write, - for standard output (with --format)",
    )
    export.add_argument(
        "--format",
        choices=["csv", "parquet", "arrow", "ndjson"],
        help="the file format (default: from the name's ending)",
    )
    export.add_argument("--force", action="store_true", help="overwrite a file that exists")
    export.set_defaults(func=_export)

    from mlkernel.cli.monitor import add_verbs

    add_verbs(verbs)  # profile, drift, watch: the monitor's verbs


def _add(args: argparse.Namespace) -> int:
    import sys

    from mlkernel.cli.render import console, emit_json, esc, human_bytes, human_duration

    with open_kernel(args) as k:
        result = k.data.add(
            args.path,
            name=args.name,
            schema=args.schema,
            on_bad_rows=args.on_bad_rows,
            encoding=args.encoding,
            format=args.format,
            progress=not (args.quiet or args.json),
            parquet=args.parquet,
            null_values=args.null_values.split(",") if args.null_values is not None else None,
            delimiter=args.delimiter,
            decimal=args.decimal,
        )
    props = result.record.properties
    if args.json:
        return emit_json(
            {
                "ref": result.ref,
                "created": result.created,
                "rows": result.rows,
                "seconds": result.seconds,
                "bad_rows": [b.to_dict() for b in result.bad_rows],
                "quarantine": result.quarantine.ref if result.quarantine else None,
                "properties": props,
            }
        )
    out = console()
    if not result.created:
        out.print(f"{result.ref} already holds this content; no new version")
        return 0
    rate = result.rows / result.seconds if result.seconds > 0 else 0.0
    out.print(
        f"[bold]{result.ref}[/]  {props['rows']:,} rows x {props['columns']} columns, "
        f"{human_bytes(props['bytes'])} stored, {human_duration(result.seconds)} "
        f"({rate:,.0f} rows/s)"
    )
    if props.get("delimiter_detected"):
        print(
            f"mlk: read as separated by {props['options']['delimiter']!r} (the header has no "
            "comma); pass --delimiter to choose another",
            file=sys.stderr,
        )
    if result.bad_rows:
        where = f" into {result.quarantine.ref}" if result.quarantine else ""
        lines = ", ".join(str(b.line) for b in result.bad_rows[:10])
        more = "…" if len(result.bad_rows) > 10 else ""
        print(
            f"mlk: set aside {len(result.bad_rows)} bad rows{where} (lines {lines}{more})",
            file=sys.stderr,
        )
    changes = props.get("schema_changes") or {}
    for column in changes.get("added", []):
        out.print(f"  + column {esc(column)}")
    for column in changes.get("removed", []):
        out.print(f"  - column {esc(column)}")
    for change in changes.get("changed", []):
        out.print(f"  ~ column {esc(change['name'])}: {change['from']} -> {change['to']}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_bytes, human_time, table

    with open_kernel(args) as k:
        records = k.data.ls()
    if args.json:
        return emit_json([r.to_dict() for r in records])
    table(
        ["dataset", "version", "rows", "columns", "size", "format", "created"],
        [
            (
                r.name,
                r.version,
                f"{r.properties['rows']:,}" if "rows" in r.properties else "not ingested",
                r.properties.get("columns"),
                human_bytes(r.properties.get("bytes", r.size)),
                r.properties.get("format"),
                human_time(r.created_at),
            )
            for r in records
        ],
        title="Datasets",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, esc, human_bytes, human_time, table

    with open_kernel(args) as k:
        shown = k.data.show(args.ref)
    if args.json:
        return emit_json(shown.to_dict())
    record, props = shown.record, shown.properties
    out = console()
    out.print(f"[bold]{record.ref}[/]")
    lines = [
        ("rows", f"{props.get('rows', 0):,}"),
        ("columns", props.get("columns")),
        ("size", _sizes(props, human_bytes)),
        (
            "source",
            f"{props.get('source')} ({props.get('format')}, {human_bytes(props['source_bytes'])})"
            if "source_bytes" in props  # a version a pipeline step made has no source file
            else f"{props.get('source')}",
        ),
        ("digest", f"blake3:{record.digest}"),
        ("created", f"{human_time(record.created_at)} by {record.created_by}"),
        ("versions", ", ".join(map(str, shown.detail.versions))),
        ("aliases", ", ".join(f"{a}→{v}" for a, v in shown.detail.aliases.items()) or "-"),
        ("made by", shown.produced_by_run or "-"),
        ("used by", ", ".join(shown.used_by) or "-"),
    ]
    if props.get("bad_rows"):
        lines.append(("bad rows", f"{props['bad_rows']} {props.get('quarantine') or 'skipped'}"))
    for key, value in lines:
        out.print(f"  {key:<10} {esc(value)}")
    table(
        ["column", "type"],
        [(c["name"], c["type"]) for c in props.get("schema", [])],
        title="Schema",
    )
    return 0


def _sizes(props: dict[str, Any], human_bytes: Callable[[float], str]) -> str:
    parts = [f"Arrow {human_bytes(props.get('ipc_bytes', 0))}"]
    if "parquet_bytes" in props:
        parts.append(f"Parquet {human_bytes(props['parquet_bytes'])}")
    return f"{human_bytes(props.get('bytes', 0))} ({', '.join(parts)})"


def _head(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, fit_table

    with open_kernel(args) as k:
        rows = k.data.head(args.ref, args.n)
        names = rows.column_names
        if args.columns is not None:
            wanted = _column_list(args.columns, names, args.ref)
            rows, names = rows.select(wanted), wanted
        records = rows.to_pylist()
    if args.json:
        return emit_json(records)
    left_out = fit_table(
        names,
        [["-" if r[n] is None else str(r[n]) for n in names] for r in records],
        title="Rows",
    )
    if left_out:
        more = ", ".join(left_out[:3]) + (", ..." if len(left_out) > 3 else "")
        console().print(
            f"({len(left_out)} more column(s): {more}; choose with --columns A,B,C)",
            markup=False,
            soft_wrap=False,  # wrapped at the terminal's width like the table
        )
    return 0


def _column_list(spec: str, names: list[str], ref: str) -> list[str]:
    """``--columns a,b,c`` checked against the dataset's columns (one-line error if not)."""
    from mlkernel.errors import UsageError

    wanted = [c.strip() for c in spec.split(",") if c.strip()]
    if not wanted:
        raise UsageError("--columns names no column; give them as --columns a,b,c")
    unknown = [c for c in wanted if c not in names]
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], names, n=1)
        known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise UsageError(
            f"{ref} has no column {unknown[0]!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; its columns are {known}"
        )
    return wanted


def _diff(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, esc, human_bytes

    with open_kernel(args) as k:
        diff = k.data.diff(args.a, args.b)
    if args.json:
        return emit_json(diff.to_dict())
    out = console()
    out.print(f"[bold]{diff.from_ref} → {diff.to_ref}[/]")
    if diff.same_content:
        out.print("  same content")
    for column in diff.schema.added:
        out.print(f"  + column {esc(column)}")
    for column in diff.schema.removed:
        out.print(f"  - column {esc(column)}")
    for change in diff.schema.changed:
        out.print(f"  ~ column {esc(change.name)}: {change.from_type} -> {change.to_type}")
    for key, counts in (("rows", diff.rows), ("columns", diff.columns)):
        a, b = counts.before, counts.after
        moved = f"{a:,} → {b:,} ({b - a:+,})" if a is not None and b is not None else "-"
        out.print(f"  {key:<8} {moved}")
    sizes = [
        human_bytes(n) if n is not None else "-" for n in (diff.bytes.before, diff.bytes.after)
    ]
    out.print(f"  {'bytes':<8} {sizes[0]} → {sizes[1]}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, esc, human_bytes
    from mlkernel.errors import UsageError
    from mlkernel.fsutil import is_stream

    with open_kernel(args) as k:
        if args.out == "-" and args.format is None:
            raise UsageError("standard output has no name to tell the format by; pass --format")
        out = "/dev/stdout" if args.out == "-" else args.out
        dest = k.data.export(args.ref, out, args.format, force=args.force)
    if not is_stream(dest):  # what went to /dev/stdout or a pipe is the output itself
        console().print(f"wrote {esc(dest)} ({human_bytes(dest.stat().st_size)})")
    return 0

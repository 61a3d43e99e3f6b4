"""``mlk init``, ``mlk status``, ``mlk gc``."""

from __future__ import annotations

import argparse

from mlkernel.cli._args import add_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="create a project (mlkernel.toml and .mlkernel/)",
        epilog="example: mlk init churn    # then: cd churn",
    )
    p.add_argument(
        "dir", nargs="?", default=".", metavar="DIR", help="the project folder (default: .)"
    )
    p.add_argument("--name", help="project name (default: the folder's name)")
    p.add_argument(
        "--metadata", metavar="URL", help="a postgresql:// URL instead of the local SQLite file"
    )
    p.set_defaults(func=_init)

    p = sub.add_parser(
        "status",
        help="summarise the project: artifacts, aliases, runs, storage",
        epilog="example: mlk status --json",
    )
    add_json(p)
    p.set_defaults(func=_status)

    p = sub.add_parser(
        "gc",
        help="remove objects no artifact references (dry run by default)",
        epilog="example: mlk gc --apply",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would go (the default)")
    mode.add_argument("--apply", action="store_true", help="really delete")
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="leave unreferenced objects younger than this, which a registration in flight "
        "may be about to reference (default: storage.gc_grace, 600)",
    )
    add_json(p)
    p.set_defaults(func=_gc)


def _init(args: argparse.Namespace) -> int:
    from pathlib import Path

    import mlkernel
    from mlkernel.cli.render import console, esc

    root = Path(args.project or args.dir)
    k = mlkernel.init(root, name=args.name, metadata_url=args.metadata)
    with k:
        out = console()
        out.print(
            f"Initialised project [bold]{k.name}[/] in {esc(k.root)} "
            f"(metadata: {esc(k.metadata_location)})"
        )
        note = k.objects_note()
        if note:
            out.print(f"note: {note}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from mlkernel.cli._args import open_kernel
    from mlkernel.cli.render import console, emit_json, esc, human_bytes, human_time, table

    with open_kernel(args) as k:
        info = k.status()
    if args.json:
        return emit_json(info.to_dict())
    out = console()
    out.print(f"[bold]{info.project}[/]  {esc(info.root)}")
    out.print(f"metadata: {esc(info.metadata)} ({info.backend})")
    out.print(f"storage:  {info.objects} objects, {human_bytes(info.stored_bytes)}")
    if info.note:
        out.print(f"note:     {info.note}")
    runs = info.runs
    out.print(
        f"runs:     {sum(runs.values())} ("
        + (", ".join(f"{n} {s}" for s, n in sorted(runs.items())) or "none")
        + f"), {info.metrics} metric values"
    )
    table(
        ["kind", "names", "versions", "size"],
        [
            (kind, c.names, c.versions, human_bytes(c.bytes))
            for kind, c in sorted(info.artifacts.items())
        ],
        title="Artifacts",
    )
    table(
        ["artifact", "latest", "size", "created", "by"],
        [
            (
                f"{a.kind}:{a.name}",
                a.version,
                human_bytes(a.size),
                human_time(a.created_at),  # local time, as `mlk ls` shows it
                a.created_by,
            )
            for a in info.latest
        ],
        title="Latest versions",
    )
    table(["alias", "points at"], info.aliases, title="Aliases")
    return 0


def _gc(args: argparse.Namespace) -> int:
    from mlkernel.cli._args import open_kernel
    from mlkernel.cli.render import console, emit_json, human_bytes

    with open_kernel(args) as k:
        report = k.gc(dry_run=not args.apply, grace=args.grace)
    if args.json:
        return emit_json(
            {
                "dry_run": report.dry_run,
                "removed": report.removed,
                "bytes": report.bytes,
                "kept": report.kept,
                "young": report.young,
                "grace": report.grace,
            }
        )
    out = console()
    verb = "would remove" if report.dry_run else "removed"
    for digest in report.removed:
        out.print(f"  {verb} {digest}")
    out.print(
        f"{verb} {len(report.removed)} unreferenced objects ({human_bytes(report.bytes)}); "
        f"kept {report.kept}"
        + ("; run `mlk gc --apply` to delete them" if report.dry_run and report.removed else "")
    )
    if report.young:
        out.print(
            f"skipped {len(report.young)} unreferenced objects younger than "
            f"{report.grace:g} s (maybe about to be registered); `--grace 0` includes them"
        )
    return 0

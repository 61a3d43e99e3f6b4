"""``mlk ls``, ``mlk show``, ``mlk lineage``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mlkernel.cli._args import add_json, count, open_kernel
from mlkernel.refs import KINDS

if TYPE_CHECKING:
    from rich.tree import Tree

    from mlkernel.artifacts.results import AliasChange
    from mlkernel.meta.records import Lineage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ls",
        help="list artifacts (newest version of each), optionally of a kind",
        epilog="example: mlk ls model --all",
    )
    p.add_argument(
        "kind",
        nargs="?",
        choices=KINDS,
        metavar="KIND",
        help="only this kind: " + ", ".join(KINDS),
    )
    p.add_argument("--all", action="store_true", help="every version, not only the newest")
    add_json(p)
    p.set_defaults(func=_ls)

    p = sub.add_parser(
        "show",
        help="details of one artifact version: digest, aliases, producer",
        epilog="example: mlk show model:churn@production",
    )
    p.add_argument("ref", metavar="REF", help="[kind:]name[@alias|@version]")
    add_json(p)
    p.set_defaults(func=_show)

    p = sub.add_parser(
        "get",
        help="copy an artifact's content out of the store",
        description="Copy an artifact's content out of the store. A dataset written to a "
        "name ending .csv, .parquet, .arrow or .ndjson is exported in that format (as "
        "`mlk data export`); to any other name, or into a folder, as its stored Arrow file.",
        epilog="example: mlk get model:churn@production -o model.pkl",
    )
    p.add_argument("ref", metavar="REF", help="[kind:]name[@alias|@version]")
    p.add_argument(
        "-o",
        "--out",
        default=".",
        metavar="PATH",
        help="file or folder to write, - for standard output (default: .)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip re-hashing the object")
    p.add_argument("--force", action="store_true", help="overwrite a file that exists")
    p.set_defaults(func=_get)

    p = sub.add_parser(
        "verify",
        help="re-hash every stored object; report missing or altered",
        epilog="example: mlk verify --json",
    )
    add_json(p)
    p.set_defaults(func=_verify)

    p = sub.add_parser(
        "lineage",
        help="the steps and artifacts upstream or downstream of REF",
        epilog="example: mlk lineage dataset:train --down",
    )
    p.add_argument("ref", metavar="REF", help="[kind:]name[@alias|@version]")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--up", action="store_true", help="what REF was made from (the default)")
    way.add_argument("--down", action="store_true", help="what was made from REF")
    p.add_argument(
        "--depth",
        type=count,
        default=100,
        metavar="N",
        help="how many steps to follow (default 100)",
    )
    add_json(p)
    p.set_defaults(func=_lineage)


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_bytes, human_time, table

    with open_kernel(args) as k:
        records = k.ls(args.kind)
        if args.all:
            records = [v for r in records for v in k.versions(r)]
        aliases = k.aliases()
    if args.json:
        return emit_json([r.to_dict() for r in records])
    by_version: dict[tuple[str, str, int], list[str]] = {}
    for (kind, name, alias), version in aliases.items():
        by_version.setdefault((kind, name, version), []).append(alias)
    table(
        ["kind", "name", "version", "aliases", "size", "created", "by"],
        [
            (
                r.kind,
                r.name,
                r.version,
                ",".join(sorted(by_version.get((r.kind, r.name, r.version), []))),
                human_bytes(r.size),
                human_time(r.created_at),
                r.created_by,
            )
            for r in records
        ],
        title="Artifacts",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, esc, human_bytes, human_time

    with open_kernel(args) as k:
        info = k.show(args.ref)
    if args.json:
        return emit_json(info.to_dict())
    record = info.record
    out = console()
    out.print(f"[bold]{record.ref}[/]")
    rows: list[tuple[str, Any]] = [
        ("digest", f"blake3:{record.digest}"),
        ("size", human_bytes(record.size)),
        ("created", f"{human_time(record.created_at)} by {record.created_by}"),
        ("versions", ", ".join(map(str, info.versions))),
        ("aliases", ", ".join(f"{a}→{v}" for a, v in info.aliases.items()) or "-"),
    ]
    producer = info.produced_by
    if producer is not None:
        rows.append(("produced by", f"{producer.type} {producer.name} #{producer.id}"))
        if producer.git_commit:
            dirty = " (dirty)" if producer.git_dirty else ""
            rows.append(("code", f"git {producer.git_commit[:12]}{dirty}"))
    for key, value in record.properties.items():
        rows.append((key, value))
    for key, value in rows:
        out.print(f"  {key:<12} {esc(value)}")
    if info.alias_history:
        out.print("  alias history (oldest first)")
        for move in info.alias_history:
            out.print(f"    {alias_move(move)}", markup=False)
    return 0


def alias_move(move: AliasChange) -> str:
    """One alias move in words: ``2026-12-04 16:35:10  production  1 -> 2  by ana``."""
    from mlkernel.cli.render import human_time

    was = "-" if move.from_version is None else move.from_version
    now = "(removed)" if move.to_version is None else move.to_version
    return f"{human_time(move.at)}  {move.alias}  {was} -> {now}  by {move.by or '?'}"


def lineage_tree(lineage: Lineage) -> Tree:
    from rich.tree import Tree

    def label(artifact_id: int) -> str:
        return f"[bold]{lineage.artifacts[artifact_id].ref}[/]"

    def run_label(execution_id: int) -> str:
        ex = lineage.executions.get(execution_id)
        if ex is None:
            return f"#{execution_id}"
        return f"[cyan]{ex.type} {ex.name} #{ex.id}[/] ({ex.state})"

    links: dict[int, dict[int, list[int]]] = {}
    for edge in lineage.edges:
        near, far = (
            (edge.child_id, edge.parent_id)
            if lineage.direction == "up"
            else (edge.parent_id, edge.child_id)
        )
        links.setdefault(near, {}).setdefault(edge.execution_id, []).append(far)

    root = Tree(label(lineage.root.id))
    if lineage.direction == "up" and not links.get(lineage.root.id):
        producer = lineage.root.execution_id
        if producer is not None:
            root.add(f"← {run_label(producer)}")

    expanded: set[int] = {lineage.root.id}

    def grow(node: Tree, artifact_id: int) -> None:
        arrow = "←" if lineage.direction == "up" else "→"
        for execution_id, others in sorted(links.get(artifact_id, {}).items()):
            branch = node.add(f"{arrow} {run_label(execution_id)}")
            for other in sorted(set(others)):
                if other in expanded and links.get(other):
                    branch.add(f"{label(other)} [dim](shown above)[/]")
                    continue
                expanded.add(other)
                grow(branch.add(label(other)), other)

    grow(root, lineage.root.id)
    return root


def _lineage(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json

    direction = "down" if args.down else "up"
    with open_kernel(args) as k:
        lineage = k.lineage(args.ref, direction, args.depth)
    if args.json:
        return emit_json(
            {
                "root": lineage.root.to_dict(),
                "direction": direction,
                "edges": [
                    {
                        "child": lineage.artifacts[e.child_id].ref,
                        "execution": e.execution_id,
                        "parent": lineage.artifacts[e.parent_id].ref,
                        "depth": e.depth,
                    }
                    for e in lineage.edges
                ],
                "executions": {i: x.to_dict() for i, x in lineage.executions.items()},
            }
        )
    console().print(lineage_tree(lineage))
    return 0


def _get(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlkernel.cli.render import console, esc
    from mlkernel.fsutil import is_stream

    with open_kernel(args) as k:
        out = Path("/dev/stdout" if args.out == "-" else args.out)
        dest = k.export(args.ref, out, verify=not args.no_verify, force=args.force)
    if not is_stream(dest):  # what went to /dev/stdout or a pipe is the output itself
        console().print(f"wrote {esc(dest)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json
    from mlkernel.errors import IntegrityError

    with open_kernel(args) as k:
        problems = k.verify()
    if args.json:
        emit_json([{"ref": r.ref, "problem": p} for r, p in problems])
    else:
        out = console()
        for record, problem in problems:
            out.print(f"{record.ref}: {problem}")
        if not problems:
            out.print("every object is present and matches its digest")
    if problems:
        return IntegrityError.exit_code
    return 0

"""``mlk models ls``, ``mlk models show``: the model registry."""

from __future__ import annotations

import argparse

from mlkernel.cli._args import add_json, open_kernel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models",
        help="the model registry: versions, flavors, signatures",
        epilog="example: mlk models show churn@production",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser(
        "ls",
        help="every model's latest version, its flavor and aliases",
        epilog="example: mlk models ls --json",
    )
    add_json(ls)
    ls.set_defaults(func=_ls)
    show = verbs.add_parser(
        "show",
        help="one model version: flavor, input signature, metrics, lineage",
        epilog="example: mlk models show churn@3",
    )
    show.add_argument("ref", metavar="MODEL", help="the model version: NAME[@ALIAS|@N]")
    add_json(show)
    show.set_defaults(func=_show)
    history = verbs.add_parser(
        "history",
        help="every alias move of a model: who, when, from which version to which",
        epilog="example: mlk models history churn",
    )
    history.add_argument("name", metavar="NAME", help="the model")
    add_json(history)
    history.set_defaults(func=_history)


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_time, table

    with open_kernel(args) as k:
        models = k.models.ls()
    if args.json:
        return emit_json([m.to_dict() for m in models])
    table(
        ["model", "latest", "flavor", "aliases", "created", "by"],
        [
            (
                m.record.name,
                m.record.version,
                m.flavor + (" (unsafe)" if m.unsafe else ""),
                ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())) or "-",
                human_time(m.record.created_at),
                m.record.created_by,
            )
            for m in models
        ],
        title="Models",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, esc, human_bytes, human_time

    with open_kernel(args) as k:
        info = k.models.show(args.ref)
    if args.json:
        return emit_json(info.to_dict())
    out = console()
    record = info.record
    out.print(f"[bold]{record.ref}[/]")
    flavor = info.flavor
    if info.unsafe:
        flavor += " — UNSAFE: loading it unpickles arbitrary code"
    rows = [
        ("flavor", flavor),
        ("class", info.model_class or "-"),
        ("libraries", ", ".join(f"{n} {v}" for n, v in sorted(info.libraries.items())) or "-"),
        ("size", human_bytes(record.size)),
        ("created", f"{human_time(record.created_at)} by {record.created_by}"),
        ("versions", ", ".join(map(str, info.versions))),
        ("aliases", ", ".join(f"{a}→{v}" for a, v in sorted(info.aliases.items())) or "-"),
        ("run", info.run or "- (logged outside a run)"),
        ("inputs", ", ".join(info.inputs) or "-"),
        ("metrics", ", ".join(f"{k}={v:.6g}" for k, v in sorted(info.metrics.items())) or "-"),
    ]
    for key, value in rows:
        out.print(f"  {key:<10} {esc(value)}")
    if info.signature is None:
        out.print("  signature  - (none recorded: pass example= or training= when logging)")
    else:
        out.print("  signature")
        for column in info.signature.inputs:
            optional = " (optional)" if column.optional else ""
            out.print(f"    {esc(column.name)}: {column.type}{optional}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from mlkernel.cli.artifacts import alias_move
    from mlkernel.cli.render import emit_json

    with open_kernel(args) as k:
        moves = k.models.history(args.name)
    if args.json:
        return emit_json([m.to_dict() for m in moves])
    if not moves:
        print(
            f"model {args.name} has no alias moves yet (`mlk alias set model:{args.name}@N production`)"
        )
    for move in moves:
        print(alias_move(move))
    return 0

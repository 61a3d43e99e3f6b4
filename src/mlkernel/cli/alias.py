"""``mlk alias set | rm | rollback``."""

from __future__ import annotations

import argparse

from mlkernel.cli._args import open_kernel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alias",
        help="move names such as 'production' between versions",
        epilog="example: mlk alias set model:churn@3 production",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    s = verbs.add_parser(
        "set",
        help="point ALIAS at the version REF names",
        epilog="example: mlk alias set model:churn@3 production",
    )
    s.add_argument("ref", metavar="REF", help="kind:name@version, e.g. model:churn@3")
    s.add_argument("alias", metavar="ALIAS", help="the alias to move, e.g. production, staging")
    s.set_defaults(func=_set)
    r = verbs.add_parser(
        "rm",
        help="remove ALIAS from REF's artifact",
        epilog="example: mlk alias rm model:churn staging",
    )
    r.add_argument("ref", metavar="REF", help="kind:name, e.g. model:churn")
    r.add_argument("alias", metavar="ALIAS", help="the alias to remove, e.g. staging")
    r.set_defaults(func=_rm)
    b = verbs.add_parser(
        "rollback",
        help="move ALIAS back to the version it pointed at before",
        epilog="example: mlk alias rollback model:churn production",
    )
    b.add_argument("ref", metavar="REF", help="kind:name, e.g. model:churn")
    b.add_argument("alias", metavar="ALIAS", help="the alias to move back, e.g. production")
    b.set_defaults(func=_rollback)


def _set(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console

    with open_kernel(args) as k:
        record, before = k.alias_set(args.ref, args.alias)
    was = f" (was version {before})" if before is not None else ""
    console().print(f"{record.kind}:{record.name}@{args.alias} → version {record.version}{was}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console

    with open_kernel(args) as k:
        before = k.alias_rm(args.ref, args.alias)
    console().print(f"removed alias {args.alias!r} (it pointed at version {before})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console

    with open_kernel(args) as k:
        record, before = k.alias_rollback(args.ref, args.alias)
    was = f"was version {before}" if before is not None else "it had been removed"
    console().print(f"{record.kind}:{record.name}@{args.alias} → version {record.version} ({was})")
    return 0

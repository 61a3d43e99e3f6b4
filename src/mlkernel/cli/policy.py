"""``mlk policy``: pools and time-window policies.

    mlk policy show [--json]                   the window and pool weights now
    mlk policy plan [--hours 24] [--json]      the next hours as a table
    mlk policy apply                           write the weights now (through the controller)
    mlk policy suggest [--history DB] [--json] off-peak windows learned from load history

The ``[sched]`` table is read from ``--config FILE`` or the nearest ``mlkernel.toml``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlkernel.sched.service import SchedService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pol = sub.add_parser(
        "policy",
        help="resource pools and time-window policies",
        epilog="example: mlk policy plan --hours 12",
    )
    psub = pol.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help="a TOML file with a [sched] table (default: the project's mlkernel.toml)",
        )
        p.add_argument("--json", action="store_true", help="print JSON for scripts")

    show = psub.add_parser(
        "show", help="the active window and pool weights now", epilog="example: mlk policy show"
    )
    common(show)
    show.set_defaults(func=show_cmd)
    plan = psub.add_parser(
        "plan",
        help="the next hours as a table",
        epilog="example: mlk policy plan --hours 48 --start 2026-03-02T00:00",
    )
    common(plan)
    plan.add_argument(
        "--hours", type=int, default=24, metavar="N", help="how many hours (default 24)"
    )
    plan.add_argument("--start", default=None, metavar="TIME", help="ISO date-time (default: now)")
    plan.set_defaults(func=plan_cmd)
    apply = psub.add_parser(
        "apply", help="write the policy's weights now", epilog="example: mlk policy apply"
    )
    common(apply)
    apply.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    apply.set_defaults(func=apply_cmd)
    suggest = psub.add_parser(
        "suggest",
        help="propose off-peak windows from load history",
        epilog="example: mlk policy suggest --min-days 7",
    )
    common(suggest)
    suggest.add_argument(
        "--history",
        default=None,
        metavar="FILE",
        help="the load history SQLite file (default: the one the controller keeps)",
    )
    suggest.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    suggest.add_argument(
        "--min-days",
        type=int,
        default=14,
        metavar="N",
        help="days of history needed before suggesting (default 14)",
    )
    suggest.set_defaults(func=suggest_cmd)


def _service(args: argparse.Namespace, *, with_table: bool = True) -> SchedService:
    """The scheduler for the OS user with the ``[sched]`` table of ``--config`` or of the
    nearest mlkernel.toml (at or above ``-C``, else the current folder)."""
    from pathlib import Path

    from mlkernel.authz import Actor
    from mlkernel.sched.service import SchedService

    rd = Path(args.runtime_dir) if getattr(args, "runtime_dir", None) else None
    if not with_table:
        return SchedService(Actor.current(), runtime_dir=rd)
    return SchedService.from_files(
        Actor.current(),
        config_file=Path(args.config) if args.config else None,
        start=Path(getattr(args, "project", None) or "."),
        runtime_dir=rd,
    )


def show_cmd(args: argparse.Namespace) -> int:
    import json

    state = _service(args).policy_now()
    if args.json:
        print(json.dumps(state.to_dict(), indent=2))
        return 0
    from rich.table import Table

    from mlkernel.cli.render import rich_console

    t = Table(title=f"policy now ({state.at:%a %H:%M}): window {state.window}")
    for col in ("pool", "weight", "share %", "guarantee %", "maximum %", "cpu.shares"):
        t.add_column(col, justify="left" if col == "pool" else "right")
    for r in state.pools:
        t.add_row(
            r.pool,
            f"{r.weight:g}",
            f"{r.share:g}",
            f"{r.guarantee:g}",
            "-" if r.maximum is None else f"{r.maximum:g}",
            str(r.cpu_shares),
        )
    rich_console().print(t)
    return 0


def plan_cmd(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime

    from mlkernel.errors import UsageError

    try:
        start = datetime.fromisoformat(args.start) if args.start else None
    except ValueError:
        raise UsageError(
            f"--start {args.start!r} is not an ISO date-time like 2025-03-03T08:00"
        ) from None
    plan = _service(args).plan(start, args.hours)
    if args.json:
        print(json.dumps([r.to_dict() for r in plan.rows], indent=2))
        return 0
    from rich.table import Table

    from mlkernel.cli.render import console

    t = Table(title=f"policy plan, next {plan.hours} h (weights; share of CPU under contention)")
    t.add_column("hours", no_wrap=True)
    t.add_column("window", no_wrap=True)
    for p in plan.pools:
        t.add_column(p, justify="right")
    for span in plan.spans:  # identical consecutive hours are one row
        total = sum(span.weights.values())
        t.add_row(
            span.label,
            span.window,
            *(f"{span.weights[p]:.0f} ({100 * span.weights[p] / total:.0f}%)" for p in plan.pools),
        )
    console().print(t)
    return 0


def apply_cmd(args: argparse.Namespace) -> int:
    import json

    applied = _service(args).apply()
    if args.json:
        print(json.dumps(applied.to_dict(), indent=2))
        return 0
    if applied.note:
        print(applied.note)
    print(f"{len(applied.changes)} value(s) changed")
    for line in applied.changes:
        print(f"  {line}")
    return 0


def suggest_cmd(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    history = Path(args.history) if args.history else None
    # The history alone decides: no [sched] table is read.
    s = _service(args, with_table=False).suggest(history, min_days=args.min_days)
    if args.json:
        print(json.dumps(s.to_dict(), indent=2))
        return 0
    print(s.reason)
    if s.ok:
        print("Proposed [sched] windows (review, then add to mlkernel.toml):")
        print("windows = [")
        for w in s.windows:
            print(f'  "{w}",')
        print("]")
    return 0

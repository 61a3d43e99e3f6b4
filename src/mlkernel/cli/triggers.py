"""``mlk triggers ls | run-pending | fire``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mlkernel.cli._args import add_json, open_kernel

if TYPE_CHECKING:
    from mlkernel.cli.run import Terminal
    from mlkernel.pipeline.triggers import FireResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "triggers",
        help="continuous training: list triggers, fire those due",
        epilog="example: mlk triggers run-pending    # e.g. from cron every few minutes",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser(
        "ls",
        help="triggers from mlkernel.toml, when they last fired",
        epilog="example: mlk triggers ls --json",
    )
    add_json(ls)
    ls.set_defaults(func=_ls)
    pending = verbs.add_parser(
        "run-pending",
        help="fire every trigger that is due now",
        epilog="example: mlk triggers run-pending --now 2026-05-01T02:00",
    )
    pending.add_argument(
        "--now", metavar="TIME", help="pretend it is TIME (ISO 8601, local), to try schedules"
    )
    add_json(pending)
    pending.set_defaults(func=_run_pending)
    fire = verbs.add_parser(
        "fire",
        help="fire one trigger now, whatever its condition",
        epilog="example: mlk triggers fire retrain-on-drift",
    )
    fire.add_argument(
        "name", metavar="NAME", help="the trigger, as named in mlkernel.toml [triggers.NAME]"
    )
    add_json(fire)
    fire.set_defaults(func=_fire)


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_time, table

    with open_kernel(args) as k:
        rows = k.pipelines.triggers()
    if args.json:
        return emit_json([r.to_dict() for r in rows])
    table(
        ["name", "type", "condition", "pipeline", "last fired", "last run", "next"],
        [
            (
                r.name, r.type, r.condition, r.pipeline, human_time(r.last_fired),
                f"{r.last_run} ({r.last_state})" if r.last_run else None,
                human_time(r.next) if r.next else None,
            )
            for r in rows
        ],
        title="Triggers",
    )  # fmt: skip
    return 0


def _echo(args: argparse.Namespace) -> Terminal:
    """Live output that survives its reader going away (``mlk triggers run-pending | head``):
    the runs and the triggers' state are recorded, the exit status is theirs."""
    import sys

    from mlkernel.cli.run import Terminal

    stream = sys.stderr if args.json else sys.stdout  # bound now: inline steps redirect stdout
    return Terminal(stream)


def _emit(data: object) -> int:
    import sys

    from mlkernel.cli.render import emit_json
    from mlkernel.cli.run import drop_output

    try:
        return emit_json(data)
    except BrokenPipeError:
        drop_output(sys.stdout)
        return 0


def _run_pending(args: argparse.Namespace) -> int:
    from mlkernel.errors import UsageError

    now = None
    if args.now:
        from datetime import datetime

        try:
            now = datetime.fromisoformat(args.now).timestamp()
        except ValueError:
            raise UsageError(
                f"--now {args.now!r} is not ISO 8601; write e.g. 2024-05-01T02:00"
            ) from None
    echo = _echo(args)
    with open_kernel(args) as k:
        fired = k.pipelines.run_pending(now=now, echo=echo)
    failed = [f for f in fired if f.state != "completed"]
    if args.json:
        return _emit([f.to_dict() for f in fired])
    if not fired:
        echo("no trigger is due")
    for f in failed:
        echo(_failure(f))
    return 1 if failed else 0


def _failure(outcome: FireResult) -> str:
    """A trigger whose run did not complete, or never started (its pipeline cannot load)."""
    if outcome.run is None:
        return f"trigger {outcome.trigger}: no run started: {outcome.error}"
    return f"trigger {outcome.trigger}: run {outcome.run} {outcome.state}: {outcome.error}"


def _fire(args: argparse.Namespace) -> int:
    with open_kernel(args) as k:
        outcome = k.pipelines.fire(args.name, echo=_echo(args))
    if args.json:
        return _emit(outcome.to_dict())
    if outcome.state == "completed":
        return 0
    _echo(args)(_failure(outcome))  # it printed that it fired; say why nothing ran well
    return 1

"""``mlk doctor``: the scheduler backends this machine offers and checks of mlkernel's parts.

mlk doctor [--json] [--runtime-dir DIR] [--config FILE]

Exits 1 when a check fails (warnings do not), so scripts can gate on it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = sub.add_parser(
        "doctor",
        help="check this machine: scheduler backends, controller, journal, history",
        epilog="example: mlk doctor --json",
    )
    doc.add_argument("--json", action="store_true", help="print JSON for scripts")
    doc.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    doc.add_argument(
        "--config", default=None, metavar="FILE", help="a TOML file with a [sched] table"
    )
    doc.set_defaults(func=doctor_cmd)


def doctor_cmd(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mlkernel.authz import Actor
    from mlkernel.sched.service import SchedService

    sched = SchedService.from_files(  # a bad [sched] table is the doctor's failing check
        Actor.current(),
        config_file=Path(args.config) if args.config else None,
        start=Path(getattr(args, "project", None) or "."),
        runtime_dir=Path(args.runtime_dir) if args.runtime_dir else None,
    )
    diag = sched.doctor()
    code = 0 if diag.ok else 1
    if args.json:
        print(json.dumps(diag.to_dict(), indent=2))
        return code
    from rich.markup import escape
    from rich.table import Table

    from mlkernel.cli.render import rich_console

    con = rich_console(soft_wrap=True)
    b = diag.report
    t = Table(title="scheduler backends")
    for col in ("resource", "active", "why not better"):
        t.add_column(col)
    for res in ("cpu", "io", "memory", "pause"):
        t.add_row(res, getattr(b, res), escape("\n".join(b.why_not(res))) or "-")
    con.print(t)
    marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    c = Table(title="checks")
    for col in ("check", "", "detail"):
        c.add_column(col)
    for check in diag.checks:
        c.add_row(check.name, marks[check.status], escape(check.detail))
    con.print(c)
    con.print("all checks passed" if diag.ok else "some checks failed: see the details above")
    return code

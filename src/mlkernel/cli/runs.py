"""``mlk runs ls | show``."""

from __future__ import annotations

import argparse

from mlkernel.cli._args import add_json, open_kernel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help="tracked runs: list them, show one")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser("ls", help="the newest runs first")
    ls.add_argument("--state", choices=["running", "completed", "failed", "cancelled", "cached"])
    ls.add_argument("--name", help="only runs with this name")
    ls.add_argument("-n", "--limit", type=int, default=50, help="how many (default 50)")
    add_json(ls)
    ls.set_defaults(func=_ls)
    show = verbs.add_parser("show", help="one run: params, metrics, inputs, outputs, provenance")
    show.add_argument("id", type=int)
    add_json(show)
    show.set_defaults(func=_show)


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_duration, human_time, table

    with open_kernel(args) as k:
        runs = k.runs(limit=args.limit, state=args.state, name=args.name)
    if args.json:
        return emit_json([r.to_dict() for r in runs])
    table(
        ["id", "name", "state", "started", "duration", "user", "error"],
        [
            (
                r.id,
                r.name,
                r.state,
                human_time(r.started_at),
                human_duration(r.duration),
                r.user,
                (r.error or "")[:60],
            )
            for r in runs
        ],
        title="Runs",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, human_duration, human_time, table

    with open_kernel(args) as k:
        info = k.run_info(args.id)
    if args.json:
        return emit_json(info)
    out = console()
    out.print(f"[bold]run #{info['id']} {info['name']}[/]  {info['state']}")
    lines = [
        ("started", human_time(info["started_at"])),
        ("duration", human_duration(info["duration"])),
        ("host/pid", f"{info['host']} / {info['pid']} ({info['user']})"),
        (
            "code",
            info["git_commit"]
            and info["git_commit"][:12] + (" dirty" if info["git_dirty"] else ""),
        ),
        ("environment", info.get("environment")),
        ("inputs", ", ".join(info["inputs"]) or "-"),
        ("outputs", ", ".join(info["outputs"]) or "-"),
        ("error", info["error"]),
    ]
    for key, value in lines:
        if value:
            out.print(f"  {key:<12} {value}")
    if info["params"]:
        table(["param", "value"], sorted(info["params"].items()), title="Parameters")
    if info["metrics"]:
        table(
            ["metric", "last", "min", "max", "steps"],
            [
                (key, f"{m['last']:.6g}", f"{m['min']:.6g}", f"{m['max']:.6g}", m["steps"])
                for key, m in sorted(info["metrics"].items())
            ],
            title="Metrics",
        )
    return 0

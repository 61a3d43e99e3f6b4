"""``mlk pipelines ls | show``."""

from __future__ import annotations

import argparse
from typing import Any

from mlkernel.cli._args import add_json, open_kernel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "pipelines",
        help="pipelines declared in mlkernel.toml: list, draw",
        epilog="example: mlk pipelines show churn",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser(
        "ls", help="declared pipelines and their last run", epilog="example: mlk pipelines ls"
    )
    add_json(ls)
    ls.set_defaults(func=_ls)
    show = verbs.add_parser(
        "show",
        help="one pipeline's steps, drawn as a graph",
        epilog="example: mlk pipelines show pipelines/churn.py:churn",
    )
    show.add_argument(
        "pipeline",
        metavar="PIPELINE",
        help="a declared name, file.py:function or module:function",
    )
    show.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE",
        help="set a parameter, as for `mlk run` (KEY or STEP.KEY; VALUE is read as TOML)",
    )  # fmt: skip
    add_json(show)
    show.set_defaults(func=_show)


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_time, table

    with open_kernel(args) as k:
        declared = k.pipelines.declared()
        rows: list[dict[str, Any]] = []
        for name, target in sorted(declared.items()):
            last = k.pipelines.last_run(name)
            rows.append(
                {
                    "name": name,
                    "target": target,
                    "last_run": last.id if last else None,
                    "last_state": last.state if last else None,
                    "last_started": last.started_at if last else None,
                }
            )
    if args.json:
        return emit_json(rows)
    table(
        ["name", "target", "last run", "state", "started"],
        [
            (r["name"], r["target"], r["last_run"], r["last_state"], human_time(r["last_started"]))
            for r in rows
        ],
        title="Pipelines",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json
    from mlkernel.pipeline.params import parse_assignments

    with open_kernel(args) as k:
        graph = k.pipelines.graph(args.pipeline, parse_assignments(args.param))
    if args.json:
        return emit_json(
            {
                "name": graph.name,
                "params": graph.params,
                "steps": [
                    {
                        "name": n.name,
                        "upstream": n.upstream,
                        "inputs": [str(v) for v in n.args.values() if hasattr(v, "ref")],
                        "params": n.params,
                        "output": getattr(n.step, "output", None),
                        "cache": n.options.cache,
                        "retries": n.options.retries,
                        "timeout": n.options.timeout,
                    }
                    for n in graph.nodes.values()
                ],
            }
        )
    print(graph.draw())
    return 0

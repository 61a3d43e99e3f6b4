"""``mlk runs ls | show | logs | cancel | fail``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlkernel.cli._args import add_json, count, open_kernel

if TYPE_CHECKING:
    from mlkernel.pipeline.infos import StepBrief, StepInfo

STATES = ["running", "lost", "completed", "failed", "cancelled", "cached", "skipped"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "runs",
        help="tracked and pipeline runs: list, show, logs, cancel, fail",
        epilog="example: mlk runs ls --state failed",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser(
        "ls",
        help="the newest runs first (pipeline runs with their steps)",
        epilog="example: mlk runs ls --state failed -n 5",
    )
    ls.add_argument("--state", choices=STATES, help="only runs in this state")
    ls.add_argument("--name", metavar="NAME", help="only runs with this name")
    ls.add_argument(
        "-n", "--limit", type=count, default=50, metavar="N", help="how many (default 50)"
    )
    ls.add_argument("--all", action="store_true", help="list step executions too")
    add_json(ls)
    ls.set_defaults(func=_ls)
    show = verbs.add_parser(
        "show",
        help="one run: params, metrics, inputs, outputs, steps",
        epilog="example: mlk runs show 1    # ids are listed by `mlk runs ls`",
    )
    show.add_argument("id", type=int, metavar="ID", help="the run's id (see `mlk runs ls`)")
    add_json(show)
    show.set_defaults(func=_show)
    logs = verbs.add_parser(
        "logs",
        help="the stored output of a pipeline run's steps",
        epilog="example: mlk runs logs 3 --step train",
    )
    logs.add_argument("id", type=int, metavar="ID", help="the pipeline run's id")
    logs.add_argument("--step", metavar="STEP", help="only this step")
    add_json(logs)
    logs.set_defaults(func=_logs)
    cancel = verbs.add_parser(
        "cancel",
        help="end a running or lost run as cancelled (a running pipeline run is stopped)",
        epilog="example: mlk runs cancel 3 --reason 'wrong data'",
    )
    cancel.add_argument("id", type=int, metavar="ID", help="the run's id (see `mlk runs ls`)")
    cancel.add_argument("--reason", metavar="TEXT", help="why, kept with the run")
    cancel.set_defaults(func=_end, state="cancelled")
    fail = verbs.add_parser(
        "fail",
        help="end a running or lost run as failed",
        epilog="example: mlk runs fail 3 --reason 'the machine rebooted'",
    )
    fail.add_argument("id", type=int, metavar="ID", help="the run's id (see `mlk runs ls`)")
    fail.add_argument("--reason", metavar="TEXT", help="why, kept with the run")
    fail.set_defaults(func=_end, state="failed")


def _step_summary(steps: Sequence[StepBrief]) -> str:
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.state] = counts.get(s.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def _ls(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import emit_json, human_duration, human_time, table

    with open_kernel(args) as k:
        runs = k.pipelines.runs(
            limit=args.limit, state=args.state, name=args.name, include_steps=args.all
        )
    if args.json:
        return emit_json([r.to_dict() for r in runs])
    table(
        ["id", "type", "name", "state", "started", "duration", "steps", "error"],
        [
            (
                r.record.id,
                r.record.type,
                r.record.name,
                r.record.state,
                human_time(r.record.started_at),
                human_duration(r.record.duration),
                _step_summary(r.steps) if r.steps is not None else None,
                (r.record.error or "")[:60],
            )
            for r in runs
        ],
        title="Runs",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import (
        console,
        emit_json,
        esc,
        human_bytes,
        human_duration,
        human_time,
        table,
    )

    with open_kernel(args) as k:
        info = k.pipelines.run_info(args.id)
    if args.json:
        return emit_json(info.to_dict())
    out = console()
    run = info.record
    out.print(f"[bold]run #{run.id} {esc(run.name)}[/]  {run.state}")
    pipeline = info.pipeline
    trigger = pipeline.trigger if pipeline is not None else None
    lines = [
        ("type", run.type),
        ("started", human_time(run.started_at)),
        ("duration", human_duration(run.duration)),
        ("host/pid", f"{run.host} / {run.pid} ({run.user})"),
        ("code", run.git_commit and run.git_commit[:12] + (" dirty" if run.git_dirty else "")),
        ("environment", info.run.environment),
        ("pipeline", pipeline and pipeline.spec),
        ("executor", pipeline and pipeline.executor),
        (
            "fired by",
            trigger and f"trigger {trigger['name']} ({trigger['type']}): {trigger['reason']}",
        ),
        (
            "resumed",
            pipeline and pipeline.resumed_from and f"from run {pipeline.resumed_from}",
        ),
        ("inputs", ", ".join(info.run.inputs) or "-"),
        ("outputs", ", ".join(info.run.outputs) or "-"),
        ("error", run.error),
        (
            "lost",
            run.state == "lost"
            and f"its process ended without ending it; `mlk runs fail {run.id}` "
            f"or `mlk runs cancel {run.id}` ends it",
        ),
    ]
    for key, value in lines:
        if value:
            out.print(f"  {key:<12} {esc(value)}")
    if info.run.params:
        table(["param", "value"], sorted(info.run.params.items()), title="Parameters")
    if pipeline is not None and pipeline.overrides:
        table(["override", "value"], sorted(pipeline.overrides.items()), title="Overrides")
    if info.run.metrics:
        table(
            ["metric", "last", "min", "max", "steps"],
            [
                (key, f"{m.last:.6g}", f"{m.min:.6g}", f"{m.max:.6g}", m.steps)
                for key, m in sorted(info.run.metrics.items())
            ],
            title="Metrics",
        )
    if info.steps is not None:
        table(
            ["step", "state", "duration", "peak memory", "output", "error"],
            [
                (
                    s.name,
                    s.state + (f" (from #{s.cached_from})" if s.cached_from else ""),
                    human_duration(s.duration),
                    human_bytes(s.max_rss_kb * 1024) if s.max_rss_kb else None,
                    s.output,
                    (s.error or "")[:60],
                )
                for s in info.steps
            ],
            title="Steps",
        )
        _show_step_results(info.steps)
    return 0


def _show_step_results(steps: Sequence[StepInfo]) -> None:
    """A pipeline run's step metrics, then each tuning step's trials: the parameters the
    search chose, the metric it optimised, when and how long each ran."""
    from mlkernel.cli.render import human_duration, human_time, table

    def text(values: dict[str, Any]) -> str:
        shown = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v!r}"
                          for k, v in sorted(values.items()))  # fmt: skip
        return shown

    metrics = [(s.name, text(s.metrics)) for s in steps if s.tune is None and s.metrics]
    if metrics:
        table(["step", "metrics"], metrics, title="Step metrics")
    for tuner in steps:
        trials = [t for t in steps if t.tune == tuner.name]
        if not trials:
            continue
        best = tuner.best or {}
        metric = best.get("metric") or "score"
        table(
            ["trial", "params", metric, "state", "started", "duration"],
            [
                (
                    f"{t.trial}" + (" best" if t.trial == best.get("trial") else ""),
                    text(t.searched or t.params),
                    f"{t.score:.6g}" if t.score is not None else (t.error or "")[:60],
                    t.state,
                    human_time(t.started_at),
                    human_duration(t.duration),
                )
                for t in trials
            ],
            title=f"Trials of {tuner.name}"
            + (f" ({best.get('direction')} {metric})" if best else ""),
        )


def _logs(args: argparse.Namespace) -> int:
    import sys

    from mlkernel.cli.render import emit_json

    with open_kernel(args) as k:
        logs = k.pipelines.logs(args.id, args.step)
    if args.json:
        return emit_json([{"step": step, "log": text} for step, text in logs])
    for step, text in logs:
        if args.step is None:
            sys.stdout.write(f"==> {step} <==\n")
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0


def _end(args: argparse.Namespace) -> int:
    with open_kernel(args) as k:
        outcome = k.end_run(args.id, args.state, args.reason)
    if outcome == "signalled":
        print(f"run {args.id} was asked to stop; it has not finished yet")
    else:
        print(f"run {args.id} {outcome}")
    return 0

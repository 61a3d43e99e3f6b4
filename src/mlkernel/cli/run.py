"""``mlk run PIPELINE``."""

from __future__ import annotations

import argparse
import os
import threading
from typing import TextIO

from mlkernel.cli._args import add_json, open_kernel, positive

INTERRUPTED = 130


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run a pipeline: a name from mlkernel.toml, file.py:function or module:function",
        epilog="example: mlk run churn -p C=0.1 -p train.max_iter=500",
    )
    p.add_argument(
        "pipeline", nargs="?", metavar="PIPELINE", help="the pipeline (optional with --resume)"
    )
    p.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE",
        help="set a parameter (KEY or STEP.KEY; VALUE is read as TOML: 0.1, true, \"x\")",
    )  # fmt: skip
    p.add_argument("--executor", choices=["inline", "process", "ray"], help="where steps run")
    p.add_argument("--workers", type=positive, metavar="N", help="how many steps run at once")
    p.add_argument("--force", action="store_true", help="run every step, ignoring the cache")
    p.add_argument("--resume", type=int, metavar="RUN_ID", help="continue a failed run")
    p.add_argument("-q", "--quiet", action="store_true", help="no live step output")
    add_json(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from mlkernel.pipeline.params import parse_assignments

    params = parse_assignments(args.param)

    stream = sys.stderr if args.json else sys.stdout  # bound now: inline steps redirect stdout
    echo = Terminal(stream)

    with open_kernel(args) as k:
        try:
            result = k.pipelines.run(
                args.pipeline,
                params=params,
                executor=args.executor,
                workers=args.workers,
                force=args.force,
                resume=args.resume,
                echo=None if args.quiet else echo,
            )
        except KeyboardInterrupt:
            print("mlk: run cancelled; its steps were stopped", file=sys.stderr)
            return INTERRUPTED
    if args.json:
        from mlkernel.cli.render import emit_json

        try:
            emit_json(result.to_dict())
        except BrokenPipeError:  # the reader went away; the exit status still tells
            drop_output(sys.stdout)
    elif result.state != "completed":
        print(f"mlk: run {result.id} {result.state}: {result.error}", file=sys.stderr)
        print(f"mlk: see `mlk runs logs {result.id}`; continue with `mlk run --resume {result.id}`",
              file=sys.stderr)  # fmt: skip
    return 0 if result.state == "completed" else 1


def drop_output(stream: TextIO) -> None:
    """Point ``stream``'s file at /dev/null: what is still written (and flushed at exit)
    goes nowhere instead of failing with EPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


class Terminal:
    """The live output of ``mlk run`` (and of the triggers' runs). When its reader goes
    away (``mlk run P | head``), the rest is dropped quietly: the run goes on, is recorded
    as it ends, and the exit status is the run's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # step output comes from several threads
        self._gone = False

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._gone:
                return
            try:
                print(line, file=self._stream, flush=True)
            except BrokenPipeError:
                self._gone = True
                drop_output(self._stream)

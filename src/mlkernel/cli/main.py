"""``mlk``: parse, call the kernel, render; errors become exit codes here and only here.

Each command group lives in its own module exposing ``register(subparsers)``; a module
imports only argparse at top level, so ``mlk --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from mlkernel import __version__
from mlkernel.cli import alias, artifacts, pipelines, project, run, runs, triggers

__all__ = ["build_parser", "main"]

INTERNAL_ERROR = 70
INTERRUPTED = 130

GROUPS: tuple[ModuleType, ...] = (project, artifacts, alias, runs, run, pipelines, triggers)


def _optional_groups() -> tuple[ModuleType, ...]:
    """Command groups owned by capability packages, added as they land."""
    found: list[ModuleType] = []
    for name in ("data", "mode", "policy", "doctor"):
        try:
            found.append(__import__(f"mlkernel.cli.{name}", fromlist=["register"]))
        except ImportError:
            continue
    return tuple(found)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlk",
        description="mlkernel: an operating-system layer for machine-learning projects.",
        epilog="Run `mlk COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mlkernel {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        metavar="DIR",
        default=None,
        help="the project folder (default: the nearest one above the current folder)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (*GROUPS, *_optional_groups()):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2 if args.command is None else 0
    debug = args.debug or os.environ.get("MLK_DEBUG", "") not in ("", "0")
    from mlkernel.errors import MLKernelError

    try:
        code: int = args.func(args)
        return code
    except MLKernelError as exc:
        if debug:
            raise
        print(f"mlk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlk: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `mlk runs ls | head`); nothing more to say.
        sys.stderr.close()
        return 0
    except Exception as exc:
        if debug:
            raise
        print(
            f"mlk: internal error: {type(exc).__name__}: {exc}; rerun with --debug for the "
            "traceback and report it",
            file=sys.stderr,
        )
        return INTERNAL_ERROR


def entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())

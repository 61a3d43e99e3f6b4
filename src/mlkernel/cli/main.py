"""``mlk``: parse, call the kernel, render; errors become exit codes here and only here.

Each command group lives in its own module exposing ``register(subparsers)``; a module
imports only argparse at top level, so ``mlk --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from mlkernel import __version__

__all__ = ["COMMANDS", "Parser", "build_parser", "main"]

INTERNAL_ERROR = 70
INTERRUPTED = 130

#: Each top-level command and the module (in mlkernel.cli) that registers it. A run of
#: `mlk COMMAND` imports and registers only that module: building all 18 groups costs
#: ~15 ms, a tenth of a no-op `mlk run` (tests/test_architecture.py keeps this complete).
COMMANDS: dict[str, str] = {
    "init": "project",
    "status": "project",
    "gc": "project",
    "ls": "artifacts",
    "show": "artifacts",
    "get": "artifacts",
    "verify": "artifacts",
    "lineage": "artifacts",
    "alias": "alias",
    "runs": "runs",
    "run": "run",
    "pipelines": "pipelines",
    "triggers": "triggers",
    "data": "data",
    "models": "models",
    "mode": "mode",
    "policy": "policy",
    "doctor": "doctor",
    "completion": "completion",
}
_TAKES_VALUE = ("-C", "--project")


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the first positional), if there is one."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _TAKES_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


class Parser(argparse.ArgumentParser):
    """argparse's parser, answering a mistyped command, verb or choice with the closest
    valid one: ``mlk stauts`` -> "unknown command 'stauts'; did you mean `status`?".

    Subparsers are made of the same class (argparse uses the parent's type), so every
    level of ``mlk`` gets it.
    """

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        import difflib

        names = [str(c) for c in choices]
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else f"choose from {', '.join(names)}"
        if isinstance(action, argparse._SubParsersAction):
            after = f" after `{self.prog}`" if " " in self.prog else ""
            problem = f"unknown command {str(value)!r}{after}"
        elif action.option_strings:
            problem = f"{action.option_strings[-1]}: unknown value {str(value)!r}"
        else:
            problem = f"unknown {str(action.metavar or action.dest).lower()} {str(value)!r}"
        raise argparse.ArgumentError(None, f"{problem}; {hint}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``command``, only that command's module is loaded."""
    parser = Parser(
        prog="mlk",
        description="mlkernel: an operating-system layer for machine-learning projects.",
        epilog="Run `mlk COMMAND --help` for a command's options and an example.\n"
        "example: mlk -C ~/projects/churn status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(f"mlkernel.cli.{name}").register(sub)
    return parser


def _global_options_first(argv: list[str]) -> list[str]:
    """``mlk status -C DIR`` and ``mlk data ls --debug`` as well as ``mlk -C DIR status``:
    the global options may follow the command; they are moved before it (never past a
    ``--`` or into the command line of a program ``mlk mode ml``/``run`` starts)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or rest[-2:] in (["mode", "ml"], ["mode", "run"]):
            rest.extend(argv[i:])  # the rest is a program's command line, as typed
            break
        if arg in _TAKES_VALUE and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 2
            continue
        if arg.startswith("--project=") or arg == "--debug":
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _global_options_first(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(_command_in(arguments))
    args = parser.parse_args(arguments)
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
        _drop_stdout()
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
    code = main()
    try:
        sys.stdout.flush()  # output still buffered when a reader (`| head`) already left
    except BrokenPipeError:
        _drop_stdout()
    sys.exit(code)


def _drop_stdout() -> None:
    """The reader of stdout left: send what is still buffered to /dev/null, so that the
    flush at exit fails neither (which would end the process with status 1 and a
    message about the pipe)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

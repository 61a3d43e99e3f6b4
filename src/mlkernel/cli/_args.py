"""Arguments and helpers shared by the command modules."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def open_kernel(args: argparse.Namespace) -> Kernel:
    import mlkernel

    return mlkernel.open(args.project)


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more (``-n -3`` is refused, not read as 0)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0 (not negative, NaN or infinite)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more (``--workers 0`` is refused, not the default)."""
    value = count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, got 0")
    return value

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

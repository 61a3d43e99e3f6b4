"""Fixtures for pipeline tests: write pipeline modules and settings into a project."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel

Writer = Callable[[Path, str, str], Path]


def _write(root: Path, relpath: str, source: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def write() -> Writer:
    """``write(root, "pipes/x.py", source)``: a dedented file in the project."""
    return _write


@pytest.fixture
def declare() -> Callable[[Path, str], None]:
    """``declare(root, toml)``: append settings to mlkernel.toml (reopen to see them)."""

    def append(root: Path, extra: str) -> None:
        config = root / "mlkernel.toml"
        config.write_text(config.read_text() + "\n" + textwrap.dedent(extra))

    return append


@pytest.fixture
def k(sqlite_project: Kernel) -> Kernel:
    return sqlite_project

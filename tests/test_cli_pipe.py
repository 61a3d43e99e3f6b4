"""A reader that leaves early (`mlk ... | head -1`) is not an error: exit 0, nothing on
stderr, whichever renderer wrote the output (rich's own answer is exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel


@pytest.fixture
def root(sqlite_project: Kernel) -> Path:
    sqlite_project.log_artifact({"w": 1}, kind="model", name="churn")
    path = sqlite_project.root
    sqlite_project.close()
    return path


@pytest.mark.parametrize(
    "args",
    [["status"], ["show", "model:churn"], ["ls"], ["models", "ls"], ["policy", "show"]],
    ids=" ".join,
)
def test_a_reader_that_leaves_early_is_not_an_error(root: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLK_DEBUG"}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before mlk writes: every write meets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlkernel", *args],
            cwd=root,
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")

"""A killed ingest leaves nothing: no version, no orphan object, no partial cache.

The child process ingests for real and is stopped at a known point (a hook it installs
itself blocks there and signals the parent through a file), then killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CHILD = r"""
import sys, time, pathlib
import mlkernel
from mlkernel.data import ingest

root, path, marker, where = sys.argv[1:5]

def block() -> None:
    pathlib.Path(marker).write_text("ready")
    time.sleep(600)

if where == "writing":
    original = ingest.write_ipc
    def stalled(table, folder):
        written = original(table, folder)  # hashed and fsynced, not yet in the store
        block()
        return written
    ingest.write_ipc = stalled
    hook = False
else:
    hook = lambda done, total: block()

k = mlkernel.open(root)
k.data.add(path, name="big", progress=hook)
"""


def _mlk(root: Path, *args: str) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mlk"), "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("where", ["reading", "writing"])
def test_sigkill_mid_ingest_leaves_nothing(
    tmp_path: Path, where: str, sample: Callable[..., str]
) -> None:
    import mlkernel

    root = tmp_path / "proj"
    mlkernel.init(root, name="proj").close()
    data = tmp_path / "big.csv"
    data.write_text(sample(20_000))
    marker = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(data), str(marker), where],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never reached the kill point"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    assert json.loads(_mlk(root, "data", "ls", "--json")) == []
    gc = json.loads(_mlk(root, "gc", "--dry-run", "--json"))
    assert gc["removed"] == [] and gc["young"] == [] and gc["kept"] == 0
    assert not list((root / ".mlkernel" / "cache").rglob("*.npy"))
    leftovers = list((root / ".mlkernel" / "objects" / "tmp").glob("data-*"))
    assert bool(leftovers) == (where == "writing")

    # The next ingest sweeps the dead process's temporary files and succeeds.
    with mlkernel.open(root) as k:
        assert k.data.add(data, name="big", progress=False).ref == "dataset:big@1"
        assert not list(k.context.objects.staging.glob("data-*"))
        assert k.gc(dry_run=True).removed == []

"""examples/demo_mlmode.py: it prints the three rows, cleans up, and says why it skips."""

from __future__ import annotations

import contextlib
import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlkernel.authz import Actor
from mlkernel.errors import StorageError
from mlkernel.sched.results import Claimed
from mlkernel.sched.service import SchedService
from mlkernel.testing import need

from .conftest import gone, wait_until

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_mlmode.py"


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_mlmode", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeKernel:
    """Kernel.ml_mode() as the SDK has it (the scheduler service), aimed at a private
    controller."""

    def __init__(self, runtime_dir: Path | None, config: dict[str, Any], fail: bool = False):
        self.runtime_dir, self.config, self.fail = runtime_dir, config, fail

    @contextlib.contextmanager
    def ml_mode(self) -> Iterator[Claimed]:
        if self.fail:
            raise StorageError("the scheduler controller exited with 1; see controller.log")
        sched = SchedService(Actor.current(), runtime_dir=self.runtime_dir, config=self.config)
        with sched.ml_mode() as claim:
            yield claim


TAG = "MLK_TEST_DEMO_TAG"


def hogs_and_trainers(tag: str) -> list[str]:
    """The demo's hogs and trainers still running that this test started: they inherit
    ``TAG`` from it, forked hogs and orphans too, while another test worker may be
    running the whole demo meanwhile, with hogs of its own."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            args = " ".join(proc.cmdline())
            demos = "os.fork()" in args or "counts = [0, 0]" in args
            if demos and proc.environ().get(TAG) == tag:
                found.append(f"{proc.pid} {args}")
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture
def tag(monkeypatch: pytest.MonkeyPatch) -> str:
    value = uuid.uuid4().hex
    monkeypatch.setenv(TAG, value)
    return value


def test_demo_prints_three_rows_and_stops_the_controller_it_started(
    runtime_dir: Path, cg_parent: str, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    need(importlib.util.find_spec("numpy") is not None, "the demo's trainer needs numpy")
    demo = load_demo()
    demo.show_ml_mode(FakeKernel(runtime_dir, {"parent": cg_parent}), 0.5, runtime_dir)
    out = capsys.readouterr().out
    for label in ("solo", "with the hog ", "with the hog, ML mode"):
        assert label in out and "steps/s" in out
    assert "skipped" not in out
    assert hogs_and_trainers(tag) == []
    # The demo started the controller, so it shut it down again (restoring everything).
    pid = int((runtime_dir / "controller.lock").read_text().split()[0])
    wait_until(lambda: gone(pid), "the demo's controller to exit")
    assert not (runtime_dir / "sched.sock").exists()


def test_demo_says_why_it_skips_ml_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    need(importlib.util.find_spec("numpy") is not None, "the demo's trainer needs numpy")
    load_demo().show_ml_mode(FakeKernel(None, {}, fail=True), 0.3, tmp_path)
    out = capsys.readouterr().out
    assert "ML mode skipped: the scheduler controller cannot be started" in out
    assert "controller.log" in out and "solo" in out
    assert hogs_and_trainers(tag) == []

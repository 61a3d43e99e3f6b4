"""Caching: a change re-runs the step it touches and everything downstream, nothing else."""

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mlkernel
from mlkernel.kernel import Kernel

Writer = Callable[[Path, str, str], Path]

SOURCE = """
import mlkernel as mlk

OFFSET = 1

def helper(v):
    return v + OFFSET

@mlk.step
def a(x: int = 1):
    return helper(x)

@mlk.step
def b(v):
    return v * 10

@mlk.step(output="model:final")
def c(v, scale: int = 2):
    return {"value": v * scale}

@mlk.step
def side(data):
    return len(data.read_bytes())

@mlk.pipeline
def pipe():
    c(b(a()))
    side(mlk.Ref.file("input.txt"))
"""


def _states(k: Kernel, **options: object) -> dict[str, str]:
    result = k.pipelines.run("pipes/cached.py:pipe", executor="inline", ml_mode=False, **options)  # type: ignore[arg-type]
    assert result.state == "completed", result.error
    return {name: step.state for name, step in result.steps.items()}


@pytest.fixture
def pipe_project(project: Kernel, write: Writer) -> Kernel:
    write(project.root, "pipes/cached.py", SOURCE)
    (project.root / "input.txt").write_text("hello")
    return project


def test_unchanged_steps_are_reused_and_recorded(pipe_project: Kernel) -> None:
    k = pipe_project
    assert set(_states(k).values()) == {"ran"}
    again = k.pipelines.run("pipes/cached.py:pipe", executor="inline", ml_mode=False)
    assert {s.state for s in again.steps.values()} == {"cached"}
    final = k.resolve("model:final")
    assert k.load(final.ref) == {"value": 40}
    assert final.version == 1  # reused, not stored again
    cached = k.run_info(again.steps["c"].execution_id or 0)
    assert cached.record.state == "cached"
    assert cached.outputs == ["model:final@1"]
    assert cached.inputs == [again.steps["b"].output]
    assert cached.params == {"scale": 2}


def test_a_parameter_change_reruns_that_step_only(pipe_project: Kernel) -> None:
    k = pipe_project
    _states(k)
    assert _states(k, params={"scale": 3}) == {
        "a": "cached", "b": "cached", "c": "ran", "side": "cached"
    }  # fmt: skip
    assert k.load("model:final") == {"value": 60}
    assert _states(k, params={"x": 5}) == {"a": "ran", "b": "ran", "c": "ran", "side": "cached"}


def test_a_code_change_reruns_the_step_and_its_downstream(pipe_project: Kernel) -> None:
    k = pipe_project
    _states(k)
    path = k.root / "pipes/cached.py"
    path.write_text(path.read_text().replace("return v * 10", "return v * 100"))
    assert _states(k) == {"a": "cached", "b": "ran", "c": "ran", "side": "cached"}
    # project code the step uses counts too: a helper function and a module constant
    path.write_text(path.read_text().replace("OFFSET = 1", "OFFSET = 2"))
    assert _states(k) == {"a": "ran", "b": "ran", "c": "ran", "side": "cached"}


def test_an_input_change_reruns_its_consumers(pipe_project: Kernel) -> None:
    k = pipe_project
    _states(k)
    (k.root / "input.txt").write_text("hello, world")
    assert _states(k) == {"a": "cached", "b": "cached", "c": "cached", "side": "ran"}
    assert k.resolve("file:input.txt").version == 2


def test_force_and_cache_false_run_again(pipe_project: Kernel) -> None:
    k = pipe_project
    _states(k)
    assert set(_states(k, force=True).values()) == {"ran"}
    path = k.root / "pipes/cached.py"
    path.write_text(path.read_text().replace("@mlk.step\ndef b", "@mlk.step(cache=False)\ndef b"))
    states = _states(k)
    # b runs every time; its output is the same, so c downstream is still a cache hit
    assert states == {"a": "cached", "b": "ran", "c": "cached", "side": "cached"}


def test_a_missing_object_is_a_cache_miss(pipe_project: Kernel, tmp_path: Path) -> None:
    k = pipe_project
    _states(k)
    digest = k.resolve("model:final").digest
    path = k.context.objects.path(digest)
    path.chmod(0o644)
    path.unlink()
    assert _states(k)["c"] == "ran"
    assert k.context.objects.exists(digest)


NAMED_TWICE = """
import mlkernel as mlk

from twonames import helpers
from twonames.helpers import Scaler

@mlk.step
def load(n: int = 4):
    return list(range(n))

@mlk.step(output="model:twice")
def train(values, factor: float = 2.0):
    return {"total": helpers.total(values) * Scaler(factor).factor}

@mlk.pipeline
def bc():
    train(load())
"""

HELPERS = """
def total(values):
    return sum(values)

class Scaler:
    def __init__(self, factor):
        self.factor = factor
"""


@pytest.fixture
def forget_twonames() -> Iterator[None]:
    """Each project has its own ``twonames`` package: drop the one imported before."""

    def forget() -> None:
        for name in [m for m in sys.modules if m == "twonames" or m.startswith("twonames.")]:
            del sys.modules[name]

    forget()
    yield
    forget()


@pytest.mark.usefixtures("forget_twonames")
def test_one_pipeline_named_two_ways_shares_one_cache(project: Kernel, write: Writer) -> None:
    """The cache key depends on what runs, not on how the pipeline was named: a file
    path (loaded under a private module name) and a module path give the same keys."""
    write(project.root, "twonames/bc.py", NAMED_TWICE)
    write(project.root, "twonames/helpers.py", HELPERS)
    first = project.pipelines.run("twonames/bc.py:bc", executor="inline", ml_mode=False)
    assert {s.state for s in first.steps.values()} == {"ran"}
    for spelling in ("twonames.bc:bc", "twonames/bc.py:bc"):
        again = project.pipelines.run(spelling, executor="inline", ml_mode=False)
        assert {n: s.state for n, s in again.steps.items()} == {"load": "cached", "train": "cached"}
    assert project.resolve("model:twice").version == 1
    keys = {
        tuple(sorted((s.name, s.cache_key) for s in project.pipelines.steps(r.id)))
        for r in (first, again)
    }
    assert len(keys) == 1


@pytest.mark.usefixtures("forget_twonames")
def test_a_declared_pipeline_named_by_its_target_is_the_declared_one(
    project: Kernel, write: Writer, declare: Callable[[Path, str], None]
) -> None:
    """Named by its target, a pipeline declared in mlkernel.toml gets its declared name
    and `[pipelines.params]`, so `mlk run scores` and `mlk run twonames.bc:bc` share runs,
    parameters and cache."""
    write(project.root, "twonames/bc.py", NAMED_TWICE)
    write(project.root, "twonames/helpers.py", HELPERS)
    declare(
        project.root,
        '[pipelines]\nscores = "twonames/bc.py:bc"\n'
        "[pipelines.params.scores]\ntrain.factor = 3.0\n",
    )
    k = mlkernel.open(project.root)
    try:
        first = k.pipelines.run("scores", executor="inline", ml_mode=False)
        assert k.load("model:twice") == {"total": 18.0}
        for spelling in ("twonames.bc:bc", "twonames/bc.py:bc"):
            again = k.pipelines.run(spelling, executor="inline", ml_mode=False)
            assert again.pipeline == "scores"
            assert {s.state for s in again.steps.values()} == {"cached"}
        assert [r.record.name for r in k.pipelines.runs()] == ["scores"] * 3
        assert first.steps["train"].output == again.steps["train"].output
    finally:
        k.close()

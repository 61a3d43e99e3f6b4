"""The same pipeline gives the same outputs inline, in worker processes and on Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel
from mlkernel.testing import need

Writer = Callable[[Path, str, str], Path]

SOURCE = """
import mlkernel as mlk

@mlk.step
def numbers(n: int = 50):
    print("numbers", n)
    return list(range(n))

@mlk.step
def squares(xs):
    return [x * x for x in xs]

@mlk.step
def evaluate(xs, ys) -> mlk.Metrics:
    return mlk.Metrics(n=len(xs), total=sum(ys))

@mlk.step(output="model:fitted")
def fit(xs, ys, scale: float = 0.5):
    return {"w": sum(ys) / max(sum(xs), 1) * scale}

@mlk.pipeline
def pipe():
    xs = numbers()
    ys = squares(xs)
    evaluate(xs, ys)
    fit(xs, ys)
"""


def _digests(k: Kernel, executor: str) -> dict[str, str]:
    result = k.pipelines.run("pipes/same.py:pipe", executor=executor, force=True, ml_mode=False)
    assert result.state == "completed", result.error
    assert {s.state for s in result.steps.values()} == {"ran"}
    assert result.steps["evaluate"].metrics == {"n": 50.0, "total": 40425.0}
    assert "numbers 50" in dict(k.pipelines.logs(result.id))["numbers"]
    return {name: k.resolve(step.output or "").digest for name, step in result.steps.items()}


@pytest.fixture
def ray_session() -> Iterator[None]:
    try:
        import ray
    except ImportError:
        need(False, "Ray is not installed; install the 'ray' extra to test the ray executor")
        raise
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_inline_and_process_agree(k: Kernel, write: Writer) -> None:
    write(k.root, "pipes/same.py", SOURCE)
    assert _digests(k, "inline") == _digests(k, "process")


@pytest.mark.slow
def test_ray_agrees(k: Kernel, write: Writer, ray_session: None) -> None:
    write(k.root, "pipes/same.py", SOURCE)
    assert _digests(k, "ray") == _digests(k, "process")


def test_a_workers_output_is_found_by_the_projects_object_store(k: Kernel) -> None:
    """The worker opens the store from the location in its task spec and writes there."""
    from mlkernel.pipeline.task import encode_output

    output, _ = encode_output(b"payload", k.context.objects.location, step="s")
    assert output is not None
    assert k.context.objects.read_bytes(output["digest"], verify=True) == b"payload"
    assert output["size"] == k.context.objects.size(output["digest"]) == len(b"payload")
    path = k.context.objects.local_path_for_reading(output["digest"])
    assert not path.stat().st_mode & 0o222  # read-only, as the store makes it

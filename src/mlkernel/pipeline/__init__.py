"""Pipelines: ``@step`` functions composed in a ``@pipeline``, cached, recorded, and run
inline, in subprocesses or on Ray; tuning and triggers for continuous training.
See docs/pipelines.md.

Importing this package costs nothing until a name is used: the process executor's worker
imports it for every step.
"""

from __future__ import annotations

import sys
import types

# Not `from typing import TYPE_CHECKING`: every pipeline step's process imports this
# module, and typing costs ~10 ms of it. mypy reads a module-level TYPE_CHECKING too.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from mlkernel.pipeline.dsl import Metrics, Pipeline, Ref, Step, pipeline, step
    from mlkernel.pipeline.runner import RunResult
    from mlkernel.pipeline.task import Artifact
    from mlkernel.pipeline.tune import tune

__all__ = [
    "Artifact",
    "Metrics",
    "Pipeline",
    "Ref",
    "RunResult",
    "Step",
    "pipeline",
    "step",
    "tune",
]

_WHERE = {
    "Artifact": "task",
    "Metrics": "dsl",
    "Pipeline": "dsl",
    "Ref": "dsl",
    "RunResult": "runner",
    "Step": "dsl",
    "pipeline": "dsl",
    "step": "dsl",
    "tune": "tune",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlkernel.pipeline' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"mlkernel.pipeline.{module}"), name)


class _PipelinePackage(types.ModuleType):
    """``mlk.pipeline`` is both this package and the ``@pipeline`` decorator: once the
    package is imported, Python binds ``mlkernel.pipeline`` to it, so calling it must
    still decorate."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mlkernel.pipeline.dsl import pipeline

        return pipeline(*args, **kwargs)


sys.modules[__name__].__class__ = _PipelinePackage

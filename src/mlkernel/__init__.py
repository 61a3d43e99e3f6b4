"""mlkernel: an operating-system layer for machine-learning projects.

``import mlkernel as mlk; k = mlk.open(path)``. Importing this package is cheap: the
kernel and its storage libraries load on first use.
"""

from __future__ import annotations

from mlkernel.errors import MLKernelError

# Not `from typing import TYPE_CHECKING`: every pipeline step's process imports this
# module, and typing costs ~10 ms of it. mypy reads a module-level TYPE_CHECKING too.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from mlkernel.kernel import Kernel
    from mlkernel.pipeline.dsl import Metrics, Ref, pipeline, step
    from mlkernel.pipeline.task import Artifact
    from mlkernel.pipeline.tune import tune

__all__ = [
    "Artifact",
    "Kernel",
    "MLKernelError",
    "Metrics",
    "Ref",
    "__version__",
    "init",
    "open",
    "pipeline",
    "step",
    "tune",
]

# Names loaded on first use, so that `import mlkernel` stays cheap.
_LAZY = {
    "Artifact": "mlkernel.pipeline.task",
    "Metrics": "mlkernel.pipeline.dsl",
    "Ref": "mlkernel.pipeline.dsl",
    "pipeline": "mlkernel.pipeline.dsl",
    "step": "mlkernel.pipeline.dsl",
    "tune": "mlkernel.pipeline.tune",
}

__version__ = "0.1.0"


def open(path: str | Path | None = None) -> Kernel:
    """Open the project at ``path``, or the nearest one above the current folder."""
    from mlkernel.kernel import open_project

    return open_project(path)


def init(
    path: str | Path | None = None, *, name: str | None = None, metadata_url: str | None = None
) -> Kernel:
    """Create a project at ``path`` and open it."""
    from mlkernel.kernel import init as _init

    return _init(path, name=name, metadata_url=metadata_url)


def __getattr__(attr: str) -> Any:
    if attr == "Kernel":
        from mlkernel.kernel import Kernel

        return Kernel
    module = _LAZY.get(attr)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mlkernel' has no attribute {attr!r}")

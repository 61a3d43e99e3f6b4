"""mlkernel: an operating-system layer for machine-learning projects.

``import mlkernel as mlk; k = mlk.open(path)``. Importing this package is cheap: the
kernel and its storage libraries load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkernel.errors import MLKernelError

if TYPE_CHECKING:
    from pathlib import Path

    from mlkernel.kernel import Kernel

__all__ = ["Kernel", "MLKernelError", "__version__", "init", "open"]

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
    raise AttributeError(f"module 'mlkernel' has no attribute {attr!r}")

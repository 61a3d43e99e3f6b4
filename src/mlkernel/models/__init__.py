"""Models: flavors (how each library's models are saved and safely loaded) and input
signatures (the typed columns a model takes). See docs/models.md.

Importing this package loads nothing heavy; the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.models._onnx import to_onnx
    from mlkernel.models.base import Flavor, LoadedModel
    from mlkernel.models.flavors import FLAVOR_NAMES, detect, flavor_named, load, save
    from mlkernel.models.signature import Column, Signature, compatible, infer_signature

__all__ = [
    "FLAVOR_NAMES",
    "Column",
    "Flavor",
    "LoadedModel",
    "Signature",
    "compatible",
    "detect",
    "flavor_named",
    "infer_signature",
    "load",
    "save",
    "to_onnx",
]

_HOME = {
    "to_onnx": "mlkernel.models._onnx",
    "Flavor": "mlkernel.models.base",
    "LoadedModel": "mlkernel.models.base",
    "FLAVOR_NAMES": "mlkernel.models.flavors",
    "detect": "mlkernel.models.flavors",
    "flavor_named": "mlkernel.models.flavors",
    "load": "mlkernel.models.flavors",
    "save": "mlkernel.models.flavors",
    "Column": "mlkernel.models.signature",
    "Signature": "mlkernel.models.signature",
    "compatible": "mlkernel.models.signature",
    "infer_signature": "mlkernel.models.signature",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'mlkernel.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)

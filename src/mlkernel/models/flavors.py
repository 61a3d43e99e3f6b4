"""Flavors: how each library's models are saved and loaded, and which one an object is.

========= ====================================== ======================= ======
flavor    objects                                files                   unsafe
========= ====================================== ======================= ======
sklearn   scikit-learn estimators and pipelines  model.skops (skops)     no
xgboost   Booster, XGBClassifier/Regressor/...   model.ubj (UBJSON)      no
lightgbm  Booster, LGBMClassifier/Regressor/...  model.txt (text)        no
onnx      onnx.ModelProto, or bytes by name      model.onnx              no
python    anything with predict, or callable     model.pkl (pickle)      yes
========= ====================================== ======================= ======

:func:`detect` looks at ``type(obj).__module__`` first, so it imports only the library
the object already comes from. It never picks the unsafe ``python`` flavor: a caller
names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlkernel.errors import IntegrityError, UsageError
from mlkernel.models.base import Flavor, LoadedModel

__all__ = ["FLAVOR_NAMES", "detect", "flavor_named", "load", "save"]

FLAVOR_NAMES = ("sklearn", "xgboost", "lightgbm", "onnx", "python")
# The module an object's type comes from -> the flavor that may handle it.
_BY_ROOT = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm", "onnx": "onnx"}


def flavor_named(name: str) -> Flavor:
    """The flavor called ``name`` (one of :data:`FLAVOR_NAMES`)."""
    if name == "sklearn":
        from mlkernel.models._sklearn import SklearnFlavor

        return SklearnFlavor()
    if name == "xgboost":
        from mlkernel.models._boosting import XGBoostFlavor

        return XGBoostFlavor()
    if name == "lightgbm":
        from mlkernel.models._boosting import LightGBMFlavor

        return LightGBMFlavor()
    if name == "onnx":
        from mlkernel.models._onnx import OnnxFlavor

        return OnnxFlavor()
    if name == "python":
        from mlkernel.models._python import PythonFlavor

        return PythonFlavor()
    raise UsageError(f"unknown model flavor {name!r}; use one of {', '.join(FLAVOR_NAMES)}")


def detect(obj: Any) -> Flavor:
    """The flavor of ``obj``, by its type; never ``python`` (name that one yourself)."""
    root = type(obj).__module__.split(".")[0]
    name = _BY_ROOT.get(root)
    if name is not None:
        flavor = flavor_named(name)
        if flavor.handles(obj):
            return flavor
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raise UsageError("cannot tell what model these bytes hold; for ONNX pass flavor='onnx'")
    raise UsageError(
        f"no flavor handles a {type(obj).__module__}.{type(obj).__qualname__} "
        f"({', '.join(FLAVOR_NAMES[:-1])} are detected); pass flavor='python' to pickle it "
        "(unsafe: loading it unpickles arbitrary code)"
    )


def save(obj: Any, folder: Path, flavor: str | None = None) -> dict[str, Any]:
    """Write ``obj`` into ``folder`` (created, or existing and empty) with its flavor
    (detected, or named) and return the properties to record with the version."""
    chosen = detect(obj) if flavor is None else flavor_named(flavor)
    if flavor is not None and chosen.name != "onnx" and not chosen.handles(obj):
        raise UsageError(
            f"the {chosen.name} flavor does not handle a {type(obj).__name__}; leave flavor "
            "out to detect it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty; save a model into a new folder")
    return chosen.save(obj, folder)


def load(folder: Path, properties: dict[str, Any]) -> LoadedModel:
    """The model saved in ``folder`` with ``properties`` (what :func:`save` returned)."""
    name = properties.get("flavor")
    if not isinstance(name, str):
        raise IntegrityError(f"the model properties name no flavor: {sorted(properties)}")
    return flavor_named(name).load(folder, properties)

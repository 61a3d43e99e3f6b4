"""The generic Python flavor: any object with ``predict`` (or any callable), pickled.

**Unsafe**: loading unpickles, and unpickling runs whatever code the file names. It is
never chosen by :func:`mlkernel.models.detect`; a caller asks for it by name, and its
properties say ``unsafe: true`` so that a registry can show it and production can
refuse it.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

from mlkernel.errors import IntegrityError, UsageError
from mlkernel.models.base import LoadedModel, type_name

__all__ = ["PythonFlavor"]

FILE = "model.pkl"
WARNING = "unpickles arbitrary code: load only models you trust"


class PythonFlavor:
    name = "python"
    unsafe = True

    def handles(self, obj: Any) -> bool:
        return hasattr(obj, "predict") or callable(obj)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        if not self.handles(obj):
            raise UsageError(
                f"a {type(obj).__name__} has no predict method and is not callable; the "
                "python flavor needs one of them"
            )
        try:
            data = pickle.dumps(obj, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise UsageError(f"the {type(obj).__name__} cannot be pickled ({exc})") from None
        (folder / FILE).write_bytes(data)
        return {
            "flavor": self.name,
            "format": "pickle",
            "files": [FILE],
            "model_class": type_name(obj),
            "libraries": {"python": ".".join(map(str, sys.version_info[:3]))},
            "predict_proba": hasattr(obj, "predict_proba"),
            "unsafe": True,
            "warning": WARNING,
        }

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel:
        path = folder / FILE
        if not path.is_file():
            raise IntegrityError(f"the model folder {folder} has no {FILE}; the version is damaged")
        with path.open("rb") as handle:
            model = pickle.load(handle)  # unsafe by design: see the module docstring
        names = getattr(model, "feature_names_in_", None)
        return LoadedModel(
            flavor=self.name,
            raw=model,
            columns=tuple(str(n) for n in names) if names is not None else None,
            predictor=model.predict if hasattr(model, "predict") else model,
            proba=getattr(model, "predict_proba", None),
            properties=dict(properties),
        )

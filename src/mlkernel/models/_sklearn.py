"""The scikit-learn flavor: skops files, loaded with trusted types only.

skops (``skops.io``) stores an estimator as a zip of JSON and NumPy arrays and rebuilds
it without unpickling; every type it would construct is listed before loading
(``get_untrusted_types``). skops itself trusts the common scikit-learn types; of the rest
we accept only **classes** defined in scikit-learn, NumPy or SciPy and NumPy ufuncs
(``np.log1p`` in a FunctionTransformer). Anything else (a function such as
``numpy.load``, a class from the training script, another library) is refused with a
one-line error naming the type: the file is never loaded.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

from mlkernel.errors import IntegrityError, UsageError
from mlkernel.models.base import LoadedModel, library_versions, type_name

__all__ = ["SklearnFlavor", "allowed_type", "untrusted"]

FILE = "model.skops"
ALLOWED_ROOTS = frozenset({"sklearn", "numpy", "scipy"})
_NAMES_WARNING = r"X does not have valid feature names"


def allowed_type(name: str) -> bool:
    """Whether the dotted ``name`` skops reports is on our allow-list: a class from
    scikit-learn, NumPy or SciPy, or a NumPy ufunc."""
    if name.split(".", maxsplit=1)[0] not in ALLOWED_ROOTS:
        return False
    target = _resolve(name)
    if isinstance(target, type):
        return True
    import numpy as np

    return isinstance(target, np.ufunc)


def _resolve(name: str) -> Any:
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        target: Any = module
        for attr in parts[cut:]:
            target = getattr(target, attr, None)
            if target is None:
                return None
        return target
    return None


def untrusted(path: Path) -> tuple[list[str], list[str]]:
    """(types to trust, types refused) in the skops file at ``path``."""
    import skops.io as sio

    found = sio.get_untrusted_types(file=path)
    refused = [t for t in found if not allowed_type(t)]
    return [t for t in found if t not in refused], refused


class SklearnFlavor:
    name = "sklearn"
    unsafe = False

    def handles(self, obj: Any) -> bool:
        if type(obj).__module__.split(".")[0] != "sklearn":
            return False
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        import skops.io as sio

        path = folder / FILE
        sio.dump(obj, path)
        _, refused = untrusted(path)
        if refused:
            path.unlink()
            raise UsageError(
                f"the {type(obj).__name__} holds {refused[0]}, which the scikit-learn flavor "
                "will not load (only scikit-learn, NumPy and SciPy types); use a library "
                "transformer, or flavor='python' (pickle: unsafe)"
            )
        properties: dict[str, Any] = {
            "flavor": self.name,
            "format": "skops",
            "files": [FILE],
            "model_class": type_name(obj),
            "libraries": library_versions("scikit-learn", "skops", "numpy", "scipy"),
            "predict_proba": hasattr(obj, "predict_proba"),
            "unsafe": False,
        }
        names = getattr(obj, "feature_names_in_", None)
        if names is not None:
            properties["feature_names"] = [str(n) for n in names]
        return properties

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel:
        import skops.io as sio

        path = folder / FILE
        if not path.is_file():
            raise IntegrityError(f"the model folder {folder} has no {FILE}; the version is damaged")
        trusted, refused = untrusted(path)
        if refused:
            raise UsageError(
                f"refusing to load {path.name}: it holds untrusted type {refused[0]} (only "
                "scikit-learn, NumPy and SciPy types load); re-log the model without it"
            )
        model = sio.load(path, trusted=trusted)
        # The loaded model orders the columns by feature_names_in_ itself, so scikit-learn's
        # warning that a matrix has no names is noise here (a filter, not catch_warnings,
        # which is not thread-safe).
        warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
        names = getattr(model, "feature_names_in_", None)
        columns = tuple(str(n) for n in names) if names is not None else None
        proba = model.predict_proba if hasattr(model, "predict_proba") else None
        return LoadedModel(
            flavor=self.name,
            raw=model,
            columns=columns,
            predictor=model.predict,
            proba=proba,
            frame=columns is not None and _selects_by_name(model),
            properties=dict(properties),
        )


def _selects_by_name(model: Any) -> bool:
    """Whether a ColumnTransformer inside ``model`` picks columns by name (it then needs
    a DataFrame; every other estimator takes a matrix, which is faster)."""
    from sklearn.compose import ColumnTransformer

    parts = [model, *model.get_params(deep=True).values()]
    return any(isinstance(p, ColumnTransformer) for p in parts)

"""The XGBoost and LightGBM flavors: each library's own model format, no pickle.

XGBoost: ``save_model`` to UBJSON (``model.ubj``), for a ``Booster`` and for the
scikit-learn wrappers alike (the wrapper's file also keeps its scikit-learn attributes);
loading builds the recorded class, from an allow-list, and calls ``load_model``.

LightGBM: the booster's text format (``model.txt``), also for the scikit-learn wrappers
(``LGBMClassifier`` ...), whose booster is saved with the classes recorded in the
properties. Loading gives ``lgb.Booster(model_file=...)``; for a classifier the loaded
model's ``predict`` gives class labels and ``predict_proba`` the probabilities, as the
wrapper's do. (skops would need LightGBM's types trusted and its Booster pickled; the
text format needs neither.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlkernel.errors import IntegrityError
from mlkernel.models.base import LoadedModel, library_versions, type_name

__all__ = ["LightGBMFlavor", "XGBoostFlavor"]

XGB_FILE = "model.ubj"
LGB_FILE = "model.txt"
XGB_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)
LGB_CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")


def _root(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def _need(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise IntegrityError(f"the model folder {folder} has no {name}; the version is damaged")
    return path


class XGBoostFlavor:
    name = "xgboost"
    unsafe = False

    def handles(self, obj: Any) -> bool:
        if _root(obj) != "xgboost":
            return False
        import xgboost as xgb

        return isinstance(obj, (xgb.Booster, xgb.XGBModel))

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        import xgboost as xgb

        obj.save_model(str(folder / XGB_FILE))
        booster = obj if isinstance(obj, xgb.Booster) else obj.get_booster()
        properties: dict[str, Any] = {
            "flavor": self.name,
            "format": "xgboost-ubj",
            "files": [XGB_FILE],
            "model_class": type_name(obj),
            "xgboost_class": type(obj).__name__,
            "libraries": {"xgboost": xgb.__version__, **library_versions("numpy")},
            "predict_proba": hasattr(obj, "predict_proba"),
            "unsafe": False,
        }
        if booster.feature_names:
            properties["feature_names"] = list(booster.feature_names)
        return properties

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel:
        import xgboost as xgb

        path = _need(folder, XGB_FILE)
        kind = str(properties.get("xgboost_class", "Booster"))
        if kind not in XGB_CLASSES:
            raise IntegrityError(f"unknown XGBoost model class {kind!r} in the model properties")
        if kind == "Booster":
            booster = xgb.Booster(model_file=str(path))
            names = booster.feature_names
            return LoadedModel(
                flavor=self.name,
                raw=booster,
                columns=tuple(names) if names else None,
                predictor=booster.inplace_predict,
                properties=dict(properties),
            )
        model = getattr(xgb, kind)()
        model.load_model(str(path))
        names = model.get_booster().feature_names
        return LoadedModel(
            flavor=self.name,
            raw=model,
            columns=tuple(names) if names else None,
            predictor=model.predict,
            proba=getattr(model, "predict_proba", None),
            properties=dict(properties),
        )


class LightGBMFlavor:
    name = "lightgbm"
    unsafe = False

    def handles(self, obj: Any) -> bool:
        if _root(obj) != "lightgbm":
            return False
        import lightgbm as lgb

        return isinstance(obj, (lgb.Booster, lgb.LGBMModel))

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        import lightgbm as lgb

        booster = obj if isinstance(obj, lgb.Booster) else obj.booster_
        booster.save_model(str(folder / LGB_FILE))
        properties: dict[str, Any] = {
            "flavor": self.name,
            "format": "lightgbm-text",
            "files": [LGB_FILE],
            "model_class": type_name(obj),
            "lightgbm_class": type(obj).__name__,
            "libraries": {"lightgbm": lgb.__version__, **library_versions("numpy")},
            "predict_proba": isinstance(obj, lgb.LGBMClassifier),
            "unsafe": False,
        }
        if isinstance(obj, lgb.LGBMClassifier):
            properties["classes"] = obj.classes_.tolist()
        names = [n for n in booster.feature_name() if not n.startswith("Column_")]
        if names:
            properties["feature_names"] = names
        return properties

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel:
        import lightgbm as lgb
        import numpy as np

        path = _need(folder, LGB_FILE)
        kind = str(properties.get("lightgbm_class", "Booster"))
        if kind not in LGB_CLASSES:
            raise IntegrityError(f"unknown LightGBM model class {kind!r} in the model properties")
        booster = lgb.Booster(model_file=str(path))
        names = properties.get("feature_names")
        columns = tuple(names) if names else None
        if "classes" not in properties:
            return LoadedModel(
                flavor=self.name,
                raw=booster,
                columns=columns,
                predictor=booster.predict,
                rename=_lightgbm_name,
                properties=dict(properties),
            )
        classes = np.asarray(properties["classes"])

        def proba(matrix: Any) -> Any:
            raw: Any = booster.predict(matrix)
            return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

        def predict(matrix: Any) -> Any:
            return classes[np.argmax(proba(matrix), axis=1)]

        return LoadedModel(
            flavor=self.name,
            raw=booster,
            columns=columns,
            predictor=predict,
            proba=proba,
            rename=_lightgbm_name,
            properties=dict(properties),
        )


def _lightgbm_name(name: str) -> str:
    """The name LightGBM keeps for a column: it writes spaces as underscores
    ("mean radius" -> "mean_radius"), so callers' names are renamed the same way."""
    return name.replace(" ", "_")

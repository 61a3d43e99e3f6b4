"""Flavors: each library's model saved, loaded back and predicting exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlkernel.errors import IntegrityError, UsageError
from mlkernel.models import detect, flavor_named, infer_signature, load, save, to_onnx
from mlkernel.models._sklearn import allowed_type

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return frame, target.to_numpy()


def roundtrip(obj: Any, folder: Path, flavor: str | None = None) -> tuple[dict[str, Any], Any]:
    properties = save(obj, folder / "model", flavor=flavor)
    # What a registry stores must survive JSON.
    properties = json.loads(json.dumps(properties))
    return properties, load(folder / "model", properties)


# -- scikit-learn -------------------------------------------------------------------------


def test_sklearn_pipeline_on_a_matrix(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    X = frame.to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    properties, loaded = roundtrip(model, tmp_path)
    assert properties["flavor"] == "sklearn" and properties["format"] == "skops"
    assert properties["unsafe"] is False and "scikit-learn" in properties["libraries"]
    assert properties["files"] == ["model.skops"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_sklearn_with_feature_names_takes_columns_in_any_order(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    # RandomForest holds sklearn.tree._tree.Tree, which skops does not trust by default:
    # our allow-list does.
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)
    properties, loaded = roundtrip(model, tmp_path)
    assert properties["feature_names"] == list(frame.columns)
    expected = model.predict_proba(frame)
    reversed_columns = {name: frame[name].to_numpy() for name in reversed(frame.columns)}
    np.testing.assert_array_equal(loaded.predict_proba(reversed_columns), expected)
    np.testing.assert_array_equal(loaded.predict_proba(pa.Table.from_pandas(frame)), expected)
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), model.predict(frame))


def test_sklearn_column_transformer_gets_a_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"city": rng.choice(["paris", "oslo", "rome"], 200), "size": rng.normal(size=200)}
    )
    y = (frame["city"] == "oslo").to_numpy() ^ (frame["size"] > 1).to_numpy()
    model = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(), ["city"]), ("size", "passthrough", ["size"])]),
        LogisticRegression(),
    ).fit(frame, y)
    _, loaded = roundtrip(model, tmp_path)
    assert loaded.frame
    columns = {"size": frame["size"].tolist(), "city": frame["city"].tolist()}
    np.testing.assert_array_equal(loaded.predict(columns), model.predict(frame))


def test_sklearn_regressor_has_no_predict_proba(tmp_path: Path) -> None:
    X = np.arange(40, dtype=float).reshape(20, 2)
    model = Ridge().fit(X, X[:, 0] * 3)
    properties, loaded = roundtrip(model, tmp_path)
    assert properties["predict_proba"] is False and not loaded.has_proba
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(UsageError, match="no predict_proba"):
        loaded.predict_proba(X)


class Marker:
    """A class of the training script: skops can store it but must not load it."""


def test_sklearn_refuses_to_save_an_untrusted_type(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    model = LogisticRegression(max_iter=50).fit(frame.to_numpy()[:100], y[:100])
    model.marker = Marker()  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match=r"holds .*Marker.*flavor='python'"):
        save(model, tmp_path / "m")
    assert not (tmp_path / "m" / "model.skops").exists()


def test_sklearn_refuses_to_load_an_untrusted_type(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    model = LogisticRegression(max_iter=50).fit(frame.to_numpy()[:100], y[:100])
    model.marker = Marker()  # type: ignore[attr-defined]
    folder = tmp_path / "m"
    folder.mkdir()
    sio.dump(model, folder / "model.skops")  # written behind the flavor's back
    with pytest.raises(UsageError) as caught:
        load(folder, {"flavor": "sklearn"})
    message = str(caught.value)
    assert "untrusted type" in message and "Marker" in message and "\n" not in message


def test_sklearn_refuses_a_library_function_that_is_not_a_ufunc(tmp_path: Path) -> None:
    model = make_pipeline(FunctionTransformer(np.load), LogisticRegression())
    folder = tmp_path / "m"
    folder.mkdir()
    sio.dump(model, folder / "model.skops")
    with pytest.raises(UsageError, match=r"numpy\.load"):
        load(folder, {"flavor": "sklearn"})


def test_sklearn_allows_a_ufunc(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    X = frame.to_numpy()
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=500))
    model.fit(X, y)
    _, loaded = roundtrip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("numpy.log1p", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("numpy.load", False),
        ("builtins.eval", False),
        ("os.system", False),
        ("sklearn.no.such.Thing", False),
        ("tests.models.test_flavors.Marker", False),
    ],
)
def test_the_allow_list(name: str, allowed: bool) -> None:
    assert allowed_type(name) is allowed


def test_hist_gradient_boosting_roundtrip(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    model = HistGradientBoostingClassifier(max_iter=10).fit(frame, y)
    _, loaded = roundtrip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


# -- XGBoost and LightGBM -----------------------------------------------------------------


def test_xgboost_classifier(cancer: Any, tmp_path: Path) -> None:
    import xgboost as xgb

    frame, y = cancer
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(frame, y)
    properties, loaded = roundtrip(model, tmp_path)
    assert properties["flavor"] == "xgboost" and properties["format"] == "xgboost-ubj"
    assert properties["xgboost_class"] == "XGBClassifier"
    assert loaded.columns == tuple(frame.columns)
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), model.predict(frame))
    columns = {n: frame[n].to_numpy() for n in reversed(frame.columns)}
    np.testing.assert_array_equal(loaded.predict_proba(columns), model.predict_proba(frame))


def test_xgboost_booster(tmp_path: Path) -> None:
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=X[:, 0] * 2 + 1), num_boost_round=8)
    properties, loaded = roundtrip(booster, tmp_path)
    assert properties["xgboost_class"] == "Booster" and not loaded.has_proba
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(xgb.DMatrix(X)))


def test_lightgbm_classifier_with_text_labels(cancer: Any, tmp_path: Path) -> None:
    import lightgbm as lgb

    frame, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(frame, labels)
    properties, loaded = roundtrip(model, tmp_path)
    assert properties["format"] == "lightgbm-text" and properties["files"] == ["model.txt"]
    # LightGBM keeps "mean radius" as "mean_radius"; callers send the names they fitted on.
    assert loaded.columns == tuple(n.replace(" ", "_") for n in frame.columns)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    columns = {n: frame[n].to_numpy() for n in reversed(frame.columns)}
    np.testing.assert_array_equal(loaded.predict(columns), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame), rtol=1e-12)


def test_lightgbm_multiclass_and_regressor(tmp_path: Path) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # classes 0, 1, 2
    classifier = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    _, loaded = roundtrip(classifier, tmp_path / "c")
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), classifier.predict_proba(X), rtol=1e-12)
    regressor = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, X[:, 1])
    properties, loaded = roundtrip(regressor, tmp_path / "r")
    assert "feature_names" not in properties  # Column_0 ... are LightGBM's, not the caller's
    np.testing.assert_allclose(loaded.predict(X), regressor.predict(X), rtol=1e-12)
    booster = regressor.booster_
    _, loaded = roundtrip(booster, tmp_path / "b")
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X), rtol=1e-12)


# -- ONNX -----------------------------------------------------------------------------


def test_sklearn_to_onnx_matches_sklearn(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, y)
    signature = infer_signature(frame)
    data = to_onnx(model, signature)
    assert isinstance(data, bytes)
    properties, loaded = roundtrip(data, tmp_path, flavor="onnx")
    assert properties["flavor"] == "onnx" and properties["feature_names"] == list(frame.columns)
    assert properties["outputs"] == ["label", "probabilities"]
    columns = {n: frame[n].to_numpy() for n in frame.columns}
    proba = loaded.predict_proba(columns)
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-4)
    labels = loaded.predict(columns)
    assert (labels == model.predict(frame)).mean() >= 0.99  # float32 may flip a borderline row


def test_onnx_model_proto_is_detected(cancer: Any, tmp_path: Path) -> None:
    import onnx

    frame, y = cancer
    model = LogisticRegression(max_iter=500).fit(frame, y)
    proto = onnx.load_from_string(to_onnx(model, infer_signature(frame)))
    assert detect(proto).name == "onnx"
    _, loaded = roundtrip(proto, tmp_path)
    np.testing.assert_allclose(
        loaded.predict_proba(frame.to_numpy()), model.predict_proba(frame), atol=1e-4
    )


def test_to_onnx_refuses_text_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"size": [1.0, 2.0], "city": ["a", "b"]})
    with pytest.raises(UsageError, match="column 'city' is text"):
        to_onnx(LogisticRegression(), infer_signature(frame))


def test_onnx_refuses_bytes_that_are_not_onnx(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an ONNX model"):
        save(b"\x00garbage", tmp_path / "m", flavor="onnx")


# -- the python flavor and detection ------------------------------------------------------


class Doubler:
    def predict(self, X: Any) -> Any:
        return np.asarray(X)[:, 0] * 2


def test_python_flavor_is_marked_unsafe(tmp_path: Path) -> None:
    properties, loaded = roundtrip(Doubler(), tmp_path, flavor="python")
    assert properties["unsafe"] is True and "unpickles arbitrary code" in properties["warning"]
    assert flavor_named("python").unsafe
    X = np.array([[1.0, 5.0], [2.0, 6.0]])
    np.testing.assert_array_equal(loaded.predict(X), [2.0, 4.0])


def test_detect_never_picks_pickle(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"Doubler.*flavor='python'.*unsafe"):
        detect(Doubler())
    with pytest.raises(UsageError, match="flavor='onnx'"):
        detect(b"bytes")


def test_detect_by_library(cancer: Any) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    assert detect(LogisticRegression()).name == "sklearn"
    assert detect(make_pipeline(StandardScaler(), Ridge())).name == "sklearn"
    assert detect(xgb.XGBRegressor()).name == "xgboost"
    assert detect(lgb.LGBMRegressor()).name == "lightgbm"


def test_detect_imports_no_other_library() -> None:
    code = (
        "import sys\n"
        "from sklearn.linear_model import Ridge\n"
        "from mlkernel.models import detect\n"
        "assert detect(Ridge()).name == 'sklearn'\n"
        "try:\n    detect(object())\nexcept Exception:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('xgboost', 'lightgbm', 'onnx', 'onnxruntime', 'skops', 'skl2onnx'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_named_flavor_must_handle_the_object(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="xgboost flavor does not handle a Ridge"):
        save(Ridge(), tmp_path / "m", flavor="xgboost")
    with pytest.raises(UsageError, match="unknown model flavor 'torch'"):
        flavor_named("torch")


def test_save_wants_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "old").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        save(Ridge().fit([[1.0], [2.0]], [1.0, 2.0]), tmp_path / "m")


def test_a_damaged_folder_is_an_integrity_error(tmp_path: Path) -> None:
    properties = save(Ridge().fit([[1.0], [2.0]], [1.0, 2.0]), tmp_path / "m")
    (tmp_path / "m" / "model.skops").unlink()
    with pytest.raises(IntegrityError, match=r"no model\.skops"):
        load(tmp_path / "m", properties)
    with pytest.raises(IntegrityError, match="no flavor"):
        load(tmp_path / "m", {})


def test_loaded_model_names_a_missing_column_and_a_wrong_width(cancer: Any, tmp_path: Path) -> None:
    frame, y = cancer
    model = LogisticRegression(max_iter=50).fit(frame, y)
    _, loaded = roundtrip(model, tmp_path)
    partial = {n: frame[n].to_numpy() for n in frame.columns if n != "mean area"}
    with pytest.raises(UsageError, match=r"missing column.*'mean area'"):
        loaded.predict(partial)
    with pytest.raises(UsageError, match="matrix has 3 columns; the model takes 30"):
        loaded.predict(frame.to_numpy()[:, :3])


def test_importing_models_and_serve_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import mlkernel.models, mlkernel.models.flavors, mlkernel.models.signature\n"
        "import mlkernel.models.base, mlkernel.serve.protocol\n"
        "heavy = ('numpy', 'pyarrow', 'pandas', 'polars', 'sklearn', 'skops', 'onnx',\n"
        "         'onnxruntime', 'skl2onnx', 'xgboost', 'lightgbm', 'scipy')\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

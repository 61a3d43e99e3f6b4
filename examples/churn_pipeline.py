"""The demo's training pipeline: validate, prepare, train, evaluate, register.

`make demo` copies this file into its project as `pipelines/churn.py` and declares it in
mlkernel.toml (`[pipelines] churn = "pipelines.churn:churn"`); `mlk run churn` runs it.
The data comes in before, with `mlk data add` (the ingest stage).
"""

from __future__ import annotations

from typing import Any

import mlkernel as mlk

FEATURES = [f"f{i}" for i in range(8)]
LABEL = "churned"


@mlk.step
def validate(data: mlk.Artifact, max_null_share: float = 0.0) -> Any:
    """Refuse data without the expected columns or with missing values."""
    table = data.open()
    missing = [c for c in [*FEATURES, LABEL] if c not in table.column_names]
    if missing:
        raise ValueError(f"{data.ref} lacks the columns {missing}")
    nulls = sum(table.column(c).null_count for c in table.column_names)
    if nulls > max_null_share * table.num_rows:
        raise ValueError(f"{data.ref} has {nulls} missing values")
    return table.num_rows, mlk.Metrics(rows=table.num_rows, nulls=nulls)


@mlk.step
def prepare(data: mlk.Artifact, rows: int, test_size: float = 0.25, seed: int = 0) -> Any:
    """Split the row-major matrix (memory-mapped, cached per version) into train and test."""
    from sklearn.model_selection import train_test_split

    matrix = data.open(layout="rows")
    columns = matrix.columns
    x = matrix.matrix[:, [columns.index(c) for c in FEATURES]]
    y = matrix.matrix[:, columns.index(LABEL)]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    assert len(y) == rows
    return {"x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test}


@mlk.step
def train(split: dict[str, Any], C: float = 0.5, max_iter: int = 300) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    model = LogisticRegression(C=C, max_iter=max_iter)
    model.fit(split["x_train"], split["y_train"])
    accuracy = accuracy_score(split["y_train"], model.predict(split["x_train"]))
    return model, mlk.Metrics(train_accuracy=accuracy)


@mlk.step
def evaluate(model: Any, split: dict[str, Any]) -> Any:
    from sklearn.metrics import accuracy_score, roc_auc_score

    scores = {
        "test_accuracy": float(accuracy_score(split["y_test"], model.predict(split["x_test"]))),
        "test_auc": float(
            roc_auc_score(split["y_test"], model.predict_proba(split["x_test"])[:, 1])
        ),
    }
    return scores, mlk.Metrics(**scores)


@mlk.step(output="model:churn")
def register(model: Any, scores: dict[str, float], min_auc: float = 0.7) -> Any:
    """The promotion gate: a model that scores too low is not registered."""
    if scores["test_auc"] < min_auc:
        raise ValueError(f"test AUC {scores['test_auc']:.3f} is below the gate {min_auc}")
    return model


@mlk.pipeline
def churn() -> None:
    data = mlk.Ref("dataset:churn-train")
    rows = validate(data)
    split = prepare(data, rows)
    model = train(split)
    register(model, evaluate(model, split))

"""The end-to-end example behind `make demo`.

It creates a project in a temporary folder, records a dataset, trains a scikit-learn
model in a tracked run, registers the model, points the `production` alias at it and
prints the run, the model and its lineage with the `mlk` commands a user would type.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import warnings
from pathlib import Path

import mlkernel
from mlkernel.cli.main import main as mlk


def make_data(path: Path, rows: int = 5000, seed: int = 7) -> None:
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=rows, n_features=8, n_informative=5, random_state=seed
    )
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(features.shape[1])] + ["churned"])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([f"{v:.6f}" for v in row] + [int(label)])


def train(k: mlkernel.Kernel, csv_path: Path) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    k.log_artifact(csv_path, kind="dataset", name="churn-train")
    params = {"C": 0.5, "max_iter": 200, "test_size": 0.25}
    with k.start_run("train", params=params, inputs=["dataset:churn-train"]) as run:
        data = np.loadtxt(csv_path, delimiter=",", skiprows=1)
        x, y = data[:, :-1], data[:, -1]
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=params["test_size"], random_state=0
        )
        model = LogisticRegression(C=params["C"], max_iter=params["max_iter"])
        for epoch in range(1, 6):  # a few warm-started fits, to show a metric series
            model.set_params(max_iter=epoch, warm_start=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # early epochs stop before converging
                model.fit(x_train, y_train)
            run.log_metric("train_accuracy", accuracy_score(y_train, model.predict(x_train)))
        run.log_metrics(
            {
                "test_accuracy": accuracy_score(y_test, model.predict(x_test)),
                "test_auc": roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]),
            }
        )
        record = run.log_artifact(model, kind="model", name="churn")
    k.alias_set(record.ref, "production")
    return run.id


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 60 - len(title)))


def run_demo(root: Path) -> None:
    section(f"mlk init {root}")
    mlk(["init", str(root), "--name", "churn-demo"])
    csv_path = root / "churn.csv"
    make_data(csv_path)
    with mlkernel.open(root) as k:
        run_id = train(k, csv_path)
        model = k.load("model:churn@production")
        print(f"\nloaded model:churn@production back: {type(model).__name__}")
    for title, args in [
        ("mlk runs ls", ["runs", "ls"]),
        (f"mlk runs show {run_id}", ["runs", "show", str(run_id)]),
        ("mlk show model:churn@production", ["show", "model:churn@production"]),
        ("mlk lineage model:churn@production", ["lineage", "model:churn@production"]),
        ("mlk status", ["status"]),
    ]:
        section(title)
        mlk(["-C", str(root), *args])


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlkernel-demo-"))
    try:
        run_demo(folder / "project")
    finally:
        if args.keep:
            print(f"\nproject kept in {folder / 'project'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    cli()

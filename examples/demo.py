"""The end-to-end example behind `make demo`.

In a temporary project it: ingests training data (`mlk data add`), runs the churn
pipeline twice (the second run is all cache hits), promotes the model to `production`
and shows its lineage; declares a watched folder, drops a drifted batch into it and
shows the watcher catching it and where the HTML report is; lets the drift trigger
retrain the model (continuous training); and trains in ML mode next to a CPU hog.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import mlkernel
from mlkernel.cli.main import main as mlk

HERE = Path(__file__).parent

PROJECT_SETTINGS = """
[pipelines]
churn = "pipelines.churn:churn"

[pipelines.params.churn]
C = 0.5

[monitor.drift]
drift_share = 0.2     # the dataset counts as drifted when a fifth of its columns drift

[triggers.retrain-on-drift]
pipeline = "churn"
drift = "churn-train"
"""


def write_batch(path: Path, shift: float = 0.0, part: int = 0, rows: int = 5000) -> None:
    """Synthetic churn data: 8 features and a label, from one fixed population.

    ``part`` picks a disjoint sample of it (a later batch); ``shift`` moves two features
    by that many standard deviations (the drift the watcher should catch).
    """
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=rows * 2, n_features=8, n_informative=5, random_state=7
    )
    features, labels = (
        features[part * rows : (part + 1) * rows],
        labels[part * rows : (part + 1) * rows],
    )
    for column in (0, 3):
        features[:, column] += shift * features[:, column].std()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(features.shape[1])] + ["churned"])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([f"{v:.6f}" for v in row] + [int(label)])


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 66 - len(title)), flush=True)


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    code = mlk(args)
    if code != 0:
        raise SystemExit(f"`mlk {' '.join(args)}` failed with exit code {code}")
    return time.perf_counter() - started


def run_demo(root: Path, *, with_ml_mode: bool = True) -> None:
    from demo_mlmode import controller_running, stop_controller_if_unused

    # Pipeline steps run in ML mode, which starts the machine's scheduler controller if
    # none runs; it is the machine's, so it outlives the demo unless the demo stops it.
    started_here = not controller_running(None)
    try:
        _run_demo(root, with_ml_mode=with_ml_mode)
    finally:
        if started_here:
            stop_controller_if_unused(None)


def _run_demo(root: Path, *, with_ml_mode: bool) -> None:
    section(f"mlk init {root}")
    timed(["init", str(root), "--name", "churn-demo"])
    config = root / "mlkernel.toml"
    config.write_text(config.read_text() + PROJECT_SETTINGS)
    (root / "pipelines").mkdir()
    shutil.copy(HERE / "churn_pipeline.py", root / "pipelines" / "churn.py")
    (root / "pipelines" / "__init__.py").write_text("")
    project = ["-C", str(root)]

    section("mlk data add churn.csv --name churn-train   (ingest)")
    write_batch(root / "churn.csv")
    timed([*project, "data", "add", str(root / "churn.csv"), "--name", "churn-train"])
    timed([*project, "data", "show", "churn-train"])

    section("mlk run churn   (validate, prepare, train, evaluate, register)")
    first = timed([*project, "run", "churn"])
    section("mlk run churn   (again: nothing changed, every step is a cache hit)")
    second = timed([*project, "run", "churn"])
    print(f"first run {first:.2f} s, cached rerun {second:.2f} s")

    section("mlk alias set model:churn@1 production")
    timed([*project, "alias", "set", "model:churn@1", "production"])
    section("mlk lineage model:churn@production")
    timed([*project, "lineage", "model:churn@production"])
    with mlkernel.open(root) as k:
        model = k.load("model:churn@production")
        print(f"\nk.load('model:churn@production') -> {type(model).__name__}")

    section("a drifted batch arrives in the watched folder")
    from demo_watch import show_watcher

    show_watcher(root, lambda path, shift: write_batch(path, shift, part=1))

    section("mlk triggers run-pending   (drift found: retrain on the new data)")
    timed([*project, "triggers", "run-pending"])
    timed([*project, "ls", "model"])

    if with_ml_mode:
        section("ML mode: training next to a CPU hog")
        from demo_mlmode import show_ml_mode

        with mlkernel.open(root) as k:
            show_ml_mode(k)

    section("mlk status")
    timed([*project, "status"])


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    parser.add_argument("--no-ml-mode", action="store_true", help="skip the ML-mode part")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlkernel-demo-"))
    try:
        run_demo(folder / "project", with_ml_mode=not args.no_ml_mode)
    finally:
        if args.keep:
            print(f"\nproject kept in {folder / 'project'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    cli()

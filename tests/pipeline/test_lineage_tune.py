"""Lineage from a model back to its dataset versions; tuning trials as executions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mlkernel.kernel import Kernel
from mlkernel.testing import need

Writer = Callable[[Path, str, str], Path]

CHURN = """
import mlkernel as mlk

@mlk.step
def prepare(data: mlk.Artifact, clip: float = 100.0):
    table = data.open()
    return [min(float(v), clip) for v in table.column("spend").to_pylist()]

@mlk.step
def train(values, lr: float = 0.1):
    return {"mean": sum(values) / len(values), "lr": lr}, mlk.Metrics(loss=abs(lr - 0.3))

@mlk.step(output="model:churn")
def register(model, values):
    return {**model, "n": len(values)}

@mlk.pipeline
def churn():
    values = prepare(mlk.Ref("dataset:customers"))
    register(train(values), values)

@mlk.pipeline
def tuned():
    values = prepare(mlk.Ref("dataset:customers"))
    best = mlk.tune(train, {"lr": {"low": 0.01, "high": 1.0, "log": True}}, n_trials=6,
                    metric="loss", values=values)
    register(best, values)
"""


def _project(k: Kernel, write: Writer, tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text("id,spend\n1,10\n2,250\n3,40\n")
    k.data.add(csv, name="customers", progress=False)
    write(k.root, "pipes/churn.py", CHURN)


def test_lineage_shows_steps_and_dataset_versions(k: Kernel, write: Writer, tmp_path: Path) -> None:
    _project(k, write, tmp_path)
    result = k.pipelines.run("pipes/churn.py:churn", executor="process", ml_mode=False,
                             params={"lr": 0.2})  # fmt: skip
    assert result.state == "completed", result.error
    assert k.load("model:churn") == {"mean": (10 + 100 + 40) / 3, "lr": 0.2, "n": 3}
    k.alias_set("model:churn@1", "production")
    lineage = k.lineage("model:churn@production")
    refs = {a.ref for a in lineage.artifacts.values()}
    assert {"dataset:customers@1", "step:prepare@1", "step:train@1", "model:churn@1"} <= refs
    names = {e.name for e in lineage.executions.values()}
    assert {"prepare", "train", "register"} <= names
    train = k.pipelines.run_info(result.steps["train"].execution_id or 0)
    assert train["params"] == {"lr": 0.2}
    assert round(train["metrics"]["loss"]["last"], 9) == 0.1
    assert train["duration"] > 0
    assert train["resources"]["max_rss_kb"] > 0
    assert train["inputs"] == ["step:prepare@1"]
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("mlk")), "-C", str(k.root), "lineage",
         "model:churn@production"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for text in ("model:churn@1", "step register", "step prepare", "dataset:customers@1"):
        assert text in shown


def test_tuning_records_trials_and_passes_the_best_on(
    k: Kernel, write: Writer, tmp_path: Path
) -> None:
    _project(k, write, tmp_path)
    result = k.pipelines.run("pipes/churn.py:tuned", executor="inline", ml_mode=False)
    assert result.state == "completed", result.error
    steps = k.pipelines.steps(result.id)
    trials = [s for s in steps if ".trial-" in s["name"]]
    assert len(trials) == 6
    losses = []
    for trial in trials:
        info = k.run_info(trial["id"])
        assert set(info["params"]) == {"lr"}
        assert info["inputs"] == ["step:prepare@1"]
        losses.append(info["metrics"]["loss"]["last"])
    model = k.load("model:churn")
    assert abs(model["lr"] - 0.3) == min(losses)  # the best trial's output went on
    tune = result.steps["train.tune"]
    assert tune.metrics == {"loss": min(losses)}
    again = k.pipelines.run("pipes/churn.py:tuned", executor="inline", ml_mode=False)
    assert again.steps["train.tune"].state == "cached"


def test_ray_tune_on_the_ray_executor(k: Kernel, write: Writer, tmp_path: Path) -> None:
    """On the ray executor, `mlk.tune` searches with Ray Tune; trials are executions too."""
    try:
        import ray
        import ray.tune
    except ImportError:
        need(False, "Ray Tune is not installed; install ray[tune] to test tuning on Ray")
        raise
    _project(k, write, tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = k.pipelines.run("pipes/churn.py:tuned", executor="ray", ml_mode=False)
    finally:
        ray.shutdown()
    assert result.state == "completed", result.error
    trials = [s for s in k.pipelines.steps(result.id) if ".trial-" in s["name"]]
    assert len(trials) == 6
    losses = [k.run_info(t["id"])["metrics"]["loss"]["last"] for t in trials]
    assert all(0.01 <= k.run_info(t["id"])["params"]["lr"] <= 1.0 for t in trials)
    assert abs(k.load("model:churn")["lr"] - 0.3) == min(losses)

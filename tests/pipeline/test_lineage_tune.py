"""Lineage from a model back to its dataset versions; tuning trials as executions."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel
from mlkernel.pipeline.infos import StepInfo
from mlkernel.testing import need, start_mlk, wait_for

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
    assert train.run.params == {"lr": 0.2}
    assert round(train.run.metrics["loss"].last, 9) == 0.1
    assert (train.record.duration or 0) > 0
    assert (train.record.resources or {})["max_rss_kb"] > 0
    assert train.run.inputs == ["step:prepare@1"]
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
    trials = [s for s in steps if ".trial-" in s.name]
    assert len(trials) == 6
    losses = []
    for trial in trials:
        info = k.run_info(trial.id)
        assert set(info.params) == {"lr"}
        assert info.inputs == ["step:prepare@1"]
        losses.append(info.metrics["loss"].last)
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
    trials = [s for s in k.pipelines.steps(result.id) if ".trial-" in s.name]
    assert len(trials) == 6
    losses = [k.run_info(t.id).metrics["loss"].last for t in trials]
    assert all(0.01 <= k.run_info(t.id).params["lr"] <= 1.0 for t in trials)
    assert abs(k.load("model:churn")["lr"] - 0.3) == min(losses)


SEARCH = """
import mlkernel as mlk

@mlk.step
def values(n: int = 4):
    return list(range(n))

@mlk.step
def fit(values, lr: float = 0.1, depth: int = 2):
    return {"lr": lr, "depth": depth}, mlk.Metrics(loss=abs(lr - 0.3) + depth / 100)

@mlk.step(output="model:searched")
def keep(model):
    return model

@mlk.pipeline
def search():
    best = mlk.tune(fit, {"lr": {"low": 0.01, "high": 1.0, "log": True},
                          "depth": {"low": 1, "high": 9}},
                    n_trials=5, metric="loss", values=values())
    keep(best)
"""


def _trials(k: Kernel, run_id: int) -> list[StepInfo]:
    return [s for s in k.pipelines.steps(run_id) if s.tune == "fit.tune"]


def _search(k: Kernel, **params: object) -> tuple[int, list[StepInfo]]:
    result = k.pipelines.run("flows/search.py:search", executor="inline", ml_mode=False,
                             params=params)  # fmt: skip
    assert result.state == "completed", result.error
    return result.id, _trials(k, result.id)


def test_overrides_of_a_tuning_step_apply(k: Kernel, write: Writer) -> None:
    """A tuned parameter set by an override is fixed (not searched); n_trials sets the
    number of trials; with every tuned parameter fixed one trial runs."""
    write(k.root, "flows/search.py", SEARCH)
    _, searched = _search(k)
    assert len(searched) == 5
    assert len({t.params["lr"] for t in searched}) == 5
    _, fixed = _search(k, lr=0.5)
    assert len(fixed) == 5
    assert {t.params["lr"] for t in fixed} == {0.5}
    assert len({t.params["depth"] for t in fixed}) > 1
    assert all(set(t.searched or {}) == {"depth"} for t in fixed)
    assert k.load("model:searched")["lr"] == 0.5
    _, fewer = _search(k, **{"fit.tune.n_trials": 3})
    assert len(fewer) == 3
    _, one = _search(k, lr=0.3, depth=1)
    assert [t.params for t in one] == [{"lr": 0.3, "depth": 1}]
    assert k.load("model:searched") == {"lr": 0.3, "depth": 1}
    again = k.pipelines.run("flows/search.py:search", executor="inline", ml_mode=False,
                            params={"lr": 0.3, "depth": 1})  # fmt: skip
    assert again.steps["fit.tune"].state == "cached"
    with pytest.raises(UsageError, match="n_trials must be an int of 1 or more, got 0"):
        k.pipelines.run("flows/search.py:search", params={"n_trials": 0})


def test_trials_record_their_times_params_and_metrics(k: Kernel, write: Writer) -> None:
    write(k.root, "flows/search.py", SEARCH)
    run_id, trials = _search(k, **{"n_trials": 3})
    assert [t.trial for t in trials] == [0, 1, 2]
    for before, after in itertools.pairwise(trials):
        assert before.ended_at is not None
        assert before.started_at < before.ended_at <= after.started_at
    for trial in trials:
        params, metrics = trial.params, trial.metrics
        assert metrics["loss"] == pytest.approx(abs(params["lr"] - 0.3) + params["depth"] / 100)
        assert trial.score == metrics["loss"]
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("mlk")), "-C", str(k.root), "runs", "show",
         str(run_id)],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    assert "Trials of fit.tune (minimize loss)" in shown
    for trial in trials:
        params, metrics = trial.params, trial.metrics
        row = f"depth={params['depth']!r}, lr={params['lr']:.6g}"
        assert row in shown
        assert f"{metrics['loss']:.6g}" in shown
    best = min(trials, key=lambda t: t.score or 0.0)
    assert f"{best.trial} best" in shown
    assert "Step metrics" in shown


SCORED = """
import mlkernel as mlk

@mlk.step
def fit(n: int = 3):
    return {"n": n}, mlk.Metrics(auc=0.75, loss=0.25)

@mlk.step
def evaluate(model) -> mlk.Metrics:
    return mlk.Metrics(n=model["n"])

@mlk.step
def quiet(model):
    return model

@mlk.pipeline
def scored():
    model = fit()
    evaluate(model)
    quiet(model)
"""


def test_step_metrics_are_shown_by_run_and_runs_show(project: Kernel, write: Writer) -> None:
    """`mlk run` ends with each step's metrics, a cached step showing those of the run
    it reused; `mlk runs show` lists them per step (both metadata backends)."""
    write(project.root, "flows/scored.py", SCORED)
    mlk = [str(Path(sys.executable).with_name("mlk")), "-C", str(project.root)]
    env = {**os.environ, "COLUMNS": "200"}
    for expected in ("ran", "cached"):
        out = subprocess.run(
            [*mlk, "run", "flows/scored.py:scored", "--executor", "inline"],
            capture_output=True, text=True, check=True, env=env,
        ).stdout  # fmt: skip
        assert f"  {expected}  " in out
        assert "  metrics  fit: auc=0.75, loss=0.25\n" in out
        assert "  metrics  evaluate: n=3\n" in out
        assert "metrics  quiet" not in out
    run_id = project.pipelines.runs()[0].record.id
    shown = subprocess.run([*mlk, "runs", "show", str(run_id)], capture_output=True, text=True,
                           check=True, env=env).stdout  # fmt: skip
    assert "Step metrics" in shown
    rows = [line.split("│") for line in shown.splitlines() if line.count("│") == 1]
    assert [(a.strip(), b.strip()) for a, b in rows] == [
        ("fit", "auc=0.75, loss=0.25"), ("evaluate", "n=3")
    ]  # fmt: skip
    steps = {s.name: s for s in project.pipelines.run_info(run_id).steps or ()}
    assert steps["fit"].state == "cached"
    assert steps["fit"].metrics == {"auc": 0.75, "loss": 0.25}
    assert steps["fit"].params == {"n": 3}
    assert steps["quiet"].metrics == {}


def test_a_run_cancelled_mid_search_keeps_the_trials_that_ran(
    k: Kernel, write: Writer, declare: Callable[[Path, str], None]
) -> None:
    write(
        k.root,
        "flows/slowsearch.py",
        """
        import time
        from pathlib import Path
        import mlkernel as mlk

        ROOT = Path(__file__).resolve().parent.parent

        @mlk.step
        def fit(lr: float = 0.1):
            done = len(list(ROOT.glob("trial-*")))
            (ROOT / f"trial-{done}").write_text("")
            if done == 2:  # the third trial waits to be cancelled
                (ROOT / "started").write_text("")
                time.sleep(120)
            return {"lr": lr}, mlk.Metrics(loss=abs(lr - 0.3))

        @mlk.pipeline
        def slowsearch():
            mlk.tune(fit, {"lr": {"low": 0.01, "high": 1.0}}, n_trials=5)
        """,
    )
    declare(k.root, '[pipelines]\nml_mode = false\nslow = "flows/slowsearch.py:slowsearch"\n')
    proc = start_mlk(k.root, "run", "slow")
    wait_for(proc, k.root / "started", what="the third trial did not start")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    run = k.pipelines.runs()[0].record
    assert run.state == "cancelled"
    steps = k.pipelines.steps(run.id)
    trials = [(s.trial, s.state) for s in steps if s.tune == "fit.tune"]
    assert trials == [(0, "ran"), (1, "ran"), (2, "cancelled")]
    assert all(s.metrics for s in steps if s.tune and s.state == "ran")

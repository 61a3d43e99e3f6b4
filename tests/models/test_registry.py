"""The model registry (``k.models``, ``mlk models``): versions with a flavor, an input
signature, the metrics and inputs of the run that made them; loading through the flavor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlkernel.authz import Actor
from mlkernel.errors import NotFoundError, UsageError
from mlkernel.kernel import Kernel
from mlkernel.testing import run_mlk


class Rule:
    """A hand-written model: predicts 1 above a threshold (pickled by the python flavor)."""

    def predict(self, rows: object) -> list[int]:
        return []


def _train(project: Kernel, tmp_path: Path) -> tuple[object, object]:
    """A churn-like dataset ingested, a logistic regression fitted on its columns."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, 200),
            "charges": rng.normal(70.0, 20.0, 200),
            "churned": rng.integers(0, 2, 200),
        }
    )
    (tmp_path / "train.csv").write_text(frame.to_csv(index=False))
    project.data.add(tmp_path / "train.csv", name="train", progress=False)
    features = frame[["tenure", "charges"]]
    model = LogisticRegression(max_iter=500).fit(features, frame["churned"])
    return model, features


def test_a_logged_model_has_flavor_signature_metrics_and_loads_back(
    project: Kernel, tmp_path: Path
) -> None:
    model, features = _train(project, tmp_path)
    with project.start_run("train", inputs=["dataset:train"]) as run:
        run.log_metric("auc", 0.81)
        record = project.models.log(
            model, name="churn", training="dataset:train", execution_id=run.id
        )
    assert (record.kind, record.name, record.version) == ("model", "churn", 1)

    info = project.models.show("churn")
    assert (info.flavor, info.unsafe) == ("sklearn", False)
    assert info.signature is not None
    assert [(c.name, c.type) for c in info.signature.inputs] == [
        ("tenure", "int"),
        ("charges", "float"),
    ]  # the fitted columns, not the target
    assert info.metrics == {"auc": 0.81}
    assert info.inputs == ["dataset:train@1"]
    assert info.run is not None and info.run.startswith("train #")
    assert "scikit-learn" in info.libraries or "sklearn" in json.dumps(info.libraries)

    loaded = project.models.load("churn@1")
    expected = model.predict(features)  # type: ignore[attr-defined]
    got = loaded.predict({"tenure": features["tenure"], "charges": features["charges"]})
    assert np.array_equal(got, expected)
    again = project.models.load("model:churn")  # unpacked once, then from the cache
    assert np.array_equal(again.predict(features), expected)


def test_the_pickle_flavor_and_plain_objects_say_they_are_unsafe(project: Kernel) -> None:
    project.models.log(Rule(), name="rule", flavor="python")
    project.log_artifact({"w": 1}, kind="model", name="legacy")
    listed = {m.record.name: (m.flavor, m.unsafe) for m in project.models.ls()}
    assert listed == {"rule": ("python", True), "legacy": ("pickle", True)}
    with pytest.raises(UsageError, match=r"logged as a plain object.*k\.load"):
        project.models.load("legacy")
    with pytest.raises(UsageError, match="no flavor handles"):
        project.models.log(object(), name="mystery")
    # nothing half-written by the refused log
    assert {m.record.name for m in project.models.ls()} == {"legacy", "rule"}


def test_a_version_records_who_logged_it(project: Kernel, tmp_path: Path) -> None:
    model, _features = _train(project, tmp_path)
    record = project.as_actor(Actor("alice")).models.log(model, name="churn")
    assert record.created_by == "alice"
    shown = project.models.show("churn")
    assert shown.signature is None  # none given, none inferred
    assert (shown.run, shown.metrics, shown.inputs) == (None, {}, [])  # logged outside a run


def test_the_commands(sqlite_project: Kernel, tmp_path: Path) -> None:
    model, _features = _train(sqlite_project, tmp_path)
    sqlite_project.models.log(model, name="churn", training="train")
    sqlite_project.alias_set("model:churn@1", "production")
    root = sqlite_project.root
    sqlite_project.close()

    listed = run_mlk("models", "ls", "--json", cwd=root)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["ref"], row["flavor"], row["aliases"]) == (
        "model:churn@1",
        "sklearn",
        {"production": 1},
    )
    shown = run_mlk("models", "show", "churn@production", cwd=root, columns=120)
    assert shown.returncode == 0, shown.stderr
    assert "sklearn" in shown.stdout and "tenure: int" in shown.stdout
    as_json = json.loads(run_mlk("models", "show", "churn", "--json", cwd=root).stdout)
    assert as_json["signature"]["inputs"][0]["name"] == "tenure"

    history = run_mlk("models", "history", "churn", cwd=root)
    assert history.returncode == 0, history.stderr
    assert "production  - -> 1" in history.stdout

    for bad in (
        ["models", "show", "nope"],
        ["models", "show", "dataset:train"],
        ["models", "history", "dataset:train"],
    ):
        failed = run_mlk(*bad, cwd=root)
        assert failed.returncode not in (0, 70), failed
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
        assert "Traceback" not in failed.stderr


def test_history_lists_every_alias_move(project: Kernel, tmp_path: Path) -> None:
    model, _features = _train(project, tmp_path)
    for _ in range(2):
        project.models.log(model, name="churn")
    project.alias_set("model:churn@1", "production")
    project.as_actor(Actor("bob")).alias_set("model:churn@2", "production")
    project.alias_rollback("model:churn", "production")
    moves = [(m.from_version, m.to_version, m.by) for m in project.models.history("churn")]
    assert moves[1:] == [(1, 2, "bob"), (2, 1, project.actor.name)]
    assert moves[0][:2] == (None, 1)


def test_an_unknown_model_names_the_fix(project: Kernel) -> None:
    with pytest.raises(NotFoundError):
        project.models.show("nope")

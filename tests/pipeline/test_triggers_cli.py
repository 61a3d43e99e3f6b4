"""Triggers (cron, dataset changed, drift detected, manual) and the pipeline commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

import mlkernel
from mlkernel.errors import ConfigError
from mlkernel.kernel import Kernel
from mlkernel.pipeline.cron import Cron

Writer = Callable[[Path, str, str], Path]
MLK = str(Path(sys.executable).with_name("mlk"))

SOURCE = """
import mlkernel as mlk

@mlk.step
def count(data: mlk.Artifact):
    print("rows", data.properties.get("rows"))
    return data.properties.get("rows")

@mlk.step(output="model:counter")
def fit(n, lr: float = 0.1):
    return {"n": n, "lr": lr}

@mlk.pipeline
def train():
    fit(count(mlk.Ref("dataset:events")))
"""

SETTINGS = """
[pipelines]
ml_mode = false
executor = "inline"
train = "pipes/train.py:train"

[pipelines.params.train]
lr = 0.5

[triggers.nightly]
pipeline = "train"
cron = "0 2 * * *"

[triggers.new-data]
pipeline = "train"
dataset = "events"

[triggers.drifted]
pipeline = "train"
drift = "events"
params = { lr = 0.9 }

[triggers.by-hand]
pipeline = "train"
"""


def _mlk(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLK, "-C", str(root), *args], capture_output=True, text=True, check=check
    )


@pytest.fixture
def proj(tmp_path: Path, write: Writer, declare: Callable[[Path, str], None]) -> Kernel:
    k = mlkernel.init(tmp_path / "proj", name="proj")
    k.close()
    write(k.root, "pipes/train.py", SOURCE)
    declare(k.root, SETTINGS)
    (tmp_path / "events.csv").write_text("a,b\n1,2\n3,4\n")
    k = mlkernel.open(k.root)
    k.data.add(tmp_path / "events.csv", name="events", progress=False)
    return k


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_cron_expressions() -> None:
    nightly = Cron.parse("0 2 * * *")
    assert nightly.next_after(_at("2024-05-01T01:59")) == _at("2024-05-01T02:00")
    assert nightly.next_after(_at("2024-05-01T02:00")) == _at("2024-05-02T02:00")
    weekly = Cron.parse("30 */6 * * 1-5")  # weekdays, every 6 hours at :30
    assert weekly.next_after(_at("2024-05-04T10:00")) == _at("2024-05-06T00:30")  # Sat -> Mon
    assert Cron.parse("@hourly").next_after(_at("2024-05-01T10:15")) == _at("2024-05-01T11:00")
    with pytest.raises(ConfigError, match="5"):
        Cron.parse("0 2 * *")
    with pytest.raises(ConfigError, match="outside 0-23"):
        Cron.parse("0 25 * * *")


def test_triggers_fire_when_due_and_record_why(proj: Kernel, tmp_path: Path) -> None:
    k = proj
    t0 = _at("2024-05-01T01:00")
    fired = k.pipelines.run_pending(now=t0)
    # a dataset never seen is new; the schedule starts counting now
    assert [(f.trigger, f.state) for f in fired] == [("new-data", "completed")]
    assert fired[0].reason == "dataset:events@1 is new"
    assert k.pipelines.run_pending(now=t0 + 60) == []
    fired = k.pipelines.run_pending(now=_at("2024-05-01T02:30"))
    assert [f.trigger for f in fired] == ["nightly"]
    assert "was due at 2024-05-01 02:00" in fired[0].reason
    run = k.pipelines.run_info(fired[0].run or 0).pipeline
    assert run is not None and run.trigger is not None
    assert run.trigger["name"] == "nightly"
    assert run.trigger["type"] == "cron"
    # a new version of the dataset
    (tmp_path / "events.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    k.data.add(tmp_path / "events.csv", name="events", progress=False)
    fired = k.pipelines.run_pending(now=_at("2024-05-01T03:00"))
    assert [(f.trigger, f.reason) for f in fired] == [
        ("new-data", "dataset:events@2 is new (last seen @1)")
    ]
    assert k.load("model:counter") == {"n": 3, "lr": 0.5}  # [pipelines.params.train]
    # a drift report that found drift (as the monitor stores it)
    props = {"reference": "dataset:events@1", "current": "dataset:events@2",
             "dataset_drift": True, "drifted": ["a"], "format": "json"}  # fmt: skip
    k.log_artifact(b"{}", kind="report", name="drift-events", properties=props)
    fired = k.pipelines.run_pending(now=_at("2024-05-01T03:01"))
    assert [f.trigger for f in fired] == ["drifted"]
    assert "drift detected in report:drift-events@1" in fired[0].reason
    assert k.load("model:counter")["lr"] == 0.9  # the trigger's params
    listed = {t.name: t for t in k.pipelines.triggers()}
    assert listed["drifted"].last_state == "completed"
    assert listed["by-hand"].type == "manual"
    assert listed["nightly"].next == _at("2024-05-02T02:00")


def test_the_commands(proj: Kernel) -> None:
    root = proj.root
    proj.close()
    out = _mlk(root, "run", "train", "-p", "fit.lr=0.25").stdout
    assert "ran      fit" in out
    assert "count | rows 2" in out
    again = json.loads(_mlk(root, "run", "train", "-p", "fit.lr=0.25", "--json").stdout)
    assert {s["state"] for s in again["steps"]} == {"cached"}
    runs = json.loads(_mlk(root, "runs", "ls", "--json").stdout)
    assert [r["type"] for r in runs] == ["pipeline", "pipeline"]
    assert [s["state"] for s in runs[1]["steps"]] == ["ran", "ran"]
    shown = json.loads(_mlk(root, "runs", "show", str(again["id"]), "--json").stdout)
    assert [s["state"] for s in shown["steps"]] == ["cached", "cached"]
    assert shown["pipeline"]["overrides"] == {"lr": 0.5, "fit.lr": 0.25}
    assert "rows 2" in _mlk(root, "runs", "logs", str(runs[1]["id"]), "--step", "count").stdout
    assert "steps" in _mlk(root, "runs", "show", str(runs[1]["id"])).stdout.lower()
    listed = json.loads(_mlk(root, "pipelines", "ls", "--json").stdout)
    assert listed[0]["name"] == "train" and listed[0]["last_state"] == "completed"
    drawn = _mlk(root, "pipelines", "show", "train").stdout
    assert "fit  <- count  -> model:counter" in drawn
    assert "dataset:events" in drawn
    assert _mlk(root, "pipelines", "show", "pipes/train.py:train").returncode == 0
    fired = json.loads(_mlk(root, "triggers", "fire", "by-hand", "--json").stdout)
    assert (fired["type"], fired["state"]) == ("manual", "completed")
    assert "nightly" in _mlk(root, "triggers", "ls").stdout
    bad = _mlk(root, "run", "nope", check=False)
    assert bad.returncode == 4
    assert "no pipeline named 'nope'" in bad.stderr
    assert "did you mean" not in bad.stderr
    bad = _mlk(root, "run", "trian", check=False)
    assert (bad.returncode, bad.stderr.count("\n")) == (4, 1)
    assert "no pipeline named 'trian' in mlkernel.toml (train); did you mean 'train'?" in bad.stderr
    bad = _mlk(root, "run", "train", "-p", "depth=3", check=False)
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    assert "no parameter 'depth'" in bad.stderr
    cancel = _mlk(root, "runs", "cancel", str(runs[0]["id"]), check=False)
    assert cancel.returncode == 5 and "is not running" in cancel.stderr

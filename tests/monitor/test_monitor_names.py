"""Names derived from dataset names: unambiguous and valid for every valid dataset name."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from hypothesis import given, settings
from hypothesis import strategies as st

import mlkernel
from mlkernel.monitor.names import derived_name, drift_report_names, drift_run_name
from mlkernel.monitor.watch import WatchSpec
from mlkernel.refs import MAX_NAME, validate_name

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", fullmatch=True)
CLOSE = ["x", "x.json", "x-json", "json-x", "json.x", "drift-x", "x.html", "a" * 200, "a" * 199]
LONG = ["b" * 180 + suffix for suffix in ("", "c", "c" * 20, "d" * 20)] + ["b" * 190 + "-1"]


@settings(deadline=None)  # a shared, loaded machine: no per-example time limit
@given(names, names)
def test_report_names_are_valid_and_never_shared(a: str, b: str) -> None:
    for name in (a, b):
        for derived in drift_report_names(name).values():
            assert validate_name(derived) == derived and len(derived) <= MAX_NAME
        for kind in ("profile", "drift", "watch"):
            assert len(validate_name(drift_run_name(kind, name))) <= MAX_NAME
    pairs_a = {(fmt, n) for fmt, n in drift_report_names(a).items()}
    pairs_b = {(fmt, n) for fmt, n in drift_report_names(b).items()}
    if a != b:  # two datasets never share a report name, in any format
        assert not {n for _f, n in pairs_a} & {n for _f, n in pairs_b}
    assert len({n for _f, n in pairs_a}) == 2  # one name per format


def test_close_and_long_names_are_apart() -> None:
    every = [n for name in CLOSE + LONG for n in drift_report_names(name).values()]
    assert len(every) == len(set(every))
    assert drift_report_names("x.json")["html"] != drift_report_names("x")["json"]
    # a plain name one character short of the limit and a shortened one stay apart
    hashed = derived_name("drift", "b" * 200)
    assert len(hashed) == MAX_NAME and hashed.startswith("drift_")
    assert derived_name("drift", "b" * (MAX_NAME - 6)) == "drift-" + "b" * (MAX_NAME - 6)


def write_csv(path: Path, shift: float, seed: int, n: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    table = pa.table({"u": rng.normal(shift, 1.0, n), "v": rng.normal(shift, 1.0, n)})
    pacsv.write_csv(table, path)
    return path


PIPELINE = """
import mlkernel as mlk

@mlk.step(output="model:counter")
def fit():
    return {"n": 1}

@mlk.pipeline
def train():
    fit()
"""

TRIGGERS = """
[pipelines]
ml_mode = false
executor = "inline"
train = "pipes/train.py:train"

[triggers.on-x-json]
pipeline = "train"
drift = "x.json"
"""


def test_reports_of_x_and_x_json_do_not_mix_and_triggers_tell_them_apart(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    mlkernel.init(root, name="proj").close()
    (root / "pipes").mkdir()
    (root / "pipes" / "train.py").write_text(PIPELINE)
    (root / "mlkernel.toml").write_text((root / "mlkernel.toml").read_text() + TRIGGERS)
    with mlkernel.open(root) as k:
        for name in ("x", "x.json"):
            for i, shift in enumerate((0.0, 0.0)):
                path = write_csv(tmp_path / f"{name}-{i}.csv", shift, i)
                k.data.add(path, name=name, progress=False)
        assert k.pipelines.run_pending() == []
        # dataset x drifts: its reports; nothing fires for x.json
        k.data.add(write_csv(tmp_path / "x-2.csv", 5.0, 9), name="x", progress=False)
        report = k.monitor.report("dataset:x@2", "dataset:x@3")
        assert report.result.dataset_drift
        assert k.pipelines.run_pending() == []
        k.monitor.report("dataset:x.json@1", "dataset:x.json@2")
        for record in k.context.table.latest("report"):
            versions = k.context.table.versions("report", record.name)
            # one report artifact name: one dataset, one format
            assert len({(v.properties["dataset"], v.properties["format"]) for v in versions}) == 1
        # now x.json drifts: the trigger fires, naming it
        k.data.add(write_csv(tmp_path / "xj-2.csv", 5.0, 9), name="x.json", progress=False)
        k.monitor.report("dataset:x.json@2", "dataset:x.json@3")
        (fired,) = k.pipelines.run_pending()
        assert fired.trigger == "on-x-json" and "dataset:x.json@3" in fired.reason


def test_a_200_character_dataset_is_profiled_compared_and_watched(tmp_path: Path) -> None:
    name = "d" * 195 + ".long"
    assert len(name) == MAX_NAME
    root = tmp_path / "proj"
    mlkernel.init(root, name="proj").close()
    (root / "incoming").mkdir()
    write_csv(root / "incoming" / "a.csv", 0.0, 1)
    with mlkernel.open(root) as k:
        watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset=name, debounce=0)])
        clock = time.monotonic()
        assert [e.version for e in watcher.scan(clock) + watcher.scan(clock + 1)] == [
            f"dataset:{name}@1"
        ]
        write_csv(root / "incoming" / "b.csv", 4.0, 2)
        (event,) = watcher.scan(clock + 2) + watcher.scan(clock + 3)
        assert event.error is None and event.version == f"dataset:{name}@2"
        (compared,) = event.reports
        assert compared.dataset_drift is True
        record = k.resolve(compared.report)
        assert record.properties["dataset"] == name
    env = {key: v for key, v in os.environ.items() if key != "MLK_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "mlkernel", "data", "drift", f"{name}@1", f"{name}@2"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "drift" in result.stdout

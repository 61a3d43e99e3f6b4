"""What `mlk data drift` and `mlk data watch` print says what the reports say."""

import html
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import mlkernel
from mlkernel.monitor.watch import Comparison, describe_comparison
from mlkernel.testing import run_mlk


def mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlk(*args, cwd=root, columns=200)


def write(path: Path, columns: dict[str, object]) -> Path:
    pacsv.write_csv(pa.table(columns), path)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    mlkernel.init(root, name="proj").close()
    return root


def test_drift_lists_added_and_removed_columns_and_new_missing_values(
    root: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    n = 300
    before = {
        "kept": rng.normal(0, 1, n),
        "gone": rng.normal(0, 1, n),
        "holes": rng.normal(0, 1, n),
    }
    holes = pa.array([None if i % 10 == 0 else float(v) for i, v in enumerate(rng.normal(0, 1, n))])
    after = {"kept": rng.normal(0, 1, n), "holes": holes, "added": rng.normal(0, 1, n)}
    with mlkernel.open(root) as k:
        k.data.add(write(tmp_path / "a.csv", before), name="t", progress=False)
        k.data.add(write(tmp_path / "b.csv", after), name="t", progress=False)
    result = mlk(root, "data", "drift", "t@1", "t@2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "added: new column" in out
    assert "gone: missing column" in out
    assert "holes: new missing values 0 (0.00%) → 30 (10.00%)" in out
    assert "0.00% → 10.00%" in out  # the table's missing column too
    # the JSON report stored for the page lists the same changes, word for word
    doc = json.loads(mlk(root, "data", "drift", "t@1", "t@2", "--json").stdout)
    with mlkernel.open(root) as k:
        stored = json.loads(k.context.objects.read_bytes(k.resolve(doc["report_json"]).digest))
        page = k.context.objects.read_bytes(k.resolve(doc["report"]).digest).decode()
    texts = [c["text"] for c in stored["changes"]]
    assert [c["text"] for c in doc["changes"]] == texts  # --json says the same
    assert len(texts) == 3
    for text in texts:
        assert text in out
        assert f"<li>{html.escape(text)}</li>" in page
    holes_json = next(c for c in doc["columns"] if c["column"] == "holes")
    assert holes_json["missing_share"] == {"reference": 0.0, "current": 0.1}


def test_a_drifted_column_is_never_reported_as_no_drift(root: Path) -> None:
    rng = np.random.default_rng(2)
    n = 400
    config = root / "mlkernel.toml"
    config.write_text(
        config.read_text() + '\n[[watch]]\npath = "in/*.csv"\ndataset = "cells"\ndebounce = 0.1\n'
    )
    (root / "in").mkdir()
    base = {f"c{i}": rng.normal(0, 1, n) for i in range(3)}
    write(root / "in" / "1.csv", {"mean radius": rng.normal(0, 1, n), **base})
    assert mlk(root, "data", "watch", "--once", "--poll", "0.1").returncode == 0
    moved = {f"c{i}": rng.normal(0, 1, n) for i in range(3)}
    write(root / "in" / "2.csv", {"mean radius": rng.normal(3, 1, n), **moved})
    result = mlk(root, "data", "watch", "--once", "--poll", "0.1")
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "vs dataset:cells@1" in x]
    assert "no drift in" not in line
    assert "no dataset drift, but 1 of 4 columns drifted: mean radius" in line


def test_describe_comparison_words() -> None:
    base = Comparison("dataset:t@1", "report:drift-t@1", "r.html", False, (), 4, 0.5)
    assert describe_comparison(replace(base, dataset_drift=True, drifted=("a", "b"))) == (
        "DRIFT: 2 of 4 columns drifted: a, b"
    )
    assert describe_comparison(base) == "no drift in any of the 4 columns tested"
    assert describe_comparison(replace(base, drifted=("a",))) == (
        "no dataset drift, but 1 of 4 columns drifted: a "
        "(below the share 0.5 that makes the dataset drift)"
    )


def test_a_column_that_changed_type_is_drift_and_listed(root: Path, tmp_path: Path) -> None:
    # A column that went from numbers to text used to be "not tested" and left out of the
    # count ("no drift, 0 of 0 columns"); with an HTML report it ended in exit 70.
    with mlkernel.open(root) as k:
        k.data.add(write(tmp_path / "a.csv", {"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}), name="t")
        k.data.add(
            write(tmp_path / "b.csv", {"a": ["q", "r", "s"], "b": [0.5, 1.5, 2.5]}), name="t"
        )
    page = tmp_path / "drift.html"
    shown = mlk(root, "data", "drift", "t@1", "t@2", "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    assert "drift (1 of 2 columns" in shown.stdout
    assert "a: type changed numerical (int64) -> categorical (string)" in shown.stdout
    assert "a: type changed" in html.unescape(page.read_text())
    document = json.loads(mlk(root, "data", "drift", "t@1", "t@2", "--json").stdout)
    assert document["drifted_columns"] == ["a"]
    assert document["changed_types"] == {"a": "numerical (int64) -> categorical (string)"}

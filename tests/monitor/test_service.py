"""k.monitor on a real project: profiles and reports as artifacts with lineage."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mlkernel.kernel import Kernel


def write_csv(path: Path, n: int, shift: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "stable": rng.normal(0.0, 1.0, n),
            "moving": rng.normal(5.0 + shift, 2.0, n),
            "city": rng.choice(["paris", "rome", "oslo"], n),
        }
    )
    pacsv.write_csv(table, path)
    return path


@pytest.fixture
def two_versions(project: Kernel, tmp_path: Path) -> Kernel:
    project.data.add(write_csv(tmp_path / "a.csv", 3000, 0.0, 1), name="train", progress=False)
    project.data.add(write_csv(tmp_path / "b.csv", 3000, 3.0, 2), name="train", progress=False)
    return project


def test_profile_is_stored_once_and_linked(two_versions: Kernel) -> None:
    k = two_versions
    first = k.monitor.profile_record("train@1")
    again = k.monitor.profile_record("train@1")
    assert first.id == again.id
    assert first.properties["dataset"] == "dataset:train@1"
    profile = k.monitor.profile("train@1")
    assert profile.n_rows == 3000
    assert profile.columns["stable"].count == 3000
    up = k.lineage(first.ref, "up")
    assert {up.artifacts[e.parent_id].ref for e in up.edges} == {"dataset:train@1"}


def test_drift_flags_the_moved_column_only(two_versions: Kernel) -> None:
    result = two_versions.monitor.drift("train@1", "train@2")
    assert [c.column for c in result.drifted] == ["moving"]


def test_report_artifacts_have_lineage_to_both_versions(
    two_versions: Kernel, tmp_path: Path
) -> None:
    k = two_versions
    out = tmp_path / "report.html"
    report = k.monitor.report("train@1", "train@2", html=out)
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert k.context.objects.read_bytes(report.html.digest) == out.read_bytes()
    up = k.lineage(report.html.ref, "up", depth=1)
    parents = {up.artifacts[e.parent_id].ref for e in up.edges}
    assert {"dataset:train@1", "dataset:train@2"} <= parents
    assert report.html.properties["drifted"] == ["moving"]
    down = k.lineage("dataset:train@2", "down")
    assert report.html.ref in {down.artifacts[e.child_id].ref for e in down.edges}


def test_per_column_override_from_config(two_versions: Kernel) -> None:
    from mlkernel.monitor.drift import DriftOptions

    options = DriftOptions.from_mapping({"columns": {"moving": {"skip": True}}})
    result = two_versions.monitor.drift("train@1", "train@2", options)
    assert result.drifted == []


def test_report_result_is_typed_and_its_json_adds_each_columns_sides(
    two_versions: Kernel,
) -> None:
    from mlkernel.monitor.service import Shares

    report = two_versions.monitor.report("train@1", "train@2")
    city, moving = report.side("city"), report.side("moving")
    assert city is not None and moving is not None and report.side("nothing") is None
    assert city.categories is not None and city.categories.new == ()
    assert city.outliers_iqr_share is None  # not numeric
    assert moving.missing_share == Shares(0.0, 0.0) and moving.categories is None
    assert moving.outliers_iqr_share is not None
    doc = report.to_dict()
    by_name = {c["column"]: c for c in doc["columns"]}
    assert by_name["city"]["categories"] == city.categories.to_dict()
    assert "outliers_iqr_share" not in by_name["city"]
    assert by_name["moving"]["outliers_iqr_share"] == moving.outliers_iqr_share.to_dict()
    assert doc["changes"] == [c.to_dict() for c in report.changes]

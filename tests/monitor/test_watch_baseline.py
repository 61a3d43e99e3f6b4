"""A [[watch]] baseline that does not exist: refused up front, or left out once with a note."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mlkernel.kernel import Kernel
from mlkernel.testing import run_mlk


def write_batch(path: Path, shift: float, seed: int, n: int = 300) -> None:
    rng = np.random.default_rng(seed)
    tmp = path.with_name(f".{path.name}.part")
    pacsv.write_csv(pa.table({"x": rng.normal(shift, 1.0, n), "y": rng.normal(0, 1, n)}), tmp)
    os.replace(tmp, path)


def watch_once(root: Path) -> subprocess.CompletedProcess[str]:
    return run_mlk("data", "watch", "--once", "--poll", "0.2", cwd=root)


def versions(k: Kernel) -> list[int]:
    return [v.version for v in k.context.table.versions("dataset", "train")]


def _watch(k: Kernel, baseline: str) -> None:
    (k.root / "mlkernel.toml").write_text(
        (k.root / "mlkernel.toml").read_text()
        + f'\n[[watch]]\npath = "incoming/*.csv"\ndataset = "train"\n'
        f'baseline = "{baseline}"\ndebounce = 0.2\n'
    )
    (k.root / "incoming").mkdir()


def test_a_baseline_of_a_dataset_that_does_not_exist_is_a_config_error(project: Kernel) -> None:
    k = project
    _watch(k, "dataset:nope@1")
    write_batch(k.root / "incoming" / "a.csv", 0.0, 1)
    for _ in range(2):  # each start says the same, and reads nothing
        result = watch_once(k.root)
        assert result.returncode == 3, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "watch[0] baseline 'dataset:nope@1' does not exist" in lines[0]
        assert "Traceback" not in result.stderr
        assert versions(k) == []
        assert k.context.meta.watched_files() == {}


def test_a_baseline_that_is_not_a_dataset_is_a_config_error(project: Kernel) -> None:
    k = project
    _watch(k, "model:train@1")
    write_batch(k.root / "incoming" / "a.csv", 0.0, 1)
    result = watch_once(k.root)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "baseline 'model:train@1' is not a dataset version" in result.stderr
    assert versions(k) == []


def test_a_baseline_still_to_come_is_left_out_once_with_a_note(project: Kernel) -> None:
    k = project
    _watch(k, "dataset:train@3")  # the watched dataset's own version 3, not yet there
    write_batch(k.root / "incoming" / "a.csv", 0.0, 1)
    write_batch(k.root / "incoming" / "b.csv", 3.0, 2)
    first = watch_once(k.root)
    assert first.returncode == 0, first.stderr
    assert versions(k) == [1, 2]
    note = (
        "note: baseline dataset:train@3 does not exist yet; compared with the previous version only"
    )
    assert first.stdout.count(note) == 2, first.stdout  # one per new version
    assert "analysis failed" not in first.stdout
    reports = len(k.context.table.versions("report", "drift-train"))
    assert reports == 1  # train@2 against train@1

    second = watch_once(k.root)  # nothing new: nothing redone, nothing printed again
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["watching incoming/*.csv → dataset train"]
    assert len(k.context.table.versions("report", "drift-train")) == reports
    assert k.context.meta.unanalysed_watched_files() == []

    write_batch(k.root / "incoming" / "c.csv", 0.0, 3)  # version 3, the baseline itself
    write_batch(k.root / "incoming" / "d.csv", 0.0, 4)
    third = watch_once(k.root)
    assert third.returncode == 0, third.stderr
    assert versions(k) == [1, 2, 3, 4]
    assert "vs dataset:train@3" in third.stdout  # train@4 against the baseline, now there

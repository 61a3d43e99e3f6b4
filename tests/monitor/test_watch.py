"""The watcher: stable-file check, ingest, drift reports, deferral to off-peak, summary."""

import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import mlkernel
from mlkernel.errors import ConfigError
from mlkernel.kernel import Kernel
from mlkernel.monitor.watch import OffPeak, Watcher, WatchSpec, load_specs


def batch(path: Path, shift: float, seed: int, n: int = 2000) -> Path:
    rng = np.random.default_rng(seed)
    table = pa.table({"x": rng.normal(shift, 1.0, n), "y": rng.normal(0.0, 1.0, n)})
    tmp = path.with_suffix(".part")
    pacsv.write_csv(table, tmp)
    os.replace(tmp, path)
    return path


@pytest.fixture
def k(sqlite_project: Kernel) -> Kernel:
    (sqlite_project.root / "incoming").mkdir()
    return sqlite_project


def settle(watcher: Watcher, rounds: int = 3) -> list:
    events = []
    clock = time.monotonic()
    for i in range(rounds):
        events += watcher.scan(now=clock + i * 10)
    return events


def test_new_files_become_versions_with_reports(k: Kernel) -> None:
    spec = WatchSpec(path="incoming/*.csv", dataset="train", debounce=1.0)
    watcher = k.monitor.watcher([spec])
    batch(k.root / "incoming" / "day1.csv", 0.0, 1)
    first = settle(watcher)
    assert [e.version for e in first] == ["dataset:train@1"]
    assert first[0].reports == ()  # nothing to compare with yet
    batch(k.root / "incoming" / "day2.csv", 4.0, 2)
    second = settle(watcher)
    assert [e.version for e in second] == ["dataset:train@2"]
    (report,) = second[0].reports
    assert report.against == "dataset:train@1"
    assert report.dataset_drift is True  # 1 of 2 columns drifted: share 0.5 >= 0.5
    assert report.drifted == ("x",)
    assert Path(report.path).read_text().startswith("<!DOCTYPE html>")
    watches = k.runs(name="watch-train")  # one event per new version, newest first
    assert [w.type for w in watches] == ["watch", "watch"]
    assert {m[0]: m[2] for m in k.metrics(watches[0].id)} == {"comparisons": 1, "dataset_drift": 1}
    assert settle(watcher) == []  # nothing new: nothing done


def test_half_written_file_waits(k: Kernel) -> None:
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=5.0)])
    path = k.root / "incoming" / "big.csv"
    path.write_text("x,y\n1,2\n")
    now = time.monotonic()
    assert watcher.scan(now=now) == []
    with path.open("a") as handle:  # still being written
        handle.write("3,4\n")
    assert watcher.scan(now=now + 6) == []  # it changed: the clock restarts
    assert watcher.scan(now=now + 8) == []  # stable for 2 s only
    events = watcher.scan(now=now + 12)
    assert [e.version for e in events] == ["dataset:train@1"]
    assert k.data.open("train").num_rows == 2


def test_baseline_comparison_and_identical_content(k: Kernel) -> None:
    spec = WatchSpec(path="incoming/*.csv", dataset="train", baseline="dataset:train@1", debounce=0)
    watcher = k.monitor.watcher([spec])
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    settle(watcher)
    batch(k.root / "incoming" / "b.csv", 0.1, 2)
    settle(watcher)
    batch(k.root / "incoming" / "c.csv", 0.1, 3)
    (event,) = settle(watcher)
    assert [r.against for r in event.reports] == ["dataset:train@2", "dataset:train@1"]
    # the same bytes under another file name add no version
    (k.root / "incoming" / "copy.csv").write_bytes((k.root / "incoming" / "c.csv").read_bytes())
    (again,) = settle(watcher)
    assert again.created is False and again.version == "dataset:train@3"


def test_offpeak_defers_analysis(k: Kernel) -> None:
    hour = {"now": datetime(2026, 11, 27, 12, 0)}
    watcher = k.monitor.watcher(
        [WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)],
        offpeak=OffPeak.parse("22:00-06:00"),
        clock=lambda: hour["now"],
    )
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    batch(k.root / "incoming" / "b.csv", 3.0, 2)
    events = settle(watcher)
    assert [e.deferred for e in events] == [True, True]
    assert k.monitor.stored_profile("train@2") is None  # nothing heavy at noon
    hour["now"] = datetime(2026, 11, 27, 23, 0)
    later = watcher.scan()
    assert [e.version for e in later] == ["dataset:train@1", "dataset:train@2"]
    assert later[1].reports[0].drifted == ("x",)
    assert k.monitor.stored_profile("train@2") is not None


def test_summary_lists_changes(k: Kernel) -> None:
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)])
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    batch(k.root / "incoming" / "b.csv", 5.0, 2)
    settle(watcher)
    record = watcher.write_summary(since=0)
    import json

    doc = json.loads(k.context.objects.read_bytes(record.digest))
    assert doc["files"] == 2 and doc["new_versions"] == 2
    assert doc["changes"][1]["reports"][0]["report"].startswith("report:drift-train@")


def test_summary_counts_files_versions_and_drift(k: Kernel) -> None:
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)])
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    batch(k.root / "incoming" / "b.csv", 5.0, 2)
    batch(k.root / "incoming" / "c.csv", 5.0, 3)  # like b.csv: no drift against it
    settle(watcher)
    summary = watcher.summary(since=0)
    assert (summary.files, summary.new_versions, summary.drifted) == (3, 3, 1)
    assert [e.reports[0].dataset_drift for e in summary.changes[1:]] == [True, False]
    assert summary.to_dict()["changes"][1]["reports"][0]["drifted"] == ["x"]


def test_the_watcher_acts_for_the_actor_of_its_service(k: Kernel) -> None:
    from mlkernel.authz import Actor

    alice = k.as_actor(Actor("alice"))
    watcher = alice.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)])
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    batch(k.root / "incoming" / "b.csv", 5.0, 2)
    settle(watcher)
    assert k.resolve("dataset:train@2").created_by == "alice"
    watches = k.runs(name="watch-train", include_internal=True)  # newest first
    assert [w.user for w in watches] == ["alice", "alice"]
    watch = watches[0]
    report = k.resolve("report:drift-train")
    assert report.created_by == "alice"
    assert k.run_info(watch.id).outputs == [report.ref]


def test_run_loop_with_inotify_picks_up_a_file(k: Kernel) -> None:
    watcher = k.monitor.watcher(
        [WatchSpec(path="incoming/*.csv", dataset="train", debounce=0.2)], poll=0.2
    )
    batch(k.root / "incoming" / "a.csv", 0.0, 1)
    watcher.run(max_seconds=2.0)
    assert [e.version for e in watcher.events] == ["dataset:train@1"]


def test_config_validation(tmp_path: Path) -> None:
    assert load_specs({"watch": [{"path": "in/*.csv", "dataset": "t"}]})[0].dataset == "t"
    with pytest.raises(ConfigError, match="unknown key 'datset'"):
        load_specs({"watch": [{"path": "in/*.csv", "datset": "t"}]})
    with pytest.raises(ConfigError, match="missing 'dataset'"):
        load_specs({"watch": [{"path": "in/*.csv"}]})
    with pytest.raises(ConfigError, match="daily window"):
        OffPeak.parse("late")
    root = tmp_path / "p"
    with mlkernel.init(root, name="p") as project:
        config = root / "mlkernel.toml"
        config.write_text(
            config.read_text() + '\n[[watch]]\npath = "in/*.csv"\ndataset = "train"\n'
        )
    with mlkernel.open(root) as project:
        assert project.monitor.watcher().specs == [WatchSpec(path="in/*.csv", dataset="train")]


def test_offpeak_window_wraps_midnight() -> None:
    window = OffPeak.parse("22:00-06:00")
    assert window.contains(datetime(2026, 1, 1, 23, 30))
    assert window.contains(datetime(2026, 1, 1, 5, 59))
    assert not window.contains(datetime(2026, 1, 1, 12, 0))
    assert OffPeak.parse("01:00-03:00").contains(datetime(2026, 1, 1, 2, 0))

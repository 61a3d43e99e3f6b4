"""The watcher remembers what it did with each file in the metadata, across restarts."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mlkernel.kernel import Kernel
from mlkernel.monitor.watch import WatchSpec
from mlkernel.testing import run_mlk

WATCH = '\n[[watch]]\npath = "incoming/*.csv"\ndataset = "train"\ndebounce = 0.2\n'


def write_batch(path: Path, shift: float, seed: int, n: int = 500) -> Path:
    rng = np.random.default_rng(seed)
    table = pa.table({"x": rng.normal(shift, 1.0, n), "y": rng.normal(0.0, 1.0, n)})
    tmp = path.with_name(f".{path.name}.part")
    pacsv.write_csv(table, tmp)
    os.replace(tmp, path)
    return path


def watch_once(root: Path) -> subprocess.CompletedProcess[str]:
    return run_mlk("data", "watch", "--once", "--poll", "0.2", cwd=root)


def versions(k: Kernel, kind: str = "dataset", name: str = "train") -> list[int]:
    return [v.version for v in k.context.table.versions(kind, name)]


def test_a_restarted_watcher_does_only_what_is_new(project: Kernel) -> None:
    k = project
    (k.root / "mlkernel.toml").write_text((k.root / "mlkernel.toml").read_text() + WATCH)
    incoming = k.root / "incoming"
    incoming.mkdir()
    write_batch(incoming / "a.csv", 0.0, 1)
    write_batch(incoming / "b.csv", 3.0, 2)

    first = watch_once(k.root)
    assert first.returncode == 0, first.stderr
    assert versions(k) == [1, 2]
    reports = len(k.context.table.versions("report", "drift-train"))
    assert reports == 1

    second = watch_once(k.root)  # a restart: both files are known, nothing happens
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["watching incoming/*.csv → dataset train"]
    assert versions(k) == [1, 2]
    assert len(k.context.table.versions("report", "drift-train")) == reports

    rows = k.context.meta.watched_files()
    assert sorted(rows) == ["incoming/a.csv", "incoming/b.csv"]
    a = rows["incoming/a.csv"]
    assert (a.state, a.dataset, a.size) == (
        "ingested",
        "train",
        (incoming / "a.csv").stat().st_size,
    )
    assert a.artifact_id == k.resolve("dataset:train@1").id
    assert a.mtime == (incoming / "a.csv").stat().st_mtime_ns / 1e9
    from mlkernel import digest

    assert a.digest == digest.of_file(incoming / "a.csv")

    os.utime(incoming / "a.csv")  # touched, same bytes: still nothing new
    write_batch(incoming / "b.csv", 6.0, 3)  # changed content: a new version
    third = watch_once(k.root)
    assert third.returncode == 0, third.stderr
    assert versions(k) == [1, 2, 3]
    assert (
        k.context.meta.watched_files()["incoming/b.csv"].artifact_id
        == k.resolve("dataset:train@3").id
    )
    assert k.context.meta.watched_files()["incoming/a.csv"].mtime == (
        (incoming / "a.csv").stat().st_mtime_ns / 1e9
    )


def test_a_new_watcher_object_reads_the_memory(project: Kernel) -> None:
    k = project
    (k.root / "incoming").mkdir()
    spec = WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)
    write_batch(k.root / "incoming" / "a.csv", 0.0, 1)
    clock = time.monotonic()
    first = k.monitor.watcher([spec])
    assert [e.version for e in first.scan(clock) + first.scan(clock + 1)] == ["dataset:train@1"]
    again = k.monitor.watcher([spec])  # what a restarted daemon builds
    assert again.scan(clock + 2) + again.scan(clock + 3) == []
    # the same bytes under a new name are recorded as unchanged, not a new version
    (k.root / "incoming" / "copy.csv").write_bytes((k.root / "incoming" / "a.csv").read_bytes())
    (event,) = again.scan(clock + 4) + again.scan(clock + 5)
    assert (event.created, event.version) == (False, "dataset:train@1")
    assert k.context.meta.watched_files()["incoming/copy.csv"].state == "unchanged"
    assert (
        k.monitor.watcher([spec]).scan(clock + 6) + k.monitor.watcher([spec]).scan(clock + 7) == []
    )


def test_analyses_left_undone_are_resumed_after_a_restart(project: Kernel) -> None:
    from datetime import datetime

    from mlkernel.monitor.watch import OffPeak

    k = project
    (k.root / "incoming").mkdir()
    spec = WatchSpec(path="incoming/*.csv", dataset="train", debounce=0)
    window = OffPeak.parse("22:00-06:00")
    write_batch(k.root / "incoming" / "a.csv", 0.0, 1)
    write_batch(k.root / "incoming" / "b.csv", 4.0, 2)
    noon = k.monitor.watcher([spec], offpeak=window, clock=lambda: datetime(2026, 1, 1, 12, 0))
    clock = time.monotonic()
    events = noon.scan(clock) + noon.scan(clock + 1)
    assert [e.deferred for e in events] == [True, True]
    # the watcher stops before the window; the one started at night does the analyses
    night = k.monitor.watcher([spec], offpeak=window, clock=lambda: datetime(2026, 1, 1, 23, 0))
    done = night.scan(clock + 2)
    assert [e.version for e in done] == ["dataset:train@1", "dataset:train@2"]
    assert done[1].reports[0].drifted == ("x",)
    again = k.monitor.watcher([spec], offpeak=window, clock=lambda: datetime(2026, 1, 1, 23, 0))
    assert again.scan(clock + 3) == []  # analysed once only


def test_one_row_per_path_replaced_in_place(project: Kernel) -> None:
    meta = project.context.meta
    first = meta.record_watched_file(
        "in/a.csv", size=3, mtime=1.5, digest="d1", dataset="t", state="failed", error="bad"
    )
    assert meta.watched_file("in/a.csv") == first
    meta.record_watched_file(
        "in/a.csv", size=4, mtime=2.25, digest="d2", dataset="t", state="unchanged"
    )
    (row,) = meta.watched_files().values()
    assert (row.size, row.mtime, row.digest, row.state, row.error) == (
        4,
        2.25,
        "d2",
        "unchanged",
        None,
    )
    assert meta.watched_file("in/b.csv") is None

"""Which files the watcher reads, and when: writers still at work, bad files, odd entries."""

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel
from mlkernel.monitor import _fsevents
from mlkernel.monitor.watch import Watcher, WatchSpec

ROWS = 2000
HALF = "".join(f"{i},{i * 2}\n" for i in range(ROWS // 2))
REST = "".join(f"{i},{i * 2}\n" for i in range(ROWS // 2, ROWS))

# A writer that writes the header and half the rows, flushes, says so, waits for a line
# on stdin (the pause), then writes the rest and closes the file.
WRITER = """
import sys
path, half, rest = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path, "w") as out:
    out.write("a,b\\n" + open(half).read())
    out.flush()
    print("half", flush=True)
    sys.stdin.readline()
    out.write(open(rest).read())
print("done", flush=True)
"""


class Writer:
    def __init__(self, path: Path, tmp: Path) -> None:
        (tmp / "half.txt").write_text(HALF)
        (tmp / "rest.txt").write_text(REST)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(tmp / "half.txt"), str(tmp / "rest.txt")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline() == "half\n"

    def finish(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "done\n"
        assert self.proc.wait(timeout=30) == 0


@pytest.fixture
def k(sqlite_project: Kernel) -> Kernel:
    (sqlite_project.root / "incoming").mkdir()
    return sqlite_project


def wait_for(condition: object, what: str) -> None:
    """Wait for an event the OS delivers asynchronously (not a timing assertion)."""
    for _ in range(500):
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"no {what} within 5 s")


def test_a_paused_writer_is_waited_for_by_its_open_descriptor(k: Kernel, tmp_path: Path) -> None:
    """No inotify (a network file system): stable for far longer than debounce, but open."""
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=2.0)])
    path = k.root / "incoming" / "big.csv"
    writer = Writer(path, tmp_path)
    now = time.monotonic()
    for later in (0, 3, 10, 60):  # size and mtime unchanged all along
        assert watcher.scan(now=now + later) == []
    writer.finish()
    events = watcher.scan(now=now + 61) + watcher.scan(now=now + 64)
    assert [e.version for e in events] == ["dataset:train@1"]
    assert k.data.open("dataset:train").num_rows == ROWS


def test_a_paused_writer_is_waited_for_until_it_closes(
    k: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify saw writes and no IN_CLOSE_WRITE: wait, even when the writer's process is
    one the watcher cannot inspect (simulated: /proc tells nothing)."""
    monkeypatch.setattr(_fsevents, "open_for_writing", lambda _path: None)
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=2.0)])
    observer = watcher._start_inotify()
    if observer is None:
        pytest.skip("inotify is not available here")
    try:
        path = k.root / "incoming" / "big.csv"
        writer = Writer(path, tmp_path)
        wait_for(lambda: watcher._notes.get(path) == _fsevents.WRITING, "IN_MODIFY")
        now = time.monotonic()
        for later in (0, 3, 10, 60):
            assert watcher.scan(now=now + later) == []
        writer.finish()
        wait_for(lambda: watcher._notes.get(path) == _fsevents.COMPLETE, "IN_CLOSE_WRITE")
        events = watcher.scan(now=now + 61)  # closed: no debounce needed
        assert [e.version for e in events] == ["dataset:train@1"]
        assert k.data.open("dataset:train").num_rows == ROWS
        assert watcher.scan(now=now + 100) == []
    finally:
        observer.stop()
        observer.join(timeout=5)


def test_a_file_renamed_into_the_folder_is_complete_at_once(k: Kernel) -> None:
    watcher = k.monitor.watcher([WatchSpec(path="incoming/*.csv", dataset="train", debounce=30.0)])
    observer = watcher._start_inotify()
    if observer is None:
        pytest.skip("inotify is not available here")
    try:
        outside = k.root / "staging.csv"  # outside the watched folder: IN_MOVED_TO alone
        outside.write_text("a,b\n" + HALF + REST)
        target = k.root / "incoming" / "day1.csv"
        os.replace(outside, target)
        wait_for(lambda: watcher._notes.get(target) == _fsevents.COMPLETE, "IN_MOVED_TO")
        (event,) = watcher.scan()
        assert event.version == "dataset:train@1"
    finally:
        observer.stop()
        observer.join(timeout=5)


def test_open_for_writing_sees_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a\n")
    assert _fsevents.open_for_writing(path) in (False, None)
    with path.open("a"):
        assert _fsevents.open_for_writing(path) is True
    with path.open("r"):  # a reader is no writer
        assert _fsevents.open_for_writing(path) in (False, None)


# -- bad files ------------------------------------------------------------------------


def truncated_gzip(path: Path) -> Path:
    data = gzip.compress(("a,b\n" + HALF + REST).encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def good_csv(path: Path, rows: str = HALF) -> Path:
    path.write_text("a,b\n" + rows)
    return path


def settle(watcher: Watcher, start: float) -> list:
    return watcher.scan(now=start) + watcher.scan(now=start + 10) + watcher.scan(now=start + 20)


@pytest.fixture
def spec() -> Iterator[WatchSpec]:
    yield WatchSpec(path="incoming/*", dataset="train", debounce=1.0)


def test_a_bad_file_is_recorded_and_the_watcher_goes_on(k: Kernel, spec: WatchSpec) -> None:
    incoming = k.root / "incoming"
    truncated_gzip(incoming / "a-broken.csv.gz")
    (incoming / "b-empty.csv").write_bytes(b"")
    (incoming / "c-dir.csv").mkdir()  # a directory matching the glob
    good_csv(incoming / "d-good.csv")
    (incoming / "e-deep.json").write_text("[" * 20_000 + "]" * 20_000)  # RecursionError once
    events = settle(k.monitor.watcher([spec]), time.monotonic())
    by_name = {e.path.name: e for e in events}
    assert sorted(by_name) == ["a-broken.csv.gz", "b-empty.csv", "d-good.csv", "e-deep.json"]
    assert by_name["d-good.csv"].version == "dataset:train@1"
    for name in ("a-broken.csv.gz", "b-empty.csv", "e-deep.json"):
        error = by_name[name].error
        assert error and "\n" not in error and by_name[name].version is None
    rows = k.context.meta.watched_files()
    assert rows["incoming/a-broken.csv.gz"].state == "failed"
    assert rows["incoming/a-broken.csv.gz"].error == by_name["a-broken.csv.gz"].error
    assert rows["incoming/d-good.csv"].state == "ingested"
    # not retried, by this watcher or a restarted one, until the file changes
    assert settle(k.monitor.watcher([spec]), time.monotonic() + 100) == []
    (incoming / "a-broken.csv.gz").write_bytes(gzip.compress(("a,b\n" + REST).encode()))
    (again,) = settle(k.monitor.watcher([spec]), time.monotonic() + 200)
    assert again.version == "dataset:train@2" and again.error is None
    assert k.context.meta.watched_files()["incoming/a-broken.csv.gz"].state == "ingested"


def test_a_bad_file_is_quarantined_when_configured(k: Kernel) -> None:
    spec = WatchSpec(
        path="incoming/**/*.gz", dataset="train", debounce=0, quarantine="incoming/bad"
    )
    truncated_gzip(k.root / "incoming" / "x.csv.gz")
    (event,) = settle(k.monitor.watcher([spec]), time.monotonic())
    assert event.quarantined == k.root / "incoming" / "bad" / "x.csv.gz"
    assert event.quarantined.exists() and not (k.root / "incoming" / "x.csv.gz").exists()
    # the quarantine is inside the glob: recorded as failed too, so not read again
    assert settle(k.monitor.watcher([spec]), time.monotonic() + 100) == []
    # a second bad file of the same name (and the same bytes) does not overwrite the first
    truncated_gzip(k.root / "incoming" / "x.csv.gz")
    (second,) = settle(k.monitor.watcher([spec]), time.monotonic() + 200)
    assert second.quarantined == k.root / "incoming" / "bad" / "x.csv-2.gz"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_retried_once_readable(k: Kernel, spec: WatchSpec) -> None:
    path = good_csv(k.root / "incoming" / "locked.csv")
    path.chmod(0)
    (event,) = settle(k.monitor.watcher([spec]), time.monotonic())
    assert event.error and "cannot be read" in event.error
    path.chmod(0o644)  # mtime unchanged: the watcher notices it can read it now
    (again,) = settle(k.monitor.watcher([spec]), time.monotonic() + 100)
    assert again.version == "dataset:train@1"


def test_watch_cli_survives_a_truncated_gzip(k: Kernel) -> None:
    config = k.root / "mlkernel.toml"
    config.write_text(
        config.read_text() + '\n[[watch]]\npath = "incoming/*"\ndataset = "t"\ndebounce = 0.1\n'
    )
    truncated_gzip(k.root / "incoming" / "a.csv.gz")
    good_csv(k.root / "incoming" / "b.csv")
    env = {key: v for key, v in os.environ.items() if key != "MLK_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "mlkernel", "data", "watch", "--once", "--poll", "0.1"],
        capture_output=True,
        text=True,
        cwd=k.root,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    bad = [line for line in lines if "a.csv.gz" in line]
    assert len(bad) == 1 and "skipped" in bad[0], result.stdout
    assert any("b.csv → dataset:t@1" in line for line in lines), result.stdout


def test_links_that_lead_nowhere_are_passed_over(k: Kernel, spec: WatchSpec) -> None:
    incoming = k.root / "incoming"
    (incoming / "dangling.csv").symlink_to(incoming / "absent.csv")
    (incoming / "loop.csv").symlink_to(incoming / "loop.csv")  # ELOOP on stat
    good_csv(incoming / "z.csv")
    events = settle(k.monitor.watcher([spec]), time.monotonic())
    assert [(e.path.name, e.version) for e in events] == [("z.csv", "dataset:train@1")]


def test_a_file_removed_before_it_is_read_is_no_failure(
    k: Kernel, spec: WatchSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = good_csv(k.root / "incoming" / "gone.csv")
    good_csv(k.root / "incoming" / "kept.csv", REST)

    def remove_then_answer(target: Path) -> bool:
        if target == path:
            path.unlink()  # the writer's clean-up runs between the check and the read
        return False

    monkeypatch.setattr(_fsevents, "open_for_writing", remove_then_answer)
    events = settle(k.monitor.watcher([spec]), time.monotonic())
    assert [(e.path.name, e.version, e.error) for e in events] == [
        ("kept.csv", "dataset:train@1", None)
    ]
    assert "incoming/gone.csv" not in k.context.meta.watched_files()

from __future__ import annotations

import json
from pathlib import Path

from mlkernel.sched.journal import Applier, Journal


def knob_dir(tmp_path: Path, **files: str) -> str:
    d = tmp_path / "knobs"
    d.mkdir(exist_ok=True)
    for name, value in files.items():
        (d / name).write_text(value)
    return f"path:{d}"


def test_change_is_recorded_before_it_is_made(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")
    seen: list[int] = []
    journal = Journal(tmp_path / "run")

    def write(t: str, knob: str, value: str) -> None:
        # At the moment of the write the journal file already holds the change.
        lines = (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
        seen.append(len(lines))
        (Path(t[5:]) / knob).write_text(value)

    applier = Applier(journal, write=write)
    change = applier.set("mode", target, "shares", "10240")
    assert change is not None and (change.old, change.new) == ("1024", "10240")
    assert seen == [1]
    rec = json.loads((tmp_path / "run" / "journal.jsonl").read_text())
    assert rec["old"] == "1024" and rec["new"] == "10240" and rec["knob"] == "shares"


def test_setting_the_current_value_records_nothing(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")
    applier = Applier(Journal(tmp_path / "run"))
    assert applier.set("mode", target, "shares", "1024") is None
    assert applier.journal.pending() == []


def test_restore_puts_back_only_what_is_still_ours(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, a="1", b="1")
    d = Path(target[5:])
    applier = Applier(Journal(tmp_path / "run"))
    applier.set("mode", target, "a", "2")
    applier.set("mode", target, "b", "2")
    (d / "b").write_text("7")  # someone else changed b after us
    result = applier.restore("mode")
    assert (d / "a").read_text() == "1"
    assert (d / "b").read_text() == "7"
    assert [c.knob for c in result.restored] == ["a"]
    assert [c.knob for c in result.changed_since] == ["b"]
    assert applier.journal.pending() == []


def test_a_knob_changed_twice_unwinds_to_the_first_original(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")
    d = Path(target[5:])
    applier = Applier(Journal(tmp_path / "run"))
    applier.set("policy", target, "shares", "512")
    applier.set("mode", target, "shares", "2")
    applier.restore("mode")
    assert (d / "shares").read_text() == "512"
    applier.restore()
    assert (d / "shares").read_text() == "1024"


def test_a_new_journal_sees_what_a_dead_one_left_open(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")
    d = Path(target[5:])
    Applier(Journal(tmp_path / "run")).set("mode", target, "shares", "2")
    # A torn last line, as a crash in the middle of an append leaves it.
    with open(tmp_path / "run" / "journal.jsonl", "a") as f:
        f.write('{"op": "set", "seq": 9, "cla')
    fresh = Applier(Journal(tmp_path / "run"))
    assert [c.new for c in fresh.journal.pending()] == ["2"]
    fresh.restore()
    fresh.journal.compact()
    assert (d / "shares").read_text() == "1024"
    assert (tmp_path / "run" / "journal.jsonl").read_text() == ""
    assert Journal(tmp_path / "run").pending() == []


def test_a_vanished_target_is_closed_not_retried(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")
    applier = Applier(Journal(tmp_path / "run"))
    applier.set("mode", target, "shares", "2")
    for f in Path(target[5:]).iterdir():
        f.unlink()
    Path(target[5:]).rmdir()
    result = applier.restore()
    assert len(result.gone) == 1
    assert applier.journal.pending() == []


def test_a_refused_write_leaves_no_open_record(tmp_path: Path) -> None:
    target = knob_dir(tmp_path, shares="1024")

    def refuse(t: str, knob: str, value: str) -> None:
        raise PermissionError(13, "Permission denied")

    applier = Applier(Journal(tmp_path / "run"), write=refuse)
    try:
        applier.set("mode", target, "shares", "2")
    except PermissionError:
        pass
    else:
        raise AssertionError("the refused write did not raise")
    assert applier.journal.pending() == []
    assert Journal(tmp_path / "run").pending() == []

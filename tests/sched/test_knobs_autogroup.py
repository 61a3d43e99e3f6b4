"""The autogroup knob on a process that has no autogroup of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkernel.sched import knobs


def _rootgroup_pid() -> int | None:
    """A user process whose session never called setsid(): /proc/<pid>/autogroup is empty."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "autogroup").read_text() == "" and (entry / "exe").exists():
                return int(entry.name)
        except OSError:
            continue
    return None


def test_a_process_in_the_root_group_reads_none_and_restoring_none_writes_nothing() -> None:
    pid = _rootgroup_pid()
    if pid is None:
        pytest.skip("no user process here sits in the root autogroup (every one ran setsid)")
    assert knobs.read(f"pid:{pid}", "autogroup") == "none"
    knobs.write(f"pid:{pid}", "autogroup", "none")  # the kernel would refuse a number: EINVAL
    assert (Path("/proc") / str(pid) / "autogroup").read_text() == ""

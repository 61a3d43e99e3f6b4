"""Is the process that runs an execution still there? (A ``running`` row may be ``lost``.)

An execution records the host, the pid and the start time of the process that runs it
(``execution.proc_start``). When a ``running`` execution is read on the host it runs on,
and no process with that pid and start time is alive (none has the pid, it is a zombie,
or the pid was reused by a process that started at another time), it reads as ``lost``.
The state is derived when read, not written: nothing changes in the database until
someone ends the run (``mlk runs cancel`` / ``mlk runs fail``), and a run that reads
``lost`` once reads so for good, since the process cannot come back.

On another host nothing can be judged, so such a row stays ``running``. A row written
before start times were recorded (``proc_start`` NULL) is ``lost`` only when no process
has its pid at all.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache

__all__ = ["LOST", "is_lost", "process_start", "this_host"]

LOST = "lost"

# psutil derives a start time from the boot time and the process's start tick; the boot
# time it reads may move by a second between calls (clock adjustments), while a pid is
# reused only after the whole pid space wrapped, far later than this.
_TOLERANCE_S = 2.0


@lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _own_start() -> tuple[int, float | None]:
    return os.getpid(), _create_time(os.getpid())


def process_start(pid: int) -> float | None:
    """When the live process ``pid`` started (seconds since the epoch), or None if none
    is alive (or it cannot be asked)."""
    own_pid, own_start = _own_start()
    if pid == own_pid == os.getpid():
        return own_start
    return _create_time(pid)


def _create_time(pid: int) -> float | None:
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def is_lost(host: str, pid: int, proc_start: float | None) -> bool:
    """Whether a ``running`` execution of (host, pid, proc_start) has lost its process."""
    if host != this_host() or pid <= 0:
        return False
    if pid == os.getpid():
        mine = process_start(pid)
        return proc_start is not None and mine is not None and not _same(mine, proc_start)
    started = _create_time(pid)
    if started is None:
        return True
    return proc_start is not None and not _same(started, proc_start)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _TOLERANCE_S

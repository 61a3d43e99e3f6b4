"""Small, checked readers and writers for ``/proc`` and cgroup files.

Every write happens inside a ``with`` block so that an error from the kernel (EACCES,
EINVAL, ESRCH) surfaces as an exception instead of being lost in a buffered ``close``
(reference/os.md, "implementation gotcha").
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def read_text(path: Path) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def write_text(path: Path, value: str) -> None:
    """Write ``value`` with one unbuffered ``write`` so the kernel's error is raised here."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode("ascii"))
    finally:
        os.close(fd)


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of ``/proc/<pid>/stat``), or None when it is gone.

    Together with the pid it names one process for its whole life, so a recorded change is
    never replayed onto a new process that happens to reuse the pid.
    """
    try:
        raw = read_text(PROC / str(pid) / "stat")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[19]


def command_line(pid: int, limit: int = 160) -> str | None:
    """``pid``'s command line, arguments joined by spaces (cut to ``limit``), or None."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if not words:
        return None
    text = " ".join([Path(words[0]).name, *words[1:]])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def alive(pid: int) -> bool:
    return start_time(pid) is not None


def exited(pid: int) -> bool:
    """Whether ``pid`` has finished: gone, or a zombie waiting for its parent to reap it."""
    try:
        raw = read_text(PROC / str(pid) / "stat")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return True
    return raw[raw.rindex(")") + 2 :].startswith("Z")


def threads(pid: int) -> list[int]:
    """The thread ids of ``pid`` (empty when the process is gone)."""
    try:
        return sorted(int(t) for t in os.listdir(PROC / str(pid) / "task"))
    except (FileNotFoundError, ProcessLookupError):
        return []


def uid_of(pid: int) -> int:
    """The real uid of ``pid``; raises ProcessLookupError when it is gone."""
    try:
        status = read_text(PROC / str(pid) / "status")
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ProcessLookupError(pid)  # pragma: no cover - every process has a Uid line


def children_map() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process visible now."""
    out: dict[int, list[int]] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            raw = read_text(PROC / name / "stat")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def session_of(pid: int) -> int | None:
    """The session id of ``pid`` (field 6 of ``/proc/<pid>/stat``), None when it is gone."""
    try:
        raw = read_text(PROC / str(pid) / "stat")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[3])


def descendants(pid: int, same_session: bool = False) -> list[int]:
    """``pid`` and every living descendant of it, parents first.

    With ``same_session``, a child that started its own session (``setsid``: a daemon, a
    background job the parent detached on purpose) is left out, with its subtree.
    """
    kids = children_map()
    sid = session_of(pid) if same_session else None
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop(0)
        if p != pid and sid is not None and session_of(p) != sid:
            continue
        out.append(p)
        todo.extend(sorted(kids.get(p, [])))
    return out


def is_kernel_thread(pid: int) -> bool:
    """Kernel threads have no executable mapping, and descend from kthreadd (pid 2)."""
    if pid in (1, 2):
        return True
    try:
        raw = read_text(PROC / str(pid) / "stat")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
    return ppid == 2

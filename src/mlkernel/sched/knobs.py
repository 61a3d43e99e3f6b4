"""The knobs the scheduler turns, each read and written as a short string.

A change is named by a *target* and a *knob*, so that the journal can store it as text and
replay it in another process:

=================  ==============================  =========================================
target             knob                            value
=================  ==============================  =========================================
``tid:<n>``        ``nice``                        ``"-20"`` .. ``"19"`` (one thread)
``tid:<n>``        ``policy``                      ``"other"``, ``"batch"``, ``"idle"``
``tid:<n>``        ``ioprio``                      ``"none/0"``, ``"be/4"``, ``"idle/0"`` ...
``pid:<n>``        ``autogroup``                   the session's autogroup nice, ``"none"``
                                                  when the process has no autogroup of its
                                                  own (its session never called setsid(),
                                                  as under PID 1: the root group)
``pid:<n>``        ``cgroup:<ctrl>:<mount>``       the cgroup path under the mount, ``"/x/y"``
``path:<dir>``     a file name (``cpu.shares``)    the file's content
=================  ==============================  =========================================

``<ctrl>`` is the v1 controller name (``cpu``) or empty for the v2 unified hierarchy.
Nice, policy and ioprio are per thread on Linux; the caller walks ``/proc/<pid>/task``.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlkernel.errors import UsageError
from mlkernel.sched._proc import PROC, read_text, start_time, write_text

__all__ = ["identity", "read", "write"]

_POLICIES = {"other": os.SCHED_OTHER, "batch": os.SCHED_BATCH, "idle": os.SCHED_IDLE}
_POLICY_NAMES = {v: k for k, v in _POLICIES.items()}
_IOCLASSES = {"none": 0, "rt": 1, "be": 2, "idle": 3}
_IOCLASS_NAMES = {v: k for k, v in _IOCLASSES.items()}


def _split(target: str) -> tuple[str, str]:
    kind, _, rest = target.partition(":")
    if kind not in ("tid", "pid", "path") or not rest:
        raise UsageError(f"bad scheduler target {target!r}; use tid:N, pid:N or path:DIR")
    return kind, rest


def identity(target: str) -> str | None:
    """What must still hold for a recorded change to apply: the start time of a pid/tid,
    ``"dir"`` for an existing directory; None when the target is gone."""
    kind, rest = _split(target)
    if kind == "path":
        return "dir" if Path(rest).is_dir() else None
    return start_time(int(rest))


def _cgroup_of(pid: int, controller: str) -> str:
    for line in read_text(PROC / str(pid) / "cgroup").splitlines():
        hid, ctrls, path = line.split(":", 2)
        if (controller and controller in ctrls.split(",")) or (
            not controller and hid == "0" and ctrls == ""
        ):
            return path
    raise LookupError(f"process {pid} is not in a {controller or 'v2'} cgroup hierarchy")


def read(target: str, knob: str) -> str:
    kind, rest = _split(target)
    if kind == "path":
        return read_text(Path(rest) / knob)
    n = int(rest)
    if knob == "nice":
        return str(os.getpriority(os.PRIO_PROCESS, n))
    if knob == "policy":
        pol = os.sched_getscheduler(n) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
        return _POLICY_NAMES.get(pol, f"rt{pol}")
    if knob == "ioprio":
        import psutil  # type: ignore[import-untyped,unused-ignore]

        try:
            ioclass, value = psutil.Process(n).ionice()
        except psutil.NoSuchProcess as exc:
            raise ProcessLookupError(n) from exc
        return f"{_IOCLASS_NAMES[int(ioclass)]}/{int(value)}"
    if knob == "autogroup":
        # "/autogroup-126 nice 0"; empty in the root group (no setsid)
        words = read_text(PROC / str(n) / "autogroup").split()
        return words[-1] if words else "none"
    if knob.startswith("cgroup:"):
        _, controller, _mount = knob.split(":", 2)
        return _cgroup_of(n, controller)
    raise UsageError(f"unknown scheduler knob {knob!r} for {target}")


def write(target: str, knob: str, value: str) -> None:
    kind, rest = _split(target)
    if kind == "path":
        write_text(Path(rest) / knob, value)
        return
    n = int(rest)
    if knob == "nice":
        os.setpriority(os.PRIO_PROCESS, n, int(value))
    elif knob == "policy":
        if value not in _POLICIES:
            raise UsageError(f"scheduling policy {value!r} is not one of {sorted(_POLICIES)}")
        os.sched_setscheduler(n, _POLICIES[value], os.sched_param(0))
    elif knob == "ioprio":
        import psutil  # type: ignore[import-untyped,unused-ignore]

        cls, _, level = value.partition("/")
        ioclass = _IOCLASSES[cls]
        try:
            p = psutil.Process(n)
            if ioclass in (0, 3):
                p.ionice(ioclass)
            else:
                p.ionice(ioclass, int(level))
        except psutil.NoSuchProcess as exc:
            raise ProcessLookupError(n) from exc
        except psutil.AccessDenied as exc:
            raise PermissionError(f"ioprio of {n}: {exc}") from exc
    elif knob == "autogroup":
        if value != "none":  # "none": not in an autogroup, nothing to restore
            write_text(PROC / str(n) / "autogroup", value)
    elif knob.startswith("cgroup:"):
        _, _controller, mount = knob.split(":", 2)
        write_text(Path(mount + value) / "cgroup.procs", str(n))
    else:
        raise UsageError(f"unknown scheduler knob {knob!r} for {target}")

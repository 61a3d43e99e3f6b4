"""``mlk doctor``: what this machine offers the scheduler, and whether its parts work.

Read-only: it probes, reads and tests for write access, but starts nothing and changes
nothing (no controller is started, no cgroup is created, no journal line is written).
Each check is ``ok``, ``warn`` (works, but not as well as it could) or ``fail`` (something
the user must fix); every detail that is not ``ok`` names the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mlkernel.errors import ConfigError
from mlkernel.sched.backends import CGROUP_ROOT, BackendReport, detect
from mlkernel.sched.journal import JOURNAL_NAME, Journal, default_runtime_dir, state_dir_for

__all__ = ["Check", "Diagnosis", "diagnose"]

Status = Literal["ok", "warn", "fail"]
SOCKET_NAME = "sched.sock"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    """The machine's backends and every check, in order."""

    report: BackendReport
    checks: tuple[Check, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backends": self.report.to_dict(),
            "why_not": {r: self.report.why_not(r) for r in ("cpu", "io", "memory", "pause")},
            "checks": [asdict(c) for c in self.checks],
        }


def _writable(directory: Path) -> tuple[bool, str]:
    """Whether ``directory`` can be written, or created in its nearest existing parent."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return True, str(directory) if probe == directory else f"{directory} (will be created)"
    return False, f"{probe} is not writable"


def _controller(runtime_dir: Path) -> Check:
    from mlkernel.sched.client import ping

    sock = runtime_dir / SOCKET_NAME
    if ping(sock):
        pid = (runtime_dir / "controller.lock").read_text(encoding="ascii").split()
        detail = f"pid {pid[0] if pid else '?'} answers at {sock}"
        return Check("controller", "ok", detail + _controller_use(runtime_dir))
    if sock.exists():
        return Check(
            "controller",
            "warn",
            f"{sock} exists but nobody answers (a controller died); the next `mlk mode ml` "
            "starts one, which restores what the dead one changed",
        )
    return Check(
        "controller",
        "ok",
        f"not running; it starts on demand (`mlk mode ml`, `mlk policy apply`) at {sock}",
    )


def _controller_use(runtime_dir: Path) -> str:
    """Since when the running controller runs and how many things use it (read-only)."""
    import time

    from mlkernel.errors import MLKernelError
    from mlkernel.sched.client import Client

    try:
        with Client(runtime_dir, autostart=False, announce=None) as c:
            status = c.status()
    except (MLKernelError, OSError, ValueError):
        return ""
    since = status.get("started_at")
    started = (
        time.strftime("; running since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
    )
    users = status.get("users")
    if users is None:
        return started
    if not users:
        return started + "; nothing uses it (`mlk mode stop` stops it)"
    return started + f"; used by {len(users)} (see `mlk mode status`)"


def _journal(runtime_dir: Path, controller_up: bool) -> Check:
    can, where = _writable(runtime_dir)
    if not can:
        return Check(
            "journal",
            "fail",
            f"runtime dir {where}: changes could not be recorded before they are made; "
            "run as root or set XDG_RUNTIME_DIR to a writable directory",
        )
    try:
        open_changes = len(Journal(runtime_dir).pending())
    except (OSError, ValueError, KeyError) as exc:
        return Check("journal", "fail", f"cannot read {runtime_dir / JOURNAL_NAME}: {exc}")
    if open_changes and not controller_up:
        return Check(
            "journal",
            "warn",
            f"{open_changes} change(s) left open by a controller that died; the next start "
            "restores them (run `mlk mode ml on --pid $$` then `mlk mode ml off`)",
        )
    return Check("journal", "ok", f"{where} is writable; {open_changes} open change(s)")


def _history(state_dir: Path) -> Check:
    from mlkernel.sched.history import HISTORY_NAME

    can, where = _writable(state_dir)
    if not can:
        return Check(
            "load history",
            "warn",
            f'state dir {where}: no load history will be kept, so `policy = "auto"` '
            "cannot learn; run the controller as root or set XDG_STATE_HOME",
        )
    path = state_dir / HISTORY_NAME
    if not path.exists():
        return Check("load history", "ok", f"none yet; the controller records it in {path}")
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            hours = db.execute("SELECT count(DISTINCT hour) FROM hourly").fetchone()[0]
    except sqlite3.Error as exc:
        return Check("load history", "fail", f"{path} is unreadable ({exc}); move it aside")
    days = hours / 24
    note = 'enough for `policy = "auto"`' if days >= 14 else '`policy = "auto"` needs 14'
    return Check("load history", "ok", f"{path}: {days:.1f} days ({note})")


def _pools(report: BackendReport, parent: str) -> Check:
    if report.cgroup_mount is None:
        return Check(
            "pools",
            "warn",
            "no cgroup backend: pools cannot be weighted, and ML mode falls back to per-thread "
            "priorities; run as root on a host with cgroup cpu, or delegate a subtree",
        )
    base = Path(report.cgroup_mount) / parent
    if base.is_dir():
        missing = [p for p in ("ml", "prod", "dev", "batch") if not (base / p).is_dir()]
        if missing:
            return Check("pools", "warn", f"{base} lacks {', '.join(missing)}; a start recreates")
        return Check("pools", "ok", f"{base}/{{ml,prod,dev,batch}}")
    return Check("pools", "ok", f"{base} will be created when the controller starts")


def _pressure() -> Check:
    if Path("/proc/pressure/cpu").exists():
        return Check("pressure (PSI)", "ok", "/proc/pressure/{cpu,io,memory} sampled into history")
    return Check(
        "pressure (PSI)",
        "warn",
        "no /proc/pressure: the history records CPU and memory only; boot with psi=1",
    )


def _privileges(report: BackendReport) -> Check:
    if report.privileged:
        return Check("privileges", "ok", "CAP_SYS_NICE: every knob can be set and undone")
    return Check(
        "privileges",
        "warn",
        f"unprivileged (RLIMIT_NICE={report.rlimit_nice}): only reversible knobs are used; "
        "run the controller as root for cgroups and SCHED_IDLE",
    )


def diagnose(
    table: Mapping[str, Any] | None = None,
    runtime_dir: Path | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    config_error: str | None = None,
) -> Diagnosis:
    """Probe the machine and check the scheduler's parts, given the ``[sched]`` table
    (or the error that reading it raised)."""
    from mlkernel.sched.policy import PolicyConfig

    report = detect(cgroup_root)
    checks: list[Check] = []
    rd = runtime_dir if runtime_dir is not None else default_runtime_dir()
    try:
        if config_error is not None:
            raise ConfigError(config_error)
        config = PolicyConfig.from_dict(table)
        rules = f"; {len(config.rules)} placement rule(s)" if config.rules else ""
        checks.append(Check("config", "ok", f"[sched] is valid; policy {config.policy}{rules}"))
    except ConfigError as exc:
        config = PolicyConfig()
        checks.append(Check("config", "fail", str(exc)))
    controller = _controller(rd)
    checks += [
        controller,
        _journal(rd, controller.detail.startswith("pid ")),
        _history(state_dir_for(runtime_dir)),
        _pools(report, config.parent),
        _pressure(),
        _privileges(report),
    ]
    return Diagnosis(report, tuple(checks))

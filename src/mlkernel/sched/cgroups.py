"""The pool cgroups: ``<mount>/<parent>/{ml,prod,dev,batch}`` for the CPU controller.

Weights are given on the cgroup v2 scale (1..10000, default 100) everywhere in mlkernel
and converted for v1 as ``shares = weight * 1024 / 100`` (minimum 2, as Kubernetes'
``MinShares``), which keeps ratios (LKML cgroup2 cpu patch). Children inherit their
parent's cgroup, which is why pools are the preferred mechanism: a job's dataloader
workers forked after ML mode started are covered without walking ``/proc``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from mlkernel.errors import ConflictError
from mlkernel.fsutil import try_flock
from mlkernel.sched._proc import read_text, write_text

__all__ = ["POOLS", "PoolGroups", "shares_for"]

POOLS = ("ml", "prod", "dev", "batch")
V1_MAX_SHARES = 262144


def shares_for(weight: float) -> int:
    """cgroup v1 ``cpu.shares`` for a v2-scale weight."""
    return max(2, min(V1_MAX_SHARES, round(weight * 1024 / 100)))


class PoolGroups:
    """Paths and conversions for mlkernel's pool groups under one CPU hierarchy."""

    def __init__(
        self, mount: Path, version: int, controller: str = "cpu", parent: str = "mlkernel"
    ):
        self.mount = Path(mount)
        self.version = version
        self.controller = controller if version == 1 else ""
        self.parent = parent.strip("/")
        self.base = self.mount / self.parent

    @property
    def weight_knob(self) -> str:
        return "cpu.shares" if self.version == 1 else "cpu.weight"

    @property
    def member_knob(self) -> str:
        """The journal knob for "which cgroup is this process in" on this hierarchy."""
        return f"cgroup:{self.controller}:{self.mount}"

    def native_weight(self, weight: float) -> str:
        if self.version == 1:
            return str(shares_for(weight))
        return str(max(1, min(10000, round(weight))))

    def quota(self, percent: float | None, ncpu: int) -> tuple[str, str]:
        """(knob, value) for a hard cap of ``percent`` of the machine (None = no cap)."""
        period = 100_000
        if self.version == 1:
            if percent is None or percent >= 100:
                return "cpu.cfs_quota_us", "-1"
            return "cpu.cfs_quota_us", str(max(1000, round(period * ncpu * percent / 100)))
        if percent is None or percent >= 100:
            return "cpu.max", f"max {period}"
        return "cpu.max", f"{max(1000, round(period * ncpu * percent / 100))} {period}"

    def path(self, pool: str | None = None) -> Path:
        return self.base if pool is None else self.base / pool

    def target(self, pool: str | None = None) -> str:
        return f"path:{self.path(pool)}"

    def relpath(self, pool: str) -> str:
        return f"/{self.parent}/{pool}"

    def claim(self) -> int:
        """Lock the parent group for this process: an exclusive ``flock`` on its directory,
        held until the returned descriptor is closed (or the process dies).

        Two controllers with different runtime dirs but one ``parent`` would each set the
        pools' weights and undo the other's; the second one is refused instead.
        """
        self.base.mkdir(exist_ok=True)
        fd = try_flock(self.base, os.O_RDONLY | os.O_DIRECTORY)
        if fd is None:
            raise ConflictError(
                f"another mlkernel controller manages the cgroups under {self.base}; "
                "reach it with `mlk mode status`, or give this one another [sched] parent"
            ) from None
        return fd

    def ensure(self, pools: tuple[str, ...] = POOLS) -> None:
        """Create the parent and pool groups (idempotent); on v2 enable the cpu controller."""
        if self.version == 2:
            self._enable_cpu(self.mount)
        self.base.mkdir(exist_ok=True)
        if self.version == 2:
            self._enable_cpu(self.base)
        for pool in pools:
            (self.base / pool).mkdir(exist_ok=True)

    @staticmethod
    def _enable_cpu(group: Path) -> None:
        ctl = group / "cgroup.subtree_control"
        if "cpu" not in read_text(ctl).split():
            write_text(ctl, "+cpu")

    def procs(self, pool: str) -> list[int]:
        try:
            text = read_text(self.path(pool) / "cgroup.procs")
        except FileNotFoundError:
            return []
        return [int(x) for x in text.split()]

    def move(self, pid: int, pool_or_relpath: str) -> None:
        rel = pool_or_relpath if pool_or_relpath.startswith("/") else self.relpath(pool_or_relpath)
        write_text(Path(str(self.mount) + rel) / "cgroup.procs", str(pid))

    def remove(self, pools: tuple[str, ...] = POOLS) -> None:
        """Remove the pool groups and the parent; processes still inside go to the root group."""
        for pool in pools:
            group = self.base / pool
            if not group.is_dir():
                continue
            for pid in self.procs(pool):
                with contextlib.suppress(ProcessLookupError, OSError):
                    write_text(self.mount / "cgroup.procs", str(pid))
            self._rmdir(group)
        if self.base.is_dir():
            self._rmdir(self.base)

    @staticmethod
    def _rmdir(group: Path) -> None:
        try:
            os.rmdir(group)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT,):
                raise

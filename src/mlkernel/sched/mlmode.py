"""ML mode: while ML jobs run they get the machine; everything returns when the last one ends.

A refcount of claims, as in GameMode: the first ``enter(pid)`` turns the mode on, the last
``leave(pid)`` (or the claimed process dying) turns it off. Every change goes through the
journal (:class:`~mlkernel.sched.journal.Applier`) under a *claim* name, so each part can be
undone on its own and everything can be undone after a crash:

``job:<pid>:<start>``  the job and the children it forked before the claim (in its own
                       session; a child that called ``setsid`` is left alone): moved into
                       the ``ml`` pool (children forked later inherit it), I/O priority
                       best-effort 0 on their threads; with no cgroups, nice -5 on every
                       thread of it and its descendants (privileged only).
``mode``               the pools: ``ml`` raised to ``ml_weight`` (and the mlkernel parent
                       group with it, so the pools outweigh unmanaged sessions), ``dev`` and
                       ``batch`` lowered to ``held_weight``, ``prod`` kept at or above its
                       guarantee.
``hold``               processes mlkernel did not start, only those an opt-in ``hold`` rule
                       matches: moved into ``batch`` (cgroups) and given nice 19, SCHED_IDLE
                       (SCHED_BATCH unprivileged) and I/O class idle on every thread; with no
                       cgroups also the session's autogroup nice, because autogroup cancels
                       per-thread nice across sessions (reference/os.md, section 2).

Never touched: PID 1, kernel threads, the controller and other protected pids, and anything
already inside mlkernel's pools. Unprivileged, only reversible values are used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlkernel.errors import NotFoundError
from mlkernel.sched import _proc, knobs
from mlkernel.sched.placement import proc_info, process_ids
from mlkernel.sched.policy import PolicyConfig, apply_policy

if TYPE_CHECKING:
    from mlkernel.sched.backends import BackendReport
    from mlkernel.sched.cgroups import PoolGroups
    from mlkernel.sched.journal import Applier, RestoreResult

__all__ = ["Claim", "MLMode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    pid: int
    uid: int
    start: str
    since: float

    @property
    def key(self) -> str:
        return f"job:{self.pid}:{self.start}"


class MLMode:
    """The refcounted mode for one machine; thread-safe. The controller owns one."""

    def __init__(
        self,
        applier: Applier,
        report: BackendReport,
        groups: PoolGroups | None,
        config: PolicyConfig | None = None,
        protect: Iterable[int] = (),
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.applier = applier
        self.report = report
        self.groups = groups
        self.config = config or PolicyConfig()
        self.protect = {os.getpid(), *protect}
        self.clock = clock
        self._claims: dict[int, Claim] = {}
        self._lock = threading.RLock()
        self.on_change: Callable[[str, Claim], None] | None = None

    # -- the claim API ---------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self._claims)

    def claims(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())

    def enter(self, pid: int, uid: int | None = None) -> Claim:
        """Claim ML mode for ``pid`` (and its children and threads)."""
        with self._lock:
            start = _proc.start_time(pid)
            if start is None:
                raise NotFoundError(f"process {pid} does not exist; start the job first")
            old = self._claims.get(pid)
            if old is not None and old.start == start:
                return old
            claim = Claim(pid, _proc.uid_of(pid) if uid is None else uid, start, time.time())
            first = not self._claims
            self._claims[pid] = claim
            try:
                if first:
                    self._mode_on()
                self._boost(claim)
            except BaseException:
                self._claims.pop(pid, None)
                self.applier.restore(claim.key)
                if first:
                    self._mode_off()
                raise
            log.info("ML mode: claim %s (%d active)", claim.key, len(self._claims))
            return claim

    def leave(self, pid: int) -> bool:
        """End ``pid``'s claim; the mode ends with the last claim. False if it held none."""
        with self._lock:
            claim = self._claims.pop(pid, None)
            if claim is None:
                return False
            self.applier.restore(claim.key)
            if not self._claims:
                self._mode_off()
            log.info("ML mode: release %s (%d active)", claim.key, len(self._claims))
            return True

    def leave_all(self) -> RestoreResult:
        with self._lock:
            for pid in list(self._claims):
                self.leave(pid)
            return self.applier.restore(prefix="job:")

    def refresh(self) -> None:
        """Cover what appeared since: new threads and children of jobs (without cgroups),
        new processes matching hold rules. The controller calls it every few seconds."""
        with self._lock:
            if not self._claims:
                return
            for claim in list(self._claims.values()):
                if _proc.start_time(claim.pid) != claim.start:
                    continue
                self._boost(claim)
            self._hold_matching()

    # -- what entering and leaving do ------------------------------------------------
    def _mode_on(self) -> None:
        if self.groups is not None:
            self.groups.ensure()
            g = self.groups
            self._set("mode", g.target(None), g.weight_knob, g.native_weight(self.config.ml_weight))
            apply_policy(self.config, g, self.applier, self.clock(), ml_mode=True, claim="mode")
        self._hold_matching()

    def _mode_off(self) -> None:
        self.applier.restore("hold")
        self.applier.restore("mode")

    def _boost(self, claim: Claim) -> None:
        # The whole tree: children forked before the claim (a launcher's workers) are not
        # covered by cgroup inheritance, and nice and ioprio are per thread anyway. Children
        # in a session of their own were detached on purpose and stay where they are.
        tree = _proc.descendants(claim.pid, same_session=True)
        pids = [p for p in tree if p not in self.protect]
        for pid in pids:
            if self.groups is not None:
                knob = self.groups.member_knob
                self._set(claim.key, f"pid:{pid}", knob, self.groups.relpath("ml"))
            for tid in _proc.threads(pid):
                self._set(claim.key, f"tid:{tid}", "ioprio", "be/0")
                if self.groups is None and self.report.privileged:
                    self._set(claim.key, f"tid:{tid}", "nice", "-5")

    def _hold_matching(self) -> None:
        rules = self.config.hold
        if not rules:
            return
        skip = set(self.protect)
        for claim in self._claims.values():
            skip.update(_proc.descendants(claim.pid))
        for pid in process_ids():
            if pid in skip or _proc.is_kernel_thread(pid):
                continue
            knob = self.groups.member_knob if self.groups is not None else None
            info = proc_info(pid, knob)
            if info is None or info.cgroup.startswith(f"/{self.config.parent}/"):
                continue
            if any(rule.matches(info) for rule in rules):
                self._hold(pid)

    def _hold(self, pid: int) -> None:
        privileged = self.report.privileged
        if self.groups is not None:
            self._set("hold", f"pid:{pid}", self.groups.member_knob, self.groups.relpath("batch"))
        elif privileged and self.report.autogroup and self._in_autogroup(pid):
            self._set("hold", f"pid:{pid}", "autogroup", "19")
        limit = self.report.rlimit_nice
        for tid in _proc.threads(pid):
            target = f"tid:{tid}"
            with contextlib.suppress(OSError, ValueError):
                nice = int(knobs.read(target, "nice"))
                # Unprivileged, raising nice is one-way unless RLIMIT_NICE lets us come back.
                if privileged or 20 - nice <= limit:
                    self._set("hold", target, "nice", "19")
            self._set("hold", target, "policy", "idle" if privileged else "batch")
            self._set("hold", target, "ioprio", "idle/0")

    @staticmethod
    def _in_autogroup(pid: int) -> bool:
        """A session that never called setsid() shares the root group, whose weight the
        kernel refuses to change (EINVAL): its autogroup nice cannot be set."""
        try:
            return knobs.read(f"pid:{pid}", "autogroup") != "none"
        except OSError:
            return False

    def _set(self, claim: str, target: str, knob: str, value: str) -> None:
        try:
            self.applier.set(claim, target, knob, value)
        except ProcessLookupError:
            pass  # the thread or process ended meanwhile: nothing to change
        except OSError as exc:
            log.warning("cannot set %s of %s to %s: %s", knob, target, value, exc)

"""Placing processes in the pools: by the commands mlkernel starts, and by ``[[sched.rules]]``.

Two ways in, both through the journal so that a stop, or the next start after a crash,
moves every process back to the cgroup it came from:

``run:<pid>:<start>``  an explicit placement (``mlk mode run --pool batch -- CMD``): the
                       launcher puts itself in the pool, then starts CMD, which is born
                       there with all its children. The claim ends when the launcher exits.
``place``              the rules, applied by the controller on every tick. A process that
                       matches a rule goes to the rule's pool (the first matching rule
                       wins); a process that matches none follows its parent when the
                       parent is placed by a rule, which covers children forked before the
                       parent was found. Processes already inside mlkernel's pools are left
                       where they are (a claimed ML job, an explicit placement, earlier
                       rule placements), so a tick writes only what changed.

Rules are opt-in: a process mlkernel did not start is moved only when a rule names it.
Never moved: PID 1, kernel threads and the protected pids (the controller).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from mlkernel.errors import NotFoundError, UsageError
from mlkernel.sched import _proc, knobs
from mlkernel.sched.policy import PLACE_POOLS, PolicyConfig, ProcInfo

if TYPE_CHECKING:
    from mlkernel.sched.cgroups import PoolGroups
    from mlkernel.sched.journal import Applier, Change

__all__ = ["RULE_CLAIM", "Placer", "proc_info"]

RULE_CLAIM = "place"
log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _exe_names(pid: int) -> frozenset[str]:
    base = _proc.PROC / str(pid)
    words: list[str] = []
    with contextlib.suppress(OSError):
        words.append(os.readlink(base / "exe"))
    with contextlib.suppress(OSError):
        argv = (base / "cmdline").read_bytes().split(b"\0")
        args = [a.decode(errors="replace") for a in argv[:3] if a]
        words += args[:2]
        if len(args) == 3 and args[1] == "-m":
            words.append(args[2])
    out: set[str] = set()
    for w in words:
        if w and not w.startswith("-"):
            out.update((w, os.path.basename(w)))
    return frozenset(out)


def proc_info(pid: int, member_knob: str | None) -> ProcInfo | None:
    """What rules match on for ``pid`` (None when it is gone or unreadable)."""
    try:
        name = _proc.read_text(_proc.PROC / str(pid) / "comm")
        uid = _proc.uid_of(pid)
    except (OSError, ProcessLookupError):
        return None
    cgroup = ""
    if member_knob is not None:
        with contextlib.suppress(OSError, LookupError):
            cgroup = knobs.read(f"pid:{pid}", member_knob)
    return ProcInfo(name, _exe_names(pid), _user(uid), cgroup)


def process_ids() -> list[int]:
    return sorted(int(n) for n in os.listdir(_proc.PROC) if n.isdigit())


class Placer:
    """Applies the rules and explicit placements for one controller; thread-safe."""

    def __init__(
        self,
        applier: Applier,
        groups: PoolGroups,
        config: PolicyConfig,
        protect: Iterable[int] = (),
    ) -> None:
        self.applier = applier
        self.groups = groups
        self.config = config
        self.protect = {os.getpid(), *protect}
        self._runs: dict[int, str] = {}  # pid -> claim of an explicit placement
        self._lock = threading.RLock()

    # -- explicit placements ---------------------------------------------------------
    def place(self, pid: int, pool: str) -> str:
        """Move ``pid`` into ``pool`` until it exits; returns the claim name."""
        if pool not in PLACE_POOLS:
            raise UsageError(
                f"pool {pool!r} cannot be entered by placement; use one of "
                f"{', '.join(PLACE_POOLS)} (the ml pool is entered with `mlk mode ml`)"
            )
        with self._lock:
            start = _proc.start_time(pid)
            if start is None:
                raise NotFoundError(f"process {pid} does not exist; start it first")
            old = self._runs.pop(pid, None)
            if old is not None:
                self.applier.restore(old)
            claim = f"run:{pid}:{start}"
            self.applier.set(
                claim, f"pid:{pid}", self.groups.member_knob, self.groups.relpath(pool)
            )
            self._runs[pid] = claim
            return claim

    def placed(self, pid: int) -> bool:
        with self._lock:
            return pid in self._runs

    def release(self, pid: int) -> bool:
        """End ``pid``'s explicit placement (its exit, or a request)."""
        with self._lock:
            claim = self._runs.pop(pid, None)
            if claim is None:
                return False
            self.applier.restore(claim)
            return True

    # -- rules -----------------------------------------------------------------------
    def apply_rules(self) -> list[Change]:
        """One pass over every process; moves only those not yet in their pool."""
        rules = self.config.rules
        if not rules:
            return []
        knob = self.groups.member_knob
        inside = f"/{self.config.parent}/"
        kids = _proc.children_map()
        changes: list[Change] = []
        with self._lock:
            # Walk the tree from its roots so a parent's pool is known before its children.
            todo: list[tuple[int, str | None]] = [(pid, None) for pid in kids.get(0, [])]
            while todo:
                pid, inherited = todo.pop()
                pool, move = self._pool_for(pid, inherited, inside)
                if move and pool is not None:
                    change = self._move(pid, knob, pool)
                    if change is not None:
                        changes.append(change)
                todo.extend((child, pool) for child in kids.get(pid, []))
        if changes:
            log.info("placement rules moved %d process(es)", len(changes))
        return changes

    def _pool_for(self, pid: int, inherited: str | None, inside: str) -> tuple[str | None, bool]:
        """The pool rules give ``pid`` (its own match first, else its parent's), and whether
        to move it now. Its children follow that pool either way."""
        if pid in self.protect or _proc.is_kernel_thread(pid):
            return None, False
        info = proc_info(pid, self.groups.member_knob)
        if info is None:
            return None, False
        pool = next((r.pool for r in self.config.rules if r.matches(info)), inherited)
        # Already in a pool: a claim, an explicit placement, or a rule on an earlier tick.
        return pool, pool is not None and not info.cgroup.startswith(inside)

    def _move(self, pid: int, knob: str, pool: str) -> Change | None:
        try:
            return self.applier.set(RULE_CLAIM, f"pid:{pid}", knob, self.groups.relpath(pool))
        except ProcessLookupError:
            return None  # it exited meanwhile
        except OSError as exc:
            log.warning("cannot place process %d in %s: %s", pid, pool, exc)
            return None

    def reload(self, config: PolicyConfig) -> None:
        """New rules: undo the rule placements (runs stay), the next pass applies the new."""
        with self._lock:
            self.config = config
            self.applier.restore(RULE_CLAIM)

"""What the scheduler's operations answer (:mod:`mlkernel.sched.service`), typed.

The controller speaks JSON lines (:mod:`mlkernel.sched.controller`); each answer is read
once, here, into a frozen dataclass (``from_answer``), so that entry points render from
attributes. ``to_dict()`` gives back exactly the JSON ``--json`` prints (key order too),
which ``tests/sched/test_service.py`` checks against a real controller's answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.sched.backends import BackendReport
    from mlkernel.sched.policy import PlanRow, PlanSpan

__all__ = [
    "ClaimInfo",
    "Claimed",
    "ControllerState",
    "ControllerUser",
    "HistoryInfo",
    "LearnedWindows",
    "MachineStatus",
    "OffpeakSuggestion",
    "Placed",
    "PlacementInfo",
    "PolicyApplied",
    "PolicyNow",
    "PolicyPlan",
    "PolicyState",
    "PoolNow",
    "Released",
    "ReleasedAll",
    "Starter",
    "Stopped",
]

RESOURCES = ("cpu", "io", "memory", "pause")


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class ClaimInfo:
    """One ML-mode claim: the process, its owner, its start time (tells a reused pid
    apart) and since when it holds the claim."""

    pid: int
    uid: int
    start: str
    since: float

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> ClaimInfo:
        return cls(int(d["pid"]), int(d["uid"]), str(d["start"]), float(d["since"]))

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "uid": self.uid, "start": self.start, "since": self.since}


@dataclass(frozen=True)
class Claimed:
    """ML mode claimed for a process: the claim, how many are active, the pool it is in
    (None without a cgroup backend) and what ML mode changed, in a few words each."""

    claim: ClaimInfo
    claims: int
    pool: str | None
    applied: tuple[str, ...]

    @property
    def pid(self) -> int:
        return self.claim.pid

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> Claimed:
        return cls(
            ClaimInfo.from_answer(d["claim"]),
            int(d["claims"]),
            d.get("pool"),
            tuple(d.get("applied") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "claim": self.claim.to_dict(),
            "claims": self.claims,
            "pool": self.pool,
            "applied": list(self.applied),
        }


@dataclass(frozen=True)
class Released:
    """One claim ended: whether there was one, the claims left, whether ML mode stays on,
    and how many changes were undone (``open``: still open, for ``mlk mode status``)."""

    left: bool
    claims: int
    ml_mode: bool
    restored: int
    open: int

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> Released:
        return cls(
            bool(d["left"]),
            int(d["claims"]),
            bool(d["ml_mode"]),
            int(d.get("restored", 0)),
            int(d.get("open", 0)),
        )


@dataclass(frozen=True)
class ReleasedAll:
    """Every claim of the caller ended (root: every claim): their pids, the claims left."""

    left: tuple[int, ...]
    claims: int


@dataclass(frozen=True)
class Placed:
    """A process placed in a pool until it exits; ``placed`` False (with the ``reason``)
    where the machine has no cgroup backend."""

    placed: bool
    pool: str | None = None
    claim: str | None = None
    reason: str | None = None

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> Placed:
        return cls(bool(d["placed"]), d.get("pool"), d.get("claim"), d.get("reason"))


@dataclass(frozen=True)
class ControllerUser:
    """One thing that still needs the controller: a ``claim``, a ``placement`` (``mlk
    mode run``), a connected ``client`` that claimed or placed something, or an applied
    ``policy``; ``what`` says whose (a project label, else the command)."""

    kind: str
    pid: int | None
    what: str
    uid: int | None = None
    pool: str | None = None
    since: float | None = None

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> ControllerUser:
        return cls(
            str(d.get("kind")),
            d.get("pid"),
            str(d.get("what") or ""),
            d.get("uid"),
            d.get("pool"),
            d.get("since"),
        )

    def describe(self) -> str:
        """In words, e.g. ``ML-mode job pid 12: project x``."""
        if self.kind == "policy":
            return self.what
        where = f" in {self.pool}" if self.pool else ""
        noun = {"claim": "ML-mode job", "placement": "`mlk mode run` job", "client": "client"}
        return f"{noun.get(self.kind, self.kind)} pid {self.pid}{where}: {self.what}"

    def to_dict(self) -> dict[str, Any]:
        # Each kind carries its own fields (controller.users), all of them set.
        return {
            "kind": self.kind,
            "pid": self.pid,
            **_present(uid=self.uid, pool=self.pool, since=self.since),
            "what": self.what,
        }


@dataclass(frozen=True)
class Stopped:
    """What ``mlk mode stop`` did: ``pid`` None when no controller ran; ``users`` are what
    kept it running when it was not ``stopped``."""

    pid: int | None
    stopped: bool
    users: tuple[ControllerUser, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "stopped": self.stopped,
            "users": [u.to_dict() for u in self.users],
        }


@dataclass(frozen=True)
class Starter:
    """The process that started the controller (``started_by``); a controller started by
    hand knows only its parent's pid."""

    pid: int | None
    uid: int | None = None
    user: str | None = None
    command: str | None = None
    cwd: str | None = None
    label: str | None = None

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> Starter:
        return cls(
            d.get("pid"),
            d.get("uid"),
            d.get("user"),
            d.get("command"),
            d.get("cwd"),
            d.get("label"),
        )

    def to_dict(self) -> dict[str, Any]:
        if self.uid is None:
            return {"pid": self.pid}
        return {
            "pid": self.pid,
            "uid": self.uid,
            "user": self.user,
            "command": self.command,
            "cwd": self.cwd,
            "label": self.label,
        }


@dataclass(frozen=True)
class LearnedWindows:
    """Off-peak windows learned from the load history (``policy = "auto"``)."""

    ok: bool
    reason: str
    windows: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "windows": list(self.windows)}


@dataclass(frozen=True)
class PolicyState:
    """The controller's policy: ``static`` or ``auto``, what it learned, how many rules."""

    mode: str
    learned: LearnedWindows | None
    rules: int

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> PolicyState:
        learned = d.get("learned")
        return cls(
            str(d.get("mode", "static")),
            None
            if learned is None
            else LearnedWindows(
                bool(learned["ok"]), str(learned["reason"]), tuple(learned["windows"])
            ),
            int(d.get("rules", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "learned": None if self.learned is None else self.learned.to_dict(),
            "rules": self.rules,
        }


@dataclass(frozen=True)
class PlacementInfo:
    """A process in a pool, placed by a ``rule`` or a ``run`` (``mlk mode run``)."""

    pid: int
    pool: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "pool": self.pool, "by": self.by}


@dataclass(frozen=True)
class HistoryInfo:
    """The controller's load history: its file and its rows per table."""

    path: str
    sample: int
    pressure: int
    hourly: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sample": self.sample,
            "pressure": self.pressure,
            "hourly": self.hourly,
        }


@dataclass(frozen=True)
class ControllerState:
    """What a running controller says of itself beyond the backends and claims."""

    uid: int
    started_at: float | None
    started_by: Starter
    users: tuple[ControllerUser, ...]
    runtime_dir: str
    pools: str | None  # the pools' cgroup folder; None without a cgroup backend
    window: str
    weights: Mapping[str, float]
    journal_open: int
    recovered_at_start: int
    state_dir: str
    policy: PolicyState
    placements: tuple[PlacementInfo, ...]
    history: HistoryInfo | None

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> ControllerState:
        hist = d.get("history")
        return cls(
            uid=int(d["uid"]),
            started_at=d.get("started_at"),
            started_by=Starter.from_answer(d.get("started_by") or {}),
            users=tuple(ControllerUser.from_answer(u) for u in d.get("users") or ()),
            runtime_dir=str(d["runtime_dir"]),
            pools=d.get("pools"),
            window=str(d.get("window")),
            weights=dict(d.get("weights") or {}),
            journal_open=int(d.get("journal_open", 0)),
            recovered_at_start=int(d.get("recovered_at_start", 0)),
            state_dir=str(d["state_dir"]),
            policy=PolicyState.from_answer(d.get("policy") or {}),
            placements=tuple(
                PlacementInfo(int(p["pid"]), str(p["pool"]), str(p["by"]))
                for p in d.get("placements") or ()
            ),
            history=None
            if hist is None
            else HistoryInfo(
                str(hist["path"]),
                int(hist.get("sample", 0)),
                int(hist.get("pressure", 0)),
                int(hist.get("hourly", 0)),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The controller's own keys, in the order of its ``status`` answer."""
        return {
            "uid": self.uid,
            "started_at": self.started_at,
            "started_by": self.started_by.to_dict(),
            "users": [u.to_dict() for u in self.users],
            "runtime_dir": self.runtime_dir,
            "pools": self.pools,
            "window": self.window,
            "weights": dict(self.weights),
            "journal_open": self.journal_open,
            "recovered_at_start": self.recovered_at_start,
            "state_dir": self.state_dir,
            "policy": self.policy.to_dict(),
            "placements": [p.to_dict() for p in self.placements],
            "history": None if self.history is None else self.history.to_dict(),
        }


@dataclass(frozen=True)
class MachineStatus:
    """The scheduler on this machine: the controller's own status when it runs
    (``controller``, ``pid``), else what this process detects."""

    pid: int | None
    ml_mode: bool
    claims: tuple[ClaimInfo, ...]
    backends: BackendReport
    why_not: Mapping[str, list[str]]
    controller: ControllerState | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @classmethod
    def detected(cls, report: BackendReport) -> MachineStatus:
        """No controller runs: this machine's backends, as this process finds them."""
        return cls(None, False, (), report, {r: report.why_not(r) for r in RESOURCES})

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> MachineStatus:
        from mlkernel.sched.backends import BackendReport, Mechanism

        b = dict(d["backends"])
        b.pop("reversible_only", None)  # derived from privileged
        mechanisms = tuple(Mechanism(**m) for m in b.pop("mechanisms", ()))
        return cls(
            pid=int(d["pid"]),
            ml_mode=bool(d.get("ml_mode")),
            claims=tuple(ClaimInfo.from_answer(c) for c in d.get("claims") or ()),
            backends=BackendReport(**b, mechanisms=mechanisms),
            why_not={r: list(v) for r, v in dict(d.get("why_not") or {}).items()},
            controller=ControllerState.from_answer(d),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **(self.controller.to_dict() if self.controller is not None else {}),
            "pid": self.pid,
            "ml_mode": self.ml_mode,
            "claims": [c.to_dict() for c in self.claims],
            "backends": self.backends.to_dict(),
            "why_not": {r: list(v) for r, v in self.why_not.items()},
        }


@dataclass(frozen=True)
class PoolNow:
    pool: str
    weight: float
    share: float  # percent of the CPU under full contention
    guarantee: float
    maximum: float | None
    cpu_shares: int  # the cgroup v1 value of ``weight``

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "weight": self.weight,
            "share": self.share,
            "guarantee": self.guarantee,
            "maximum": self.maximum,
            "cpu_shares": self.cpu_shares,
        }


@dataclass(frozen=True)
class PolicyNow:
    """The window active at ``at`` and every pool's weight and share then."""

    at: datetime
    window: str
    pools: tuple[PoolNow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "window": self.window,
            "pools": [p.to_dict() for p in self.pools],
        }


@dataclass(frozen=True)
class PolicyPlan:
    """The policy hour by hour from ``start``; ``spans`` joins identical consecutive hours.
    ``--json`` prints ``[row.to_dict() for row in rows]``."""

    start: datetime
    hours: int
    pools: tuple[str, ...]  # the columns, in order
    rows: tuple[PlanRow, ...]

    @property
    def spans(self) -> list[PlanSpan]:
        from mlkernel.sched.policy import collapse

        return collapse(self.rows)


@dataclass(frozen=True)
class PolicyApplied:
    """The policy written now: each knob changed, in words; ``note`` when nothing could be
    (ML mode is on)."""

    changes: tuple[str, ...]
    note: str | None = None

    @classmethod
    def from_answer(cls, d: Mapping[str, Any]) -> PolicyApplied:
        return cls(tuple(d.get("changes") or ()), d.get("note"))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "changes": list(self.changes), **_present(note=self.note)}


@dataclass(frozen=True)
class OffpeakSuggestion:
    """Off-peak windows learned from the load history, or ``reason`` why there are none."""

    ok: bool
    reason: str
    days: float
    windows: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "days": self.days,
            "windows": list(self.windows),
        }

"""The scheduler's operations for entry points, with typed results.

``mlk policy``, ``mlk mode status`` and ``mlk doctor`` call these and render what they
return; they read no file and build no status themselves.

    source = load_policy(config_file, start)      # the [sched] table, checked, and its policy
    now = policy_now(source.config, datetime.now()) # the window and every pool's weight
    status = machine_status(runtime_dir)            # the controller's status, or this machine's
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlkernel.config import CONFIG_FILE, check_section, read_toml
from mlkernel.errors import ConfigError, NotFoundError
from mlkernel.sched.policy import PolicyConfig
from mlkernel.sched.settings import SCHED

__all__ = [
    "MachineStatus",
    "PolicyNow",
    "PolicySource",
    "PoolNow",
    "load_policy",
    "machine_status",
    "policy_now",
    "sched_table",
]

RESOURCES = ("cpu", "io", "memory", "pause")


def sched_table(
    config_file: Path | None = None, start: Path | None = None
) -> tuple[Path | None, dict[str, Any]]:
    """The ``[sched]`` table of ``config_file``, or of the nearest mlkernel.toml at or above
    ``start`` (the current folder): ``(file, table)``, ``(None, {})`` when there is none.
    The table is checked against its schema, with the same messages as a project open."""
    if config_file is not None:
        if not config_file.exists():
            raise NotFoundError(f"config file {config_file} does not exist")
        path: Path | None = config_file
    else:
        here = (start or Path(".")).resolve()
        if not here.is_dir():
            what = "is not a folder" if here.exists() else "does not exist"
            raise NotFoundError(f"{here} {what}; name a project folder (or a folder inside one)")
        path = next(
            (d / CONFIG_FILE for d in (here, *here.parents) if (d / CONFIG_FILE).exists()), None
        )
    if path is None:
        return None, {}
    data = read_toml(path)
    table = data.get("sched", {})
    check_section(SCHED, table, str(path), "sched")
    return path, table


@dataclass(frozen=True)
class PolicySource:
    """A policy and where it came from (``path`` None: no file, the defaults)."""

    path: Path | None
    table: Mapping[str, Any]
    config: PolicyConfig


def load_policy(config_file: Path | None = None, start: Path | None = None) -> PolicySource:
    path, table = sched_table(config_file, start)
    try:
        config = PolicyConfig.from_dict(table)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None
    return PolicySource(path, table, config)


@dataclass(frozen=True)
class PoolNow:
    pool: str
    weight: float
    share: float  # percent of the CPU under full contention
    guarantee: float
    maximum: float | None
    cpu_shares: int  # the cgroup v1 value of ``weight``


@dataclass(frozen=True)
class PolicyNow:
    at: datetime
    window: str
    pools: tuple[PoolNow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "window": self.window,
            "pools": [
                {
                    "pool": p.pool,
                    "weight": p.weight,
                    "share": p.share,
                    "guarantee": p.guarantee,
                    "maximum": p.maximum,
                    "cpu_shares": p.cpu_shares,
                }
                for p in self.pools
            ],
        }


def policy_now(config: PolicyConfig, when: datetime) -> PolicyNow:
    """The window active at ``when`` and every pool's weight and share then."""
    from mlkernel.sched.cgroups import POOLS, shares_for

    label, weights = config.weights_at(when)
    total = sum(weights.values())
    pools = tuple(
        PoolNow(
            pool=p,
            weight=round(weights[p], 2),
            share=round(100 * weights[p] / total, 1),
            guarantee=config.pools[p].guarantee,
            maximum=config.pools[p].maximum,
            cpu_shares=shares_for(weights[p]),
        )
        for p in POOLS
    )
    return PolicyNow(when, label, pools)


@dataclass(frozen=True)
class MachineStatus:
    """The scheduler on this machine: the controller's own status when it runs (``pid``),
    else what this process detects. ``details`` holds the rest of the controller's answer
    (claims, window, policy, placements, history, users), as ``--json`` prints it."""

    pid: int | None
    ml_mode: bool
    claims: list[dict[str, Any]]
    backends: dict[str, Any]
    why_not: dict[str, list[str]]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.pid is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.details,
            "pid": self.pid,
            "ml_mode": self.ml_mode,
            "claims": self.claims,
            "backends": self.backends,
            "why_not": self.why_not,
        }


def machine_status(runtime_dir: Path | None = None) -> MachineStatus:
    """Ask the controller (never starting one); without one, detect the backends here."""
    from mlkernel.sched.client import Client

    try:
        with Client(runtime_dir, autostart=False) as c:
            data = c.status()
    except NotFoundError:
        from mlkernel.sched.backends import detect

        report = detect()
        return MachineStatus(
            None, False, [], report.to_dict(), {r: report.why_not(r) for r in RESOURCES}
        )
    data = dict(data)
    data.pop("ok", None)
    core = ("pid", "ml_mode", "claims", "backends", "why_not")
    return MachineStatus(
        pid=data.get("pid"),
        ml_mode=bool(data.get("ml_mode")),
        claims=list(data.get("claims", [])),
        backends=dict(data.get("backends", {})),
        why_not=dict(data.get("why_not", {})),
        details={k: v for k, v in data.items() if k not in core},
    )

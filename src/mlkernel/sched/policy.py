"""Pools and time-window policies: who gets the CPU at which hour.

The ``[sched]`` section of ``mlkernel.toml`` arrives here as a plain dict::

    [sched]
    policy = "static"                 # or "auto": off-peak windows learned from history
    ml_weight = 10000                 # the ml pool's weight while ML mode is on
    held_weight = 1                   # dev and batch weight while ML mode is on
    windows = [
      "weekdays 08-20: prod 50 / dev 40 / batch 10",
      "otherwise: batch 70",
    ]
    [sched.pools.prod]
    guarantee = 30                    # percent of the CPU it keeps under full contention
    weight = 100                      # cgroup v2 scale, 1..10000 (v1 shares = weight * 10.24)
    maximum = 100                     # hard cap in percent of the machine (CFS quota)
    [[sched.hold]]                    # opt-in: processes mlkernel did not start, held back in ML mode
    name = "stress"                   # match on any of: name, exe, user, cgroup
    [[sched.rules]]                   # opt-in: place matching processes in a pool, every tick
    pool = "prod"
    exe = "uvicorn"

Weights are relative and work-conserving: they bite only under contention, so batch
still uses CPU the day leaves idle. A window names the weights of some pools; the others
keep their base weight. Guarantees are then enforced: a pool whose share
``w / sum(w)`` would fall below its guarantee is raised to exactly its guarantee.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlkernel.errors import ConfigError
from mlkernel.sched.cgroups import POOLS

if TYPE_CHECKING:
    from mlkernel.sched.cgroups import PoolGroups
    from mlkernel.sched.journal import Applier, Change

__all__ = [
    "HoldRule",
    "OffPeak",
    "PlaceRule",
    "PlanRow",
    "PlanSpan",
    "PolicyConfig",
    "Pool",
    "ProcInfo",
    "Window",
    "apply_policy",
    "collapse",
    "parse_window",
    "plan",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "daily": frozenset(range(7)),
    "all": frozenset(range(7)),
    "*": frozenset(range(7)),
}
SCHED_KEYS = (
    "policy",
    "ml_weight",
    "held_weight",
    "windows",
    "pools",
    "hold",
    "parent",
    "tick_seconds",
    "rules",
    "offpeak",
)
POOL_KEYS = ("guarantee", "weight", "maximum")
HOLD_KEYS = ("name", "exe", "user", "cgroup")
RULE_KEYS = ("pool", *HOLD_KEYS)
PLACE_POOLS = ("prod", "dev", "batch")  # ``ml`` is entered by claims, never by rules
POLICY_MODES = ("static", "auto")


@dataclass(frozen=True)
class Pool:
    name: str
    guarantee: float = 0.0
    weight: float = 100.0
    maximum: float | None = None


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) and hours ``[start, end)``; ``end <= start`` wraps past midnight."""

    days: frozenset[int]
    start: int
    end: int
    weights: Mapping[str, float]
    label: str = ""

    def covers(self, when: datetime) -> bool:
        hour, day = when.hour, when.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= hour < self.end
        # Wrapping window (e.g. 20-08): the early hours belong to the previous day's window.
        if hour >= self.start:
            return day in self.days
        return hour < self.end and (day - 1) % 7 in self.days


@dataclass(frozen=True, slots=True)
class OffPeak:
    """The off-peak window: daily, ``HH:MM-HH:MM``, it may wrap midnight.

    The scheduler's one notion of off-peak (``[sched] offpeak``): work that can wait,
    like the dataset watcher's drift analysis, asks :meth:`PolicyConfig.is_offpeak`.
    """

    start: int  # minutes after midnight
    end: int

    @classmethod
    def parse(cls, text: str) -> OffPeak:
        try:
            a, b = text.split("-")
            return cls(_minutes(a), _minutes(b))
        except ValueError:
            raise ConfigError(
                f'[sched] offpeak is {text!r}; write a daily window like "22:00-06:00"'
            ) from None

    def contains(self, when: datetime) -> bool:
        now = when.hour * 60 + when.minute
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class ProcInfo:
    """What a rule can match on for one process.

    ``exes`` holds every name the process is known by as an executable: the path and base
    name of ``/proc/<pid>/exe``, of ``argv[0]``, of the script an interpreter runs
    (``argv[1]``) and the module of ``python -m MODULE``, so ``exe = "uvicorn"`` matches
    ``/usr/bin/python3 /usr/local/bin/uvicorn app:app`` and ``python -m uvicorn`` alike.
    """

    name: str
    exes: frozenset[str]
    user: str
    cgroup: str


@dataclass(frozen=True)
class HoldRule:
    """Opt-in match for processes mlkernel did not start (Ananicy-style). Every key given
    must match: ``name`` the command name (comm), ``exe`` one of :attr:`ProcInfo.exes`,
    ``user`` the user name, ``cgroup`` a prefix of the cpu cgroup path."""

    name: str | None = None
    exe: str | None = None
    user: str | None = None
    cgroup: str | None = None

    def matches(self, info: ProcInfo) -> bool:
        if self.name is None and self.exe is None and self.user is None and self.cgroup is None:
            return False
        return (
            (self.name is None or info.name == self.name)
            and (self.exe is None or self.exe in info.exes)
            and (self.user is None or info.user == self.user)
            and (self.cgroup is None or info.cgroup.startswith(self.cgroup))
        )


@dataclass(frozen=True)
class PlaceRule(HoldRule):
    """``[[sched.rules]]``: processes matching go to ``pool`` (prod, dev or batch)."""

    pool: str = "batch"


@dataclass(frozen=True)
class PlanRow:
    start: datetime
    window: str
    weights: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "window": self.window,
            "weights": dict(self.weights),
        }


def _num(value: Any, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"[sched] {key} must be a number from {lo:g} to {hi:g}, not {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"[sched] {key} = {value!r} is out of range; use {lo:g} to {hi:g}")
    return float(value)


def _unknown(d: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise ConfigError(f"unknown key {where}.{key}; accepted keys: {', '.join(allowed)}")


def _parse_days(text: str, where: str) -> frozenset[int]:
    text = text.strip().lower()
    if text in DAY_GROUPS:
        return DAY_GROUPS[text]
    days: set[int] = set()
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        try:
            i = DAY_NAMES.index(a[:3])
            j = DAY_NAMES.index(b[:3]) if b else i
        except ValueError:
            raise ConfigError(
                f"{where}: bad days {text!r}; use weekdays, weekends, daily, "
                "a day (mon..sun), a range (mon-fri) or a list (sat,sun)"
            ) from None
        k = i
        while True:
            days.add(k)
            if k == j:
                break
            k = (k + 1) % 7
    return frozenset(days)


def _parse_hours(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,2})(?::00)?\s*-\s*(\d{1,2})(?::00)?\s*", text)
    if not m or not (0 <= int(m[1]) <= 23 and 0 <= int(m[2]) <= 24) or int(m[1]) == int(m[2]):
        raise ConfigError(f"{where}: bad hours {text!r}; use HH-HH, e.g. 08-20 or 20-08")
    return int(m[1]), int(m[2]) % 24


def _parse_weights(items: Mapping[str, Any] | str, where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(items, str):
        pairs: list[tuple[str, Any]] = []
        for part in re.split(r"[/,]", items):
            bits = part.split()
            if len(bits) != 2:
                raise ConfigError(f"{where}: bad weights {items!r}; write 'prod 50 / dev 40'")
            try:
                pairs.append((bits[0], float(bits[1])))
            except ValueError:
                raise ConfigError(f"{where}: weight of {bits[0]} must be a number") from None
    else:
        pairs = list(items.items())
    for pool, value in pairs:
        if pool not in POOLS:
            raise ConfigError(f"{where}: unknown pool {pool!r}; pools are {', '.join(POOLS)}")
        out[pool] = _num(value, f"{where}.{pool}", 1, 10000)
    return out


def parse_window(
    spec: str | Mapping[str, Any], where: str = "[sched] windows"
) -> Window | dict[str, float]:
    """A window from ``"weekdays 08-20: prod 50 / dev 40"`` or a dict with days, hours,
    weights. ``"otherwise: batch 70"`` returns just the weights of the fallback."""
    if isinstance(spec, str):
        head, sep, tail = spec.partition(":")
        if not sep:
            raise ConfigError(f"{where}: {spec!r} needs 'DAYS HH-HH: pool weight / ...'")
        head = head.strip().lower()
        if head in ("otherwise", "default"):
            return _parse_weights(tail, where)
        bits = head.split()
        if len(bits) != 2:
            raise ConfigError(
                f"{where}: {spec!r} needs 'DAYS HH-HH: ...', e.g. 'weekdays 08-20: prod 50'"
            )
        start, end = _parse_hours(bits[1], where)
        return Window(_parse_days(bits[0], where), start, end, _parse_weights(tail, where), head)
    _unknown(spec, ("days", "hours", "weights"), where)
    if "weights" not in spec:
        raise ConfigError(f"{where}: a window needs weights, e.g. weights = {{prod = 50}}")
    days = str(spec.get("days", "daily"))
    hours = str(spec.get("hours", "00-24"))
    start, end = _parse_hours(hours, where)
    return Window(
        _parse_days(days, where),
        start,
        end,
        _parse_weights(spec["weights"], where),
        f"{days} {hours}",
    )


@dataclass(frozen=True)
class PolicyConfig:
    pools: Mapping[str, Pool] = field(default_factory=lambda: {p: Pool(p) for p in POOLS})
    windows: tuple[Window, ...] = ()
    otherwise: Mapping[str, float] = field(default_factory=dict)
    policy: str = "static"
    ml_weight: float = 10000.0
    held_weight: float = 1.0
    hold: tuple[HoldRule, ...] = ()
    parent: str = "mlkernel"
    tick_seconds: float = 60.0
    rules: tuple[PlaceRule, ...] = ()
    offpeak: OffPeak | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PolicyConfig:
        """Validate the ``[sched]`` table; errors name the key and what it accepts."""
        d = d or {}
        if not isinstance(d, Mapping):
            raise ConfigError("[sched] must be a table")
        _unknown(d, SCHED_KEYS, "[sched]")
        mode = d.get("policy", "static")
        if mode not in POLICY_MODES:
            raise ConfigError(
                f"[sched] policy = {mode!r}; accepted values: {', '.join(POLICY_MODES)}"
            )
        pools = {p: Pool(p) for p in POOLS}
        raw_pools = d.get("pools", {})
        if not isinstance(raw_pools, Mapping):
            raise ConfigError("[sched] pools must be a table of pools: ml, prod, dev, batch")
        for name, spec in raw_pools.items():
            where = f"[sched.pools.{name}]"
            if name not in POOLS:
                raise ConfigError(f"unknown pool {where}; pools are {', '.join(POOLS)}")
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{where} must be a table with {', '.join(POOL_KEYS)}")
            _unknown(spec, POOL_KEYS, where)
            mx = spec.get("maximum")
            pools[name] = Pool(
                name,
                guarantee=_num(spec.get("guarantee", 0), f"pools.{name}.guarantee", 0, 100),
                weight=_num(spec.get("weight", 100), f"pools.{name}.weight", 1, 10000),
                maximum=None if mx is None else _num(mx, f"pools.{name}.maximum", 1, 100),
            )
        total = sum(p.guarantee for p in pools.values())
        if total > 100:
            raise ConfigError(
                f"[sched] pool guarantees add up to {total:g}%; they must not exceed 100"
            )
        windows: list[Window] = []
        otherwise: dict[str, float] = {}
        raw_windows = d.get("windows", [])
        if not isinstance(raw_windows, list):
            raise ConfigError("[sched] windows must be a list of 'DAYS HH-HH: pool weight / ...'")
        for i, spec in enumerate(raw_windows):
            w = parse_window(spec, f"[sched] windows[{i}]")
            if isinstance(w, Window):
                windows.append(w)
            else:
                otherwise = w
        hold: list[HoldRule] = []
        for i, rule in enumerate(d.get("hold", [])):
            where = f"[[sched.hold]][{i}]"
            if not isinstance(rule, Mapping) or not rule:
                raise ConfigError(f"{where} must be a table with one of {', '.join(HOLD_KEYS)}")
            _unknown(rule, HOLD_KEYS, where)
            hold.append(HoldRule(**{k: str(v) for k, v in rule.items()}))
        rules = _parse_rules(d.get("rules", []))
        offpeak = d.get("offpeak")
        if offpeak is not None and not isinstance(offpeak, str):
            raise ConfigError(
                f'[sched] offpeak = {offpeak!r}; write a daily window like "22:00-06:00"'
            )
        parent = str(d.get("parent", "mlkernel"))
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", parent) or ".." in parent:
            raise ConfigError(
                f"[sched] parent = {parent!r}; use a relative cgroup name like 'mlkernel'"
            )
        return cls(
            pools=pools,
            windows=tuple(windows),
            otherwise=otherwise,
            policy=str(mode),
            ml_weight=_num(d.get("ml_weight", 10000), "ml_weight", 1, 10000),
            held_weight=_num(d.get("held_weight", 1), "held_weight", 1, 10000),
            hold=tuple(hold),
            parent=parent,
            tick_seconds=_num(d.get("tick_seconds", 60), "tick_seconds", 1, 3600),
            rules=rules,
            offpeak=None if offpeak is None else OffPeak.parse(offpeak),
        )

    def is_offpeak(self, when: datetime) -> bool:
        """Whether ``when`` is off-peak: inside ``[sched] offpeak``; every hour is when no
        window is set (deferred work then waits for nothing)."""
        return self.offpeak is None or self.offpeak.contains(when)

    def with_windows(self, learned: list[str]) -> PolicyConfig:
        """This config with ``learned`` windows (e.g. from ``suggest_offpeak``) ahead of its
        own, so they win where they apply and the static windows rule the other hours."""
        extra = [parse_window(w, "learned windows") for w in learned]
        return replace(self, windows=(*(w for w in extra if isinstance(w, Window)), *self.windows))

    def window_at(self, when: datetime) -> tuple[str, dict[str, float]]:
        """The label and raw weights of the window active at ``when`` (first match wins)."""
        for w in self.windows:
            if w.covers(when):
                return w.label, dict(w.weights)
        return ("otherwise" if self.otherwise else "base"), dict(self.otherwise)

    def weights_at(self, when: datetime, ml_mode: bool = False) -> tuple[str, dict[str, float]]:
        """Every pool's weight at ``when`` after guarantees; ML mode raises ml and holds back
        dev and batch."""
        label, named = self.window_at(when)
        weights = {p: named.get(p, self.pools[p].weight) for p in POOLS}
        if ml_mode:
            weights["ml"] = self.ml_weight
            weights["dev"] = weights["batch"] = self.held_weight
            label = f"ML mode ({label})"
        out = enforce_guarantees(weights, {p: self.pools[p].guarantee for p in POOLS})
        top = max(out.values())
        if top > 10000:  # keep the v2 range; ratios, and so guarantees, are unchanged
            out = {p: max(1.0, w * 10000 / top) for p, w in out.items()}
        return label, out


def _parse_rules(raw: Any) -> tuple[PlaceRule, ...]:
    if not isinstance(raw, list):
        raise ConfigError("[sched] rules must be a list of tables: [[sched.rules]] pool = ...")
    rules = []
    for i, rule in enumerate(raw):
        where = f"[[sched.rules]][{i}]"
        if not isinstance(rule, Mapping):
            raise ConfigError(
                f"{where} must be a table with pool and one of {', '.join(HOLD_KEYS)}"
            )
        _unknown(rule, RULE_KEYS, where)
        pool = rule.get("pool")
        if pool not in PLACE_POOLS:
            raise ConfigError(f"{where}.pool = {pool!r}; accepted values: {', '.join(PLACE_POOLS)}")
        match = {k: str(v) for k, v in rule.items() if k != "pool"}
        if not match:
            raise ConfigError(f"{where} matches nothing; add one of {', '.join(HOLD_KEYS)}")
        rules.append(PlaceRule(pool=str(pool), **match))
    return tuple(rules)


def enforce_guarantees(
    weights: Mapping[str, float], guarantees: Mapping[str, float]
) -> dict[str, float]:
    """Raise each pool whose share of the total is below its guarantee to exactly it.

    Solving ``w_p / (w_p + rest) = g`` gives ``w_p = g * rest / (1 - g)``. Raising one pool
    lowers the others' shares, so repeat until stable (a few rounds; guarantees sum <= 100%).
    """
    out = dict(weights)
    for _ in range(10):
        stable = True
        for pool, g_pct in guarantees.items():
            g = g_pct / 100
            if g <= 0:
                continue
            rest = sum(w for p, w in out.items() if p != pool)
            need = rest * 1e6 if g >= 1 else g * rest / (1 - g)
            if out[pool] < need - 1e-9:
                out[pool] = min(10000.0 * 1000, need)
                stable = False
        if stable:
            break
    return out


def plan(config: PolicyConfig, start: datetime, hours: int = 24) -> list[PlanRow]:
    """One row per hour from ``start`` (truncated to the hour): the window and the weights."""
    t0 = start.replace(minute=0, second=0, microsecond=0)
    rows = []
    for h in range(hours):
        t = t0 + timedelta(hours=h)
        label, weights = config.weights_at(t)
        rows.append(PlanRow(t, label, weights))
    return rows


@dataclass(frozen=True)
class PlanSpan:
    """Consecutive plan hours with the same window and weights: ``start`` to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    window: str
    weights: Mapping[str, float]

    @property
    def label(self) -> str:
        """``Mon 00-06``; a span past midnight names both days: ``Mon 20 - Tue 08``."""
        last = self.end - timedelta(hours=1)
        if last.date() == self.start.date():
            end = "24" if self.end.hour == 0 else f"{self.end:%H}"
            return f"{self.start:%a %H}-{end}"
        return f"{self.start:%a %H} - {self.end:%a %H}"


def collapse(rows: Sequence[PlanRow]) -> list[PlanSpan]:
    """Merge consecutive hours whose window and weights are equal into one span each."""
    spans: list[PlanSpan] = []
    for r in rows:
        end = r.start + timedelta(hours=1)
        prev = spans[-1] if spans else None
        if (
            prev is not None
            and prev.end == r.start
            and (prev.window, dict(prev.weights))
            == (
                r.window,
                dict(r.weights),
            )
        ):
            spans[-1] = PlanSpan(prev.start, end, prev.window, prev.weights)
        else:
            spans.append(PlanSpan(r.start, end, r.window, r.weights))
    return spans


def apply_policy(
    config: PolicyConfig,
    groups: PoolGroups,
    applier: Applier,
    when: datetime,
    ml_mode: bool = False,
    claim: str = "policy",
) -> list[Change]:
    """Write the pool weights (and caps) active at ``when``; only values that differ are written,
    each through the journal."""
    _label, weights = config.weights_at(when, ml_mode=ml_mode)
    changes = []
    ncpu = os.cpu_count() or 1
    for pool in POOLS:
        target = groups.target(pool)
        c = applier.set(claim, target, groups.weight_knob, groups.native_weight(weights[pool]))
        if c is not None:
            changes.append(c)
        mx = config.pools[pool].maximum
        if mx is not None:
            knob, value = groups.quota(mx, ncpu)
            c = applier.set(claim, target, knob, value)
            if c is not None:
                changes.append(c)
    return changes

"""Load history: per-pool CPU and memory plus /proc/pressure, kept small by hourly roll-up,
and off-peak windows learned from it.

Raw samples (one per pool per minute) live only until their hour is complete; then they
are averaged into one ``hourly`` row per pool, so a year of history is ~35k rows.

``suggest_offpeak`` follows reference/os.md section 4: the demand of the interactive pools
(prod + dev, in CPUs) per weekday x hour is averaged over at least 14 days; an hour is
*peak* when its demand exceeds ``max(p60 of all 168 cells, 30% of capacity)``; peaks are
widened by one hour on each side (hysteresis), and off-peak runs shorter than two hours
are dropped. What remains is proposed as windows that give batch work the machine.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mlkernel.errors import StorageError

if TYPE_CHECKING:
    from mlkernel.sched.cgroups import PoolGroups

__all__ = [
    "HISTORY_NAME",
    "History",
    "Sampler",
    "Suggestion",
    "read_pressure",
    "suggest_offpeak",
]

HISTORY_NAME = "history.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sample (ts REAL NOT NULL, pool TEXT NOT NULL, cpu REAL NOT NULL,
                                   mem REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pressure (ts REAL NOT NULL, resource TEXT NOT NULL,
                                     some_avg60 REAL NOT NULL, full_avg60 REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hourly (hour TEXT NOT NULL, pool TEXT NOT NULL, cpu REAL NOT NULL,
                                   mem REAL NOT NULL, n INTEGER NOT NULL,
                                   PRIMARY KEY (hour, pool));
CREATE INDEX IF NOT EXISTS sample_ts ON sample (ts);
CREATE INDEX IF NOT EXISTS pressure_ts ON pressure (ts);
"""
PRESSURE_POOL = "psi:"  # hourly rows for pressure use pool = "psi:cpu", cpu = some avg60
HOUR_FMT = "%Y-%m-%dT%H"


def _hour(ts: datetime) -> str:
    return ts.strftime(HOUR_FMT)


class History:
    """A SQLite file of samples and hourly roll-ups. One writer, the controller's tick
    thread; its request threads read through the same connection under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"cannot open load history {self.path}: {exc}; check that its folder is writable"
            ) from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def add(self, ts: datetime, pool: str, cpu: float, mem: float) -> None:
        """One raw sample: ``cpu`` in CPUs used (1.0 = one core busy), ``mem`` in bytes."""
        with self._lock, self.db:
            self.db.execute(
                "INSERT INTO sample VALUES (?, ?, ?, ?)", (ts.timestamp(), pool, cpu, mem)
            )

    def add_pressure(self, ts: datetime, values: dict[str, tuple[float, float]]) -> None:
        with self._lock, self.db:
            self.db.executemany(
                "INSERT INTO pressure VALUES (?, ?, ?, ?)",
                [(ts.timestamp(), r, s, f) for r, (s, f) in values.items()],
            )

    def add_hourly(self, rows: Iterable[tuple[datetime, str, float, float]]) -> None:
        """Hourly rows directly (imports, generated history); replaces existing ones."""
        with self._lock, self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO hourly VALUES (?, ?, ?, ?, 1)",
                [(_hour(h), p, c, m) for h, p, c, m in rows],
            )

    def rollup(self, now: datetime) -> int:
        """Average the raw samples of every complete hour before ``now`` into ``hourly``
        and delete them. Returns the number of hourly rows written."""
        with self._lock:
            return self._rollup(now)

    def _rollup(self, now: datetime) -> int:
        cut = now.replace(minute=0, second=0, microsecond=0).timestamp()
        sums: dict[tuple[str, str], list[float]] = {}
        for ts, pool, cpu, mem in self.db.execute("SELECT * FROM sample WHERE ts < ?", (cut,)):
            acc = sums.setdefault((_hour(datetime.fromtimestamp(ts)), pool), [0.0, 0.0, 0.0])
            acc[0] += cpu
            acc[1] += mem
            acc[2] += 1
        for ts, res, some, _full in self.db.execute("SELECT * FROM pressure WHERE ts < ?", (cut,)):
            key = (_hour(datetime.fromtimestamp(ts)), PRESSURE_POOL + res)
            acc = sums.setdefault(key, [0.0, 0.0, 0.0])
            acc[0] += some
            acc[2] += 1
        with self.db:
            for (hour, pool), (cpu, mem, n) in sums.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO hourly VALUES (?, ?, ?, ?, ?)",
                    (hour, pool, cpu / n, mem / n, int(n)),
                )
            self.db.execute("DELETE FROM sample WHERE ts < ?", (cut,))
            self.db.execute("DELETE FROM pressure WHERE ts < ?", (cut,))
        return len(sums)

    def hourly(
        self, pools: Sequence[str] | None = None
    ) -> list[tuple[datetime, str, float, float]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT hour, pool, cpu, mem FROM hourly ORDER BY hour, pool"
            ).fetchall()
        return [
            (datetime.strptime(h, HOUR_FMT), p, c, m)
            for h, p, c, m in rows
            if pools is None or p in pools
        ]

    def counts(self) -> dict[str, int]:
        out = {}
        with self._lock:
            for table in ("sample", "pressure", "hourly"):
                out[table] = int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return out


def read_pressure(base: Path = Path("/proc/pressure")) -> dict[str, tuple[float, float]]:
    """``{resource: (some avg60, full avg60)}`` from PSI; empty where the kernel lacks it."""
    out: dict[str, tuple[float, float]] = {}
    for res in ("cpu", "io", "memory"):
        try:
            lines = (base / res).read_text(encoding="ascii").splitlines()
        except OSError:
            continue
        vals = {"some": 0.0, "full": 0.0}
        for line in lines:
            kind, *fields = line.split()
            for f in fields:
                k, _, v = f.partition("=")
                if k == "avg60":
                    vals[kind] = float(v)
        out[res] = (vals["some"], vals["full"])
    return out


class Sampler:
    """Per-pool CPU (CPUs used since the previous sample) and resident memory, summed over
    the processes in each pool group, plus PSI. Without pool groups (no cgroup backend)
    only the pressure is recorded."""

    def __init__(
        self, groups: PoolGroups | None, pools: Sequence[str] = ("ml", "prod", "dev", "batch")
    ):
        self.groups = groups
        self.pools = tuple(pools) if groups is not None else ()
        self._prev: dict[int, float] = {}
        self._prev_t: float | None = None
        self._prev_wall = 0.0

    def sample(
        self, history: History, now: datetime | None = None
    ) -> dict[str, tuple[float, float]]:
        import time

        import psutil  # type: ignore[import-untyped,unused-ignore]

        now = now or datetime.now()
        t, wall = time.monotonic(), time.time()
        dt = None if self._prev_t is None else t - self._prev_t
        seen: dict[int, float] = {}
        out: dict[str, tuple[float, float]] = {}
        for pool in self.pools:
            cpu_s = 0.0
            mem = 0.0
            assert self.groups is not None
            for pid in self.groups.procs(pool):
                try:
                    p = psutil.Process(pid)
                    times = p.cpu_times()
                    total = times.user + times.system
                    mem += p.memory_info().rss
                    # A process born since the last sample counts all its CPU time.
                    born = p.create_time() >= self._prev_wall
                except psutil.Error:
                    continue
                seen[pid] = total
                cpu_s += total - self._prev.get(pid, 0.0 if born else total)
            out[pool] = (cpu_s / dt if dt else 0.0, mem)
        self._prev, self._prev_t, self._prev_wall = seen, t, wall
        if dt:
            for pool, (cpu, mem) in out.items():
                history.add(now, pool, cpu, mem)
            history.add_pressure(now, read_pressure())
        return out


@dataclass
class Suggestion:
    ok: bool
    reason: str
    days: float
    threshold: float = 0.0
    peak: set[tuple[int, int]] = field(default_factory=set)
    windows: list[str] = field(default_factory=list)
    demand: list[list[float]] = field(default_factory=list)


def _days_label(days: Sequence[int]) -> str:
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    s = set(days)
    if s == set(range(7)):
        return "daily"
    if s == set(range(5)):
        return "weekdays"
    if s == {5, 6}:
        return "weekends"
    return ",".join(names[d] for d in sorted(s))


def suggest_offpeak(
    history: History,
    *,
    pools: Sequence[str] = ("prod", "dev"),
    min_days: int = 14,
    capacity: float | None = None,
    offpeak_weights: str = "batch 70",
) -> Suggestion:
    """Off-peak windows from the weekday x hour demand of ``pools`` (see the module doc)."""
    rows = history.hourly(pools)
    if not rows:
        return Suggestion(False, f"no load history yet; need {min_days} days", 0.0)
    first, last = rows[0][0], rows[-1][0]
    days = (last - first + timedelta(hours=1)).total_seconds() / 86400
    if days < min_days:
        return Suggestion(
            False, f"only {days:.1f} days of load history; need {min_days} before suggesting", days
        )
    capacity = capacity or float(os.cpu_count() or 1)
    per_hour: dict[datetime, float] = {}
    for when, _pool, cpu, _mem in rows:
        per_hour[when] = per_hour.get(when, 0.0) + cpu
    sums = [[0.0] * 24 for _ in range(7)]
    counts = [[0] * 24 for _ in range(7)]
    for when, cpu in per_hour.items():
        sums[when.weekday()][when.hour] += cpu
        counts[when.weekday()][when.hour] += 1
    demand = [
        [sums[d][h] / counts[d][h] if counts[d][h] else 0.0 for h in range(24)] for d in range(7)
    ]
    cells = sorted(v for row in demand for v in row)
    p60 = cells[int(0.6 * (len(cells) - 1))]
    threshold = max(p60, 0.3 * capacity)
    peak = {(d, h) for d in range(7) for h in range(24) if demand[d][h] > threshold}
    # Hysteresis: one hour either side of a peak is peak too (across midnight as well).
    widened = set(peak)
    for d, h in peak:
        for step in (-1, 1):
            t = d * 24 + h + step
            widened.add(((t // 24) % 7, t % 24))
    runs: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for d in range(7):
        day_runs: list[tuple[int, int]] = []
        h = 0
        while h < 24:
            if (d, h) in widened:
                h += 1
                continue
            start = h
            while h < 24 and (d, h) not in widened:
                h += 1
            if h - start >= 2:
                day_runs.append((start, h))
        runs.setdefault(tuple(day_runs), []).append(d)
    windows = []
    for found, ds in sorted(runs.items(), key=lambda kv: kv[1]):
        for start, end in found:
            windows.append(f"{_days_label(ds)} {start:02d}-{end:02d}: {offpeak_weights}")
    reason = (
        f"{days:.0f} days of history; peak = {'+'.join(pools)} demand above "
        f"{threshold:.2f} CPUs (max of p60 and 30% of {capacity:g} CPUs)"
    )
    return Suggestion(True, reason, days, threshold, peak, windows, demand)

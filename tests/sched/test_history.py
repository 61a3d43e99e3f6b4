from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from mlkernel.sched.history import History, read_pressure, suggest_offpeak
from mlkernel.sched.policy import PolicyConfig

START = datetime(2025, 1, 6)  # a Monday


def office_load(days: int) -> list[tuple[datetime, str, float, float]]:
    """Generated history: prod+dev busy on weekdays 09-18, quiet nights and weekends."""
    rnd = random.Random(7)
    rows = []
    for h in range(days * 24):
        t = START + timedelta(hours=h)
        busy = t.weekday() < 5 and 9 <= t.hour < 18
        rows.append((t, "prod", (1.2 if busy else 0.1) + rnd.uniform(0, 0.1), 2e9))
        rows.append((t, "dev", (0.5 if busy else 0.05) + rnd.uniform(0, 0.05), 1e9))
        rows.append((t, "batch", 1.5 if not busy else 0.2, 3e9))
    return rows


def test_offpeak_is_learned_from_weekday_by_hour_history(tmp_path: Path) -> None:
    h = History(tmp_path / "load.db")
    h.add_hourly(office_load(21))
    s = suggest_offpeak(h, capacity=2)
    assert s.ok, s.reason
    # Peak 09-18 widened by one hour each side: off-peak is 00-08 and 19-24 on weekdays.
    assert s.windows == [
        "weekdays 00-08: batch 70",
        "weekdays 19-24: batch 70",
        "weekends 00-24: batch 70",
    ]
    assert (0, 12) in s.peak and (5, 12) not in s.peak
    cfg = PolicyConfig.from_dict({"windows": s.windows})  # suggestions are valid config
    assert cfg.window_at(datetime(2025, 3, 4, 3))[0] == "weekdays 00-08"
    assert cfg.window_at(datetime(2025, 3, 4, 12))[0] == "base"
    assert cfg.window_at(datetime(2025, 3, 8, 12))[0] == "weekends 00-24"


def test_no_suggestion_before_fourteen_days(tmp_path: Path) -> None:
    h = History(tmp_path / "load.db")
    assert not suggest_offpeak(h).ok
    h.add_hourly(office_load(10))
    s = suggest_offpeak(h)
    assert not s.ok and "10.0 days" in s.reason and "14" in s.reason


def test_rollup_turns_minutes_into_one_row_per_hour_and_pool(tmp_path: Path) -> None:
    h = History(tmp_path / "load.db")
    t0 = datetime(2025, 3, 3, 10, 0)
    for m in range(120):
        h.add(t0 + timedelta(minutes=m), "prod", 1.0 if m < 60 else 0.5, 100.0)
        h.add_pressure(t0 + timedelta(minutes=m), {"cpu": (10.0, 0.0)})
    assert h.rollup(datetime(2025, 3, 3, 11, 30)) == 2  # prod + psi:cpu for 10:00
    counts = h.counts()
    assert counts["hourly"] == 2 and counts["sample"] == 60 and counts["pressure"] == 60
    rows = {(r[0].hour, r[1]): r[2] for r in h.hourly()}
    assert rows == {(10, "prod"): 1.0, (10, "psi:cpu"): 10.0}
    h.rollup(datetime(2025, 3, 3, 12, 0))
    assert {(r[0].hour, r[1]): r[2] for r in h.hourly(["prod"])} == {
        (10, "prod"): 1.0,
        (11, "prod"): 0.5,
    }
    h.close()


def test_pressure_is_read_when_the_kernel_has_it() -> None:
    from mlkernel.testing import need

    need(Path("/proc/pressure/cpu").exists(), "kernel without PSI (/proc/pressure)")
    p = read_pressure()
    assert set(p) >= {"cpu"} and all(v >= 0 for pair in p.values() for v in pair)


def test_without_pool_groups_the_sampler_records_pressure_only(tmp_path: Path) -> None:
    from mlkernel.sched.history import Sampler
    from mlkernel.testing import need

    need(Path("/proc/pressure/cpu").exists(), "kernel without PSI (/proc/pressure)")
    h = History(tmp_path / "load.db")
    s = Sampler(None)
    assert s.sample(h) == {}  # the first sample only sets the baseline
    s.sample(h)
    counts = h.counts()
    assert counts["sample"] == 0 and counts["pressure"] >= 1
    h.close()

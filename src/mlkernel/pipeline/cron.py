"""Five-field cron expressions (``minute hour day-of-month month day-of-week``), in local
time, with ``*``, ``a-b``, ``*/n``, ``a-b/n``, lists and ``@hourly``/``@daily``/
``@weekly``/``@monthly``/``@yearly``. As in cron, when both day fields are restricted a
day matching either one fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mlkernel.errors import ConfigError

__all__ = ["Cron"]

_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _field(text: str, index: int, expr: str) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                start, end = low, high
            elif "-" in span:
                a, b = span.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(span)
                if step_text:
                    end = high
        except ValueError:
            raise ConfigError(
                f"cron {expr!r}: {_NAMES[index]} field {text!r} is not a number, range or */n"
            ) from None
        if step < 1 or start < low or end > high or start > end:
            raise ConfigError(
                f"cron {expr!r}: {_NAMES[index]} field {text!r} is outside {low}-{high}"
            )
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        text = _SHORTCUTS.get(expr.strip(), expr.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ConfigError(
                f"cron {expr!r} has {len(parts)} fields; write 5 (minute hour day month "
                "weekday), e.g. '0 2 * * *' for 02:00 every day"
            )
        fields = [_field(p, i, expr) for i, p in enumerate(parts)]
        minutes, hours, days, months, weekdays = fields
        return cls(expr, minutes, hours, days, months, weekdays, parts[2] == "*", parts[4] == "*")

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, ts: float) -> float:
        """The first time strictly after ``ts`` (seconds since the epoch) that matches."""
        start = datetime.fromtimestamp(ts).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate.timestamp()
            day += timedelta(days=1)
        raise ConfigError(f"cron {self.expr!r} never fires; check the day and month fields")

"""Dates, times and durations as people read them.

Profiles keep a ``datetime`` column's values as the integers Arrow stores (days since
1970-01-01 for ``date32``, microseconds since 1970-01-01 UTC for ``timestamp[us]``, ...),
so that sketches and drift tests work on numbers. What a person reads is made here from
the column's Arrow type (``ColumnProfile.dtype``):

``point(dtype, value)``  a date (``2012-01-01``), a timestamp (``2012-01-01 10:00:00``,
                         with its offset when the type has a time zone), a time of day
                         (``10:30:00``) or a duration (``1 day, 2:00:00``)
``span(dtype, value)``   a spread such as a standard deviation, in days for dates and
                         for spans of a day or more, else in seconds (``299.1 days``,
                         ``42 s``): the unit is part of the text
``unit(dtype)``          what the stored number counts, e.g. ``days since 1970-01-01``

Each returns None for a type it does not know or a value out of the calendar's range;
callers then show the number.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = ["point", "span", "unit"]

_TYPE = re.compile(r"^(date32|date64|timestamp|time32|time64|duration)\[(\w+)(?:, tz=(.+))?\]$")
_SECONDS = {"day": 86400.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_UNIT_NAMES = {
    "day": "days",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse(dtype: str) -> tuple[str, float, str, str | None] | None:
    """(family, seconds per stored unit, unit, time zone) of an Arrow temporal type's text."""
    found = _TYPE.match(dtype.strip())
    if found is None or found.group(2) not in _SECONDS:
        return None
    family = {"date32": "date", "date64": "date", "time32": "time", "time64": "time"}.get(
        found.group(1), found.group(1)
    )
    return family, _SECONDS[found.group(2)], found.group(2), found.group(3)


def unit(dtype: str) -> str | None:
    """What the stored numbers of a column of this type count."""
    parsed = _parse(dtype)
    if parsed is None:
        return None
    family, _, name, tz = parsed
    words = _UNIT_NAMES[name]
    if family == "date":
        return f"{words} since 1970-01-01"
    if family == "timestamp":
        return f"{words} since 1970-01-01 00:00 UTC" + (f" (shown in {tz})" if tz else "")
    if family == "time":
        return f"{words} since midnight"
    return words


def _zone(tz: str) -> tzinfo | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    fixed = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", tz)
    if fixed:
        from datetime import timezone

        sign = 1 if fixed.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3))))
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(moment: datetime) -> str:
    """Seconds, or finer only when the value has a fraction of a second."""
    micro = moment.microsecond
    spec = "seconds" if micro == 0 else "milliseconds" if micro % 1000 == 0 else "microseconds"
    return moment.isoformat(sep=" ", timespec=spec)


def point(dtype: str, value: float | None) -> str | None:
    """One value of the column as a date, timestamp, time of day or duration."""
    parsed = _parse(dtype)
    if parsed is None or value is None or not math.isfinite(value):
        return None
    family, seconds_per, _, tz = parsed
    seconds = value * seconds_per
    try:
        if family == "date":
            return (date(1970, 1, 1) + timedelta(days=round(seconds / 86400))).isoformat()
        moment = timedelta(microseconds=round(seconds * 1e6))
        if family == "duration":
            return str(moment)
        if family == "time":
            return _clock(datetime(2000, 1, 1) + moment).split(" ", 1)[1]
        stamp = _EPOCH + moment
        if tz is None:
            return _clock(stamp.replace(tzinfo=None))
        zone = _zone(tz)
        return _clock(stamp.astimezone(zone) if zone is not None else stamp)
    except (OverflowError, ValueError):
        return None


def span(dtype: str, value: float | None) -> str | None:
    """A spread of the column's values (a standard deviation, say) with its unit."""
    parsed = _parse(dtype)
    if parsed is None or value is None or not math.isfinite(value):
        return None
    family, seconds_per, _, _ = parsed
    seconds = value * seconds_per
    if family == "date" or abs(seconds) >= 86400:
        return f"{_plain(seconds / 86400)} days"
    return f"{_plain(seconds)} s"


def _plain(number: float) -> str:
    """Four significant digits without an exponent: 42095, 424.3, 0.01234."""
    if number == 0:
        return "0"
    decimals = max(0, 3 - math.floor(math.log10(abs(number))))
    return f"{number:.{decimals}f}"

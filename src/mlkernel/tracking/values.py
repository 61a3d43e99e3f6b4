"""What a run may log, checked at the call so that nothing fails later at a flush.

A metric is ``(key, step, value, timestamp)``:

- **key**: a string of 1 to 250 characters (the column's width), without control
  characters and encodable as UTF-8 (no lone surrogates), since either database refuses
  the others only when the batch is written.
- **value**: anything ``float()`` takes that is a real number: ``int``, ``float``, ``bool``
  (1.0 / 0.0), ``Decimal``, ``Fraction``, NumPy and PyTorch scalars. NaN, +inf and -inf
  are kept; -0.0 is stored as 0.0 (SQLite keeps no sign on a zero, so both backends store
  it so). Strings, complex numbers and integers beyond a float's range are refused.
- **step**: an integer in the 64-bit range of the ``step`` column (a float with an
  integral value, such as ``3.0``, counts as that integer).
- **timestamp**: seconds since the epoch, finite, or a ``datetime``.

A bad call raises :class:`UsageError` naming the metric, and the run keeps everything it
had; the run's buffer never holds a row the database would refuse.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime
from typing import Any

from mlkernel.errors import InvalidNameError, UsageError

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_KEY", "check_key", "metric_step", "metric_time"]
__all__ += ["metric_value"]

MAX_KEY = 250
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_key(key: Any, what: str = "metric key") -> str:
    """``key`` if it can name a metric or parameter on both backends."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise InvalidNameError(f"{what} {key!r} must be a string of 1 to {MAX_KEY} characters")
    if any(ord(c) < 32 for c in key):
        raise InvalidNameError(f"{what} {key!r} contains a control character; remove it")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(
            f"{what} {key!r} is not valid Unicode (a lone surrogate); decode the text properly"
        ) from None
    return key


def metric_value(key: str, value: Any) -> float:
    """``value`` as the float that will be stored (NaN and infinities included)."""
    if type(value) is float:
        return 0.0 if value == 0.0 else value  # -0.0 -> 0.0 (see the module docstring)
    if isinstance(value, str | bytes | bytearray):
        raise UsageError(
            f"metric {key!r}: {value!r} is text, not a number; log a number "
            "(convert it with float() if it holds one)"
        )
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise UsageError(f"metric {key!r}: {value!r} is complex; log its real part or abs()")
    try:
        number = float(value)
    except OverflowError:
        raise UsageError(
            f"metric {key!r}: {value!r} is too large for a float; scale it down"
        ) from None
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"metric {key!r}: {_short(value)} is not a number ({exc}); log a single number"
        ) from None
    return 0.0 if number == 0.0 else number


def metric_step(key: str, step: Any) -> int:
    """``step`` as an integer within the ``step`` column's 64-bit range."""
    if type(step) is not int:
        if isinstance(step, bool):
            raise UsageError(f"metric {key!r}: step {step!r} is a bool; pass an integer")
        if isinstance(step, float | numbers.Real) and not isinstance(step, numbers.Integral):
            number = float(step)
            if not math.isfinite(number) or not number.is_integer():
                raise UsageError(
                    f"metric {key!r}: step {step!r} is not a whole number; pass an integer"
                )
            step = int(number)
        else:
            try:
                step = int(step.__index__())
            except (AttributeError, TypeError):
                raise UsageError(
                    f"metric {key!r}: step {_short(step)} is not an integer; pass an integer"
                ) from None
    if not INT64_MIN <= step <= INT64_MAX:
        raise UsageError(
            f"metric {key!r}: step {step} is outside the 64-bit range the step column holds "
            f"({INT64_MIN} to {INT64_MAX})"
        )
    return int(step)


def metric_time(key: str, timestamp: Any) -> float:
    """``timestamp`` as finite seconds since the epoch."""
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if isinstance(timestamp, str | bytes | bool) or not isinstance(timestamp, numbers.Real):
        raise UsageError(
            f"metric {key!r}: timestamp {_short(timestamp)} is not seconds since the epoch; "
            "pass a number (time.time()) or a datetime"
        )
    try:
        number = float(timestamp)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise UsageError(
            f"metric {key!r}: timestamp {timestamp!r} is not finite; pass seconds since the epoch"
        )
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

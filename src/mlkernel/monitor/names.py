"""Names the monitor derives from a dataset's name: runs, reports.

A derived name must be a valid name (:func:`mlkernel.refs.validate_name`, at most
``MAX_NAME`` characters) for every valid dataset name, and two datasets, or two formats
of one dataset's report, must never share one. The rules:

- ``PREFIX-NAME`` when it fits in ``MAX_NAME`` characters;
- otherwise ``PREFIX_HEAD-HASH``: HEAD is the start of the name, HASH the first 16 hex
  digits of the SHA-256 of the whole name. The ``_`` after the prefix (a name starts
  with a letter or digit, so ``PREFIX-NAME`` has ``-`` there) keeps the two forms apart.
- The prefixes differ at a fixed position: HTML reports are ``drift-…`` (as since the
  first release), JSON reports ``drift.json-…``; so ``x.json``'s HTML report is
  ``drift-x.json`` and ``x``'s JSON report ``drift.json-x``.

Names are for people; programs find a report's dataset in its properties (``dataset``),
never by parsing the name.
"""

from __future__ import annotations

import hashlib

from mlkernel.refs import MAX_NAME

__all__ = ["derived_name", "drift_report_names", "drift_run_name"]

_HASH_CHARS = 16


def derived_name(prefix: str, name: str) -> str:
    """``prefix-name``, or a shortened ``prefix_head-hash`` if that would be too long."""
    plain = f"{prefix}-{name}"
    if len(plain) <= MAX_NAME:
        return plain
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_CHARS]
    head = name[: MAX_NAME - len(prefix) - 2 - _HASH_CHARS]
    return f"{prefix}_{head}-{digest}"


def drift_report_names(dataset: str) -> dict[str, str]:
    """The report artifact names of ``dataset``'s drift reports, by format."""
    return {"html": derived_name("drift", dataset), "json": derived_name("drift.json", dataset)}


def drift_run_name(kind: str, dataset: str) -> str:
    """The name of a monitor execution (``profile``, ``drift``, ``watch``) on ``dataset``."""
    return derived_name(kind, dataset)

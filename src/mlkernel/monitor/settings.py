"""The ``[[watch]]`` and ``[monitor]`` sections of mlkernel.toml, declared (see
:mod:`mlkernel.config`), and the typed settings the monitor reads from them.

A light module: no NumPy, no Arrow; the drift methods are named here and a test keeps
them equal to :data:`mlkernel.monitor.drift.METHODS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlkernel.config import Key, Section

__all__ = ["DRIFT", "METHOD_NAMES", "MONITOR", "WATCH", "MonitorSettings"]

#: The drift tests, as named in ``method`` settings (``mlkernel.monitor.drift.METHODS``).
METHOD_NAMES = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
DEFAULT_SUMMARY_EVERY = 86_400.0


def _dataset_name(value: Any) -> str | None:
    from mlkernel.refs import validate_name

    try:
        validate_name(value, "watch.dataset")
    except Exception:
        return "a dataset name of letters, digits, '.', '_' and '-'"
    return None


def _offpeak(value: Any) -> str | None:
    from mlkernel.sched.settings import SCHED

    key = SCHED.key("offpeak")
    assert key is not None and key.check is not None
    return key.check(value)


WATCH = Section(
    "watch",
    "a folder the watcher ingests new files from (one `[[watch]]` per glob)",
    (
        Key(
            "path", "string", "a glob relative to the project, e.g. `incoming/*.csv`", required=True
        ),
        Key(
            "dataset",
            "string",
            "the dataset its files become versions of",
            required=True,
            check=_dataset_name,
        ),
        Key(
            "baseline",
            "string",
            "also compare every new version with this one, e.g. `dataset:train@1`",
        ),
        Key(
            "debounce",
            "number",
            "seconds a file must stay unchanged when no close event was seen",
            2.0,
            low=0,
        ),
        Key(
            "quarantine",
            "string",
            "a folder (relative to the project) files that cannot be ingested are moved to",
        ),
    ),
)
COLUMN = Section(
    "monitor.drift.columns.<column>",
    "one column's override",
    (
        Key("method", "string", "the drift test for this column", choices=METHOD_NAMES),
        Key("threshold", "number", "its threshold (a p-value or a distance, as the method scores)"),
        Key("skip", "boolean", "leave this column untested", False),
    ),
)
DRIFT = Section(
    "monitor.drift",
    "how columns are tested for drift (see monitor.md)",
    (
        Key(
            "drift_share",
            "number",
            "the dataset drifts when at least this share of its tested columns drift",
            0.5,
            low=0,
            high=1,
            low_open=True,
        ),
        Key(
            "correction",
            "string",
            "multiple-testing correction of p-values",
            "none",
            choices=("none", "bonferroni", "bh"),
        ),
        Key(
            "small_sample_limit",
            "integer",
            "reference values up to which the tests for small samples are chosen",
            1000,
            low=0,
        ),
        Key(
            "numerical_method",
            "string",
            "the test for every numerical column (default: chosen by size)",
            choices=METHOD_NAMES,
        ),
        Key(
            "categorical_method",
            "string",
            "the test for every categorical column (default: chosen by size)",
            choices=METHOD_NAMES,
        ),
        Key(
            "js_base",
            "number",
            "the log base of Jensen-Shannon (default: natural log; 2 = bits)",
            low=0,
            low_open=True,
        ),
        Key(
            "binning",
            "string",
            "bins of Jensen-Shannon and PSI on numerical columns",
            "sturges",
            choices=("sturges", "quantile"),
        ),
        Key(
            "quantile_bins", "integer", 'the number of bins with `binning = "quantile"`', 10, low=1
        ),
        Key("columns", "table", COLUMN.doc, table=COLUMN, named=True),
    ),
)
MONITOR = Section(
    "monitor",
    "the watcher's summaries and the drift tests",
    (
        Key(
            "summary_every",
            "number",
            "seconds between the watcher's summaries",
            DEFAULT_SUMMARY_EVERY,
            low=0,
            low_open=True,
        ),
        Key(
            "offpeak",
            "string",
            "deprecated: write `[sched] offpeak` (the same window; `[sched]` wins when both are set)",
            check=_offpeak,
            expect='a daily window like "22:00-06:00"',
        ),
        Key("drift", "table", DRIFT.doc, table=DRIFT),
    ),
)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """``[monitor]``, typed (the file was checked when the project was opened)."""

    summary_every: float = DEFAULT_SUMMARY_EVERY
    drift: Mapping[str, Any] | None = None

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> MonitorSettings:
        monitor = sections.get("monitor") or {}
        return cls(
            summary_every=float(monitor.get("summary_every", DEFAULT_SUMMARY_EVERY)),
            drift=monitor.get("drift") or {},
        )

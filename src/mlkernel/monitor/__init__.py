"""Dataset profiles, drift tests and drift reports.

The public API, re-exported lazily so that ``import mlkernel.monitor`` loads neither
NumPy, SciPy nor Arrow::

    prof = build_profile(table_or_batches)                 # DatasetProfile (mergeable, JSON)
    prof.merge(other); prof.to_json(); DatasetProfile.from_json(text)
    result = compute_drift(ref_profile, cur_profile, DriftOptions(...))   # DatasetDrift
    report = build_report(ref_profile, cur_profile, result)       # Report
    report.to_html(); report.to_dict()

Modules: ``sketch`` (KLL, HyperLogLog, Misra-Gries), ``profile``, ``stats`` (the tests
on arrays, agreeing with SciPy), ``drift`` (selection and verdicts), ``report``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.monitor.drift import (
        METHODS,
        ColumnDrift,
        ColumnDriftSpec,
        DatasetDrift,
        DriftOptions,
        compute_drift,
        default_method,
    )
    from mlkernel.monitor.profile import (
        ColumnProfile,
        DatasetProfile,
        OutlierSummary,
        ProfileOptions,
        build_profile,
    )
    from mlkernel.monitor.report import Report, build_report

__all__ = [
    "METHODS",
    "ColumnDrift",
    "ColumnDriftSpec",
    "ColumnProfile",
    "DatasetDrift",
    "DatasetProfile",
    "DriftOptions",
    "OutlierSummary",
    "ProfileOptions",
    "Report",
    "build_profile",
    "build_report",
    "compute_drift",
    "default_method",
]

_WHERE = {
    "METHODS": "drift",
    "ColumnDrift": "drift",
    "ColumnDriftSpec": "drift",
    "DatasetDrift": "drift",
    "DriftOptions": "drift",
    "default_method": "drift",
    "compute_drift": "drift",
    "ColumnProfile": "profile",
    "DatasetProfile": "profile",
    "OutlierSummary": "profile",
    "ProfileOptions": "profile",
    "build_profile": "profile",
    "Report": "report",
    "build_report": "report",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlkernel.monitor' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"mlkernel.monitor.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

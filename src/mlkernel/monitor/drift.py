"""Per-column drift tests between two datasets, computed from their profiles.

``compute_drift(reference, current)`` takes two :class:`DatasetProfile` (or anything
:func:`profile` reads, which it profiles first) and needs no further pass over the data:
every test reads the stored sketches. Where a sketch is exact (a numeric column with at
most ``kll_k`` values; categories below ``top_capacity``), the result equals the test on
the raw data, so small samples get SciPy's exact p-values. Otherwise:

* KS: D is the largest gap between the two sketch CDFs (error up to about twice the
  sketch rank error, ~0.3 % at k=1024) and the p-value is asymptotic; at large n, where
  the critical value (0.0019 at n=m=1e6) is below the sketch error, read it as an effect
  size. This is why large samples use distances by default.
* Wasserstein: W1 between the two weighted sketch samples, normalised by the exact std.
* Jensen-Shannon, PSI: bin masses read from the sketches' ranks.
* Chi-square, Z-test: counts from the frequent-items counters; above ``top_capacity``
  categories the uncounted mass goes to one "other" bin.

Default method (Evidently's ``_get_default_stattest``): "small" means at most
``small_sample_limit`` (1000) reference values after nulls, NaN and +-inf are dropped;
``n_unique`` counts distinct values over both samples.

=============  ==========================  ==============================================
reference      numerical                   categorical
=============  ==========================  ==============================================
<= 1000        n_unique > 5: ``ks``;        n_unique > 2: ``chisquare``; else ``z``
               3..5: ``chisquare``; <= 2: ``z``
> 1000         n_unique > 5: ``wasserstein``  ``jensenshannon``
               else ``jensenshannon``
=============  ==========================  ==============================================

Datetime columns are profiled but not tested unless a method is named for them. The
dataset drifts when ``share of drifted columns >= drift_share`` (0.5). With a
``correction`` ("bonferroni" or "bh" for Benjamini-Hochberg), the p-value tests are
decided on adjusted p-values; distance tests are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlkernel.errors import ConfigError
from mlkernel.monitor import stats
from mlkernel.monitor.profile import ColumnProfile, DatasetProfile, ProfileOptions, build_profile

__all__ = [
    "METHODS",
    "ColumnDrift",
    "ColumnDriftSpec",
    "DatasetDrift",
    "DriftOptions",
    "MethodInfo",
    "default_method",
]

FloatArray = npt.NDArray[np.float64]
Correction = Literal["none", "bonferroni", "bh"]
CHI_SQUARE_VARIANT = (
    "goodness of fit (Evidently): expected = reference counts scaled to the current size, "
    "df = categories - 1"
)


@dataclass(frozen=True)
class MethodInfo:
    """What a method's score is and how it is compared with its threshold."""

    name: str
    label: str
    score: Literal["p_value", "distance"]
    default_threshold: float
    # p-values drift when below the threshold ("<=" for KS as in Evidently); distances
    # drift when at or above it.
    inclusive: bool

    def detected(self, score: float, threshold: float) -> bool:
        if self.score == "p_value":
            return score <= threshold if self.inclusive else score < threshold
        return score >= threshold


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo("ks", "Kolmogorov-Smirnov p-value", "p_value", 0.05, True),
        MethodInfo("chisquare", "chi-square goodness-of-fit p-value", "p_value", 0.05, False),
        MethodInfo("z", "Z-test for two proportions p-value", "p_value", 0.05, False),
        MethodInfo(
            "wasserstein", "Wasserstein distance (normed by reference std)", "distance", 0.1, True
        ),
        MethodInfo("jensenshannon", "Jensen-Shannon distance", "distance", 0.1, True),
        MethodInfo("psi", "population stability index", "distance", 0.1, True),
    )
}


_OPTION_TYPES: dict[str, type] = {
    "drift_share": float,
    "correction": str,
    "small_sample_limit": int,
    "numerical_method": str,
    "categorical_method": str,
    "columns": dict,
    "js_base": float,
    "binning": str,
    "quantile_bins": int,
}
_TYPE_WORDS = {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}


def _check_types(
    data: Mapping[str, Any], types: Mapping[str, type], where: str = "[monitor.drift]"
) -> None:
    """Refuse a setting of the wrong type in one line (``drift_share = "x"`` was exit 70)."""
    for key, value in data.items():
        want = types.get(key)
        if want is None or value is None:
            continue
        if want is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif want is dict:
            ok = isinstance(value, Mapping)
        else:
            ok = isinstance(value, want)
        if not ok:
            word = _TYPE_WORDS.get(want, "a table")
            raise ConfigError(
                f"[monitor.drift] {key} = {value!r} must be {word}; fix it in mlkernel.toml"
            )


@dataclass(frozen=True)
class ColumnDriftSpec:
    """A per-column override: the method, the threshold, or ``skip``."""

    method: str | None = None
    threshold: float | None = None
    skip: bool = False

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise ConfigError(
                f"unknown drift method '{self.method}'; use one of {', '.join(METHODS)}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | ColumnDriftSpec) -> ColumnDriftSpec:
        if isinstance(data, ColumnDriftSpec):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"a drift column setting is {data!r}; write a table, e.g. "
                '{ method = "psi", threshold = 0.2 } or { skip = true }'
            )
        unknown = set(data) - {"method", "threshold", "skip"}
        if unknown:
            raise ConfigError(
                f"unknown drift setting(s) {sorted(unknown)}; use method, threshold or skip"
            )
        _check_types(data, {"method": str, "threshold": float, "skip": bool}, "a drift column's")
        threshold = data.get("threshold")
        return cls(
            method=data.get("method"),
            threshold=None if threshold is None else float(threshold),
            skip=bool(data.get("skip", False)),
        )


@dataclass(frozen=True)
class DriftOptions:
    """How columns are tested. ``columns`` maps a column name to a :class:`ColumnDriftSpec`
    or a plain dict ``{"method": ..., "threshold": ..., "skip": ...}`` (as in mlkernel.toml).

    ``js_base``: None = natural log (Evidently), 2 = bits (NannyML).
    ``binning``: "sturges" (Evidently: equal-width Sturges bins over both samples' range)
    or "quantile" (``quantile_bins`` reference-quantile bins, open at both ends), for
    Jensen-Shannon and PSI on numerical columns with more than 20 distinct values.
    """

    drift_share: float = 0.5
    correction: Correction = "none"
    small_sample_limit: int = 1000
    numerical_method: str | None = None
    categorical_method: str | None = None
    columns: Mapping[str, ColumnDriftSpec | Mapping[str, Any]] = field(default_factory=dict)
    js_base: float | None = None
    binning: Literal["sturges", "quantile"] = "sturges"
    quantile_bins: int = 10

    def __post_init__(self) -> None:
        specs = {name: ColumnDriftSpec.from_mapping(s) for name, s in self.columns.items()}
        object.__setattr__(self, "columns", specs)
        for method in (self.numerical_method, self.categorical_method):
            if method is not None and method not in METHODS:
                raise ConfigError(
                    f"unknown drift method '{method}'; use one of {', '.join(METHODS)}"
                )
        if self.correction not in ("none", "bonferroni", "bh"):
            raise ConfigError(f"unknown correction '{self.correction}'; use none, bonferroni or bh")
        if self.binning not in ("sturges", "quantile"):
            raise ConfigError(f"unknown binning '{self.binning}'; use sturges or quantile")
        if not 0 < self.drift_share <= 1:
            raise ConfigError(f"drift_share must be in (0, 1], got {self.drift_share}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DriftOptions:
        """Build from a config section (e.g. ``[monitor.drift]`` of mlkernel.toml)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown drift option(s) {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
        _check_types(data, _OPTION_TYPES)
        return cls(**dict(data))

    def spec(self, column: str) -> ColumnDriftSpec:
        spec = self.columns.get(column)
        return spec if isinstance(spec, ColumnDriftSpec) else ColumnDriftSpec()

    def js_label(self) -> str:
        return "natural log" if self.js_base is None else f"log base {self.js_base:g}"


def default_method(
    kind: str, n_reference: int, n_unique: int, small_sample_limit: int = 1000
) -> str | None:
    """Evidently's default test for a column (see the module docstring)."""
    if kind == "numerical":
        if n_reference <= small_sample_limit:
            if n_unique > 5:
                return "ks"
            return "chisquare" if n_unique > 2 else "z"
        return "wasserstein" if n_unique > 5 else "jensenshannon"
    if kind == "categorical":
        if n_reference <= small_sample_limit:
            return "chisquare" if n_unique > 2 else "z"
        return "jensenshannon"
    return None


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column."""

    column: str
    kind: str
    method: str | None
    score: float | None
    threshold: float | None
    drift_detected: bool
    statistic: float | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    exact: bool = True
    n_reference: int = 0
    n_current: int = 0
    n_unique: float = 0
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def method_label(self) -> str:
        if "type_changed" in self.details:
            return f"type changed ({self.details['type_changed']})"
        if self.method is None:
            return "not tested"
        label = METHODS[self.method].label
        if self.method == "jensenshannon":
            label += f" ({self.details.get('log', 'natural log')})"
        if self.method == "chisquare":
            label = "chi-square goodness-of-fit p-value (Evidently variant)"
        return label

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "method_label": self.method_label,
            "score_type": METHODS[self.method].score if self.method else None,
            "score": _finite(self.score),
            "threshold": self.threshold,
            "drift_detected": self.drift_detected,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "adjusted_p_value": _finite(self.adjusted_p_value),
            "exact": self.exact,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_unique": self.n_unique,
            "details": self.details,
            "skipped": self.skipped,
        }


def _finite(value: float | None) -> float | str | None:
    """JSON has no inf/NaN: spell them as strings."""
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    return value


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column results and the dataset verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    correction: Correction
    new_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.skipped is None]

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.tested if c.drift_detected]

    @property
    def share_drifted(self) -> float:
        tested = self.tested
        return len(self.drifted) / len(tested) if tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.tested) and self.share_drifted >= self.drift_share

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number_of_columns": len(self.tested),
            "number_of_drifted_columns": len(self.drifted),
            "share_of_drifted_columns": self.share_drifted,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "correction": self.correction,
            "drifted_columns": [c.column for c in self.drifted],
            "changed_types": {
                c.column: c.details["type_changed"]
                for c in self.columns
                if "type_changed" in c.details
            },
            "new_columns": self.new_columns,
            "missing_columns": self.missing_columns,
            "chi_square_variant": CHI_SQUARE_VARIANT,
            "columns": [c.to_dict() for c in self.columns],
        }


# -- reading profiles ---------------------------------------------------------------------


def _n_unique(ref: ColumnProfile, cur: ColumnProfile) -> float:
    if ref.frequent.is_exact and cur.frequent.is_exact:
        return float(len(set(ref.frequent.counts) | set(cur.frequent.counts)))
    return round(ref.distinct.merge(cur.distinct).estimate())


def _counts(
    ref: ColumnProfile, cur: ColumnProfile
) -> tuple[list[Any], FloatArray, FloatArray, bool]:
    """Counts over the union of values; uncounted mass goes to a last "other" bin."""
    keys = sorted(set(ref.frequent.counts) | set(cur.frequent.counts))
    r = np.array([ref.frequent.counts.get(k, 0) for k in keys], dtype=np.float64)
    c = np.array([cur.frequent.counts.get(k, 0) for k in keys], dtype=np.float64)
    exact = ref.frequent.is_exact and cur.frequent.is_exact
    if not exact:
        keys.append("(other)")
        r = np.append(r, max(ref.n - r.sum(), 0.0))
        c = np.append(c, max(cur.n - c.sum(), 0.0))
    return keys, r, c, exact


def _binned(
    ref: ColumnProfile, cur: ColumnProfile, options: DriftOptions
) -> tuple[FloatArray, FloatArray, bool, dict[str, Any]]:
    """Reference and current shares for Jensen-Shannon and PSI."""
    many = ref.distinct_count > 20
    if ref.sketch is not None and cur.sketch is not None and many:
        if options.binning == "quantile":
            inner = np.unique(
                ref.sketch.quantiles(np.linspace(0, 1, options.quantile_bins + 1))[1:-1]
            )
            lo = min(ref.sketch.min, cur.sketch.min)
            hi = max(ref.sketch.max, cur.sketch.max)
            edges = np.concatenate([[lo], inner, [hi]])
            desc = f"{len(edges) - 1} reference-quantile bins"
        else:
            lo = min(ref.sketch.min, cur.sketch.min)
            hi = max(ref.sketch.max, cur.sketch.max)
            edges = stats.sturges_edges(
                lo, hi, ref.n + cur.n, integral=ref.integral and cur.integral
            )
            desc = f"{len(edges) - 1} Sturges equal-width bins over both samples"
        p = ref.sketch.histogram(edges) / ref.n
        q = cur.sketch.histogram(edges) / cur.n
        exact = ref.sketch.is_exact and cur.sketch.is_exact
        return p, q, exact, {"bins": desc}
    keys, r, c, exact = _counts(ref, cur)
    return r / ref.n, c / cur.n, exact, {"bins": f"one bin per value ({len(keys)})"}


def _run(
    method: str, ref: ColumnProfile, cur: ColumnProfile, options: DriftOptions
) -> tuple[float, float | None, float | None, bool, dict[str, Any]]:
    """(score, statistic, p_value, exact, details) of one method."""
    if method in ("ks", "wasserstein"):
        if ref.sketch is None or cur.sketch is None:
            raise ConfigError(
                f"column '{ref.name}' is {ref.kind}; {method} needs a numeric column "
                "(use chisquare, z, jensenshannon or psi)"
            )
        rv, rw = ref.sketch.weighted()
        cv, cw = cur.sketch.weighted()
        exact = ref.sketch.is_exact and cur.sketch.is_exact
        if method == "ks":
            if exact:
                res = stats.ks_2samp(rv, cv)
            else:
                res = stats.ks_weighted(rv, rw, cv, cw, ref.n, cur.n)
            return res.p_value, res.statistic, res.p_value, exact, {}
        score = stats.wasserstein_normed(
            rv,
            cv,
            reference_weights=None if exact else rw,
            current_weights=None if exact else cw,
            reference_std=ref.std_population,
        )
        return score, score, None, exact, {"norm": "std of reference, ddof=0, floor 0.001"}
    if method in ("chisquare", "z"):
        keys, r, c, exact = _counts(ref, cur)
        if method == "chisquare":
            res = stats.chisquare_gof(r, c)
            details: dict[str, Any] = {"variant": CHI_SQUARE_VARIANT, "df": len(keys) - 1}
            return res.p_value, res.statistic, res.p_value, exact, details
        first = keys[0] if keys else None
        res = stats.z_test_proportions(ref.n - r[0], ref.n, cur.n - c[0], cur.n)
        return res.p_value, res.statistic, res.p_value, exact, {"zero_value": first}
    p, q, exact, details = _binned(ref, cur, options)
    if method == "jensenshannon":
        score = stats.jensen_shannon(p, q, base=options.js_base)
        details["log"] = options.js_label()
        details["convention"] = "distance sqrt(JSD), zero shares not filled"
        return score, score, None, exact, details
    score = stats.psi(p, q)
    details["zero_fill"] = (
        "Evidently: min_nonzero/1e6 if <= 1e-4 else 1e-4, per array, no renormalisation"
    )
    return score, score, None, exact, details


def _skip(ref: ColumnProfile, cur: ColumnProfile, reason: str, n_unique: float = 0) -> ColumnDrift:
    return ColumnDrift(
        column=ref.name,
        kind=ref.kind,
        method=None,
        score=None,
        threshold=None,
        drift_detected=False,
        n_reference=ref.n,
        n_current=cur.n,
        n_unique=n_unique,
        skipped=reason,
    )


def _test_column(ref: ColumnProfile, cur: ColumnProfile, options: DriftOptions) -> ColumnDrift:
    spec = options.spec(ref.name)
    if spec.skip:
        return _skip(ref, cur, "skipped by configuration")
    if ref.n == 0 or cur.n == 0:
        side = "reference" if ref.n == 0 else "current"
        return _skip(ref, cur, f"no values in the {side} data after dropping nulls, NaN and inf")
    if ref.kind != cur.kind:  # int64 -> double stays numerical: compared as values
        # No test compares an int64 column with a string one, and a model fed the new
        # type breaks or silently misreads it: a changed type is drift, and says so.
        return ColumnDrift(
            column=ref.name,
            kind=cur.kind,
            method=None,
            score=None,
            threshold=None,
            drift_detected=True,
            n_reference=ref.n,
            n_current=cur.n,
            details={"type_changed": f"{ref.kind} ({ref.dtype}) -> {cur.kind} ({cur.dtype})"},
        )
    n_unique = _n_unique(ref, cur)
    method = spec.method
    if method is None:
        if ref.kind == "numerical":
            method = options.numerical_method
        elif ref.kind == "categorical":
            method = options.categorical_method
    if method is None:
        method = default_method(ref.kind, ref.n, int(n_unique), options.small_sample_limit)
    if method is None:
        reason = f"{ref.kind} columns are not tested by default; name a method for them"
        return _skip(ref, cur, reason, n_unique)
    info = METHODS[method]
    threshold = spec.threshold if spec.threshold is not None else info.default_threshold
    score, statistic, p_value, exact, details = _run(method, ref, cur, options)
    return ColumnDrift(
        column=ref.name,
        kind=ref.kind,
        method=method,
        score=score,
        threshold=threshold,
        drift_detected=info.detected(score, threshold),
        statistic=statistic,
        p_value=p_value,
        exact=exact,
        n_reference=ref.n,
        n_current=cur.n,
        n_unique=n_unique,
        details=details,
    )


def _adjust(results: list[ColumnDrift], correction: Correction) -> list[ColumnDrift]:
    """Bonferroni or Benjamini-Hochberg adjusted p-values for the p-value tests."""
    if correction == "none":
        return results
    idx = [i for i, r in enumerate(results) if r.p_value is not None and r.skipped is None]
    m = len(idx)
    if m == 0:
        return results
    p = np.array([results[i].p_value for i in idx], dtype=np.float64)
    if correction == "bonferroni":
        adjusted = np.minimum(p * m, 1.0)
    else:
        order = np.argsort(p)
        ranked = p[order] * m / np.arange(1, m + 1)
        monotone = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(monotone, 1.0)
    out = list(results)
    for i, adj in zip(idx, adjusted.tolist(), strict=True):
        r = out[i]
        assert r.method is not None and r.threshold is not None
        out[i] = ColumnDrift(
            **{
                **r.__dict__,
                "adjusted_p_value": adj,
                "drift_detected": METHODS[r.method].detected(adj, r.threshold),
            }
        )
    return out


def compute_drift(
    reference: Any, current: Any, options: DriftOptions | None = None
) -> DatasetDrift:
    """Test every column shared by ``reference`` and ``current``.

    Both may be :class:`DatasetProfile` (no data is read) or anything
    :func:`mlkernel.monitor.profile` accepts (profiled first, one pass each).
    """
    options = options or DriftOptions()
    ref = (
        reference
        if isinstance(reference, DatasetProfile)
        else build_profile(reference, ProfileOptions())
    )
    cur = (
        current if isinstance(current, DatasetProfile) else build_profile(current, ProfileOptions())
    )
    unknown = sorted(set(options.columns) - set(ref.columns) - set(cur.columns))
    if unknown:
        raise ConfigError(
            f"drift settings name unknown column(s) {unknown}; columns are {sorted(ref.columns)}"
        )
    results = [
        _test_column(col, cur.columns[name], options)
        for name, col in ref.columns.items()
        if name in cur.columns
    ]
    return DatasetDrift(
        columns=_adjust(results, options.correction),
        drift_share=options.drift_share,
        correction=options.correction,
        new_columns=[n for n in cur.columns if n not in ref.columns],
        missing_columns=[n for n in ref.columns if n not in cur.columns],
    )

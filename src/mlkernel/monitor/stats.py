"""The drift statistics, on arrays and counts, written to agree with SciPy and Evidently.

Conventions (named in every result, because tools disagree on them):

* **Chi-square** is the *goodness-of-fit* variant Evidently uses: expected counts are the
  reference counts scaled to the current size, ``E_i = ref_i * n_cur / n_ref``,
  ``chi2 = sum((cur_i - E_i)**2 / E_i)``, ``df = k - 1`` over the union of categories; a
  category absent from the reference but present now gives ``chi2 = inf, p = 0``. (The
  contingency variant, ``scipy.stats.chi2_contingency``, gives another p on the same
  data; it is not used.)
* **Jensen-Shannon** is the *distance* ``sqrt(JSD)`` with the **natural log** by default
  (``scipy.spatial.distance.jensenshannon(base=None)``, max ``sqrt(ln 2) = 0.8326``), as
  Evidently reports it; pass ``base=2`` for NannyML's convention (max 1).
* **Wasserstein** is Evidently's normed W1: ``wasserstein_distance(ref, cur) /
  max(std_ddof0(ref), 0.001)``.
* **PSI** is ``sum((p - q) * ln(p / q))`` after Evidently's zero fill (each array
  separately, no renormalisation; see :func:`fill_zeros`).
* **Z-test** for two proportions with a pooled variance; the first sorted key counts as
  0, every other value as 1; two-sided p.
* **KS**: ``scipy.stats.ks_2samp`` (``method='auto'``) on exact data; on sketches the
  statistic is the largest CDF gap and ``p = kstwo.sf(D, round(n m / (n + m)))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "StatResult",
    "binned_shares",
    "chisquare_gof",
    "fill_zeros",
    "jensen_shannon",
    "ks_2samp",
    "ks_weighted",
    "psi",
    "sturges_edges",
    "wasserstein_normed",
    "z_test_proportions",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | npt.NDArray[Any]


class StatResult(NamedTuple):
    """A test statistic with its p-value (NaN for distances)."""

    statistic: float
    p_value: float


def ks_2samp(reference: ArrayLike, current: ArrayLike) -> StatResult:
    """Two-sample Kolmogorov-Smirnov test, ``scipy.stats.ks_2samp(method='auto')``."""
    from scipy import stats

    res = stats.ks_2samp(
        np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    )
    return StatResult(float(res.statistic), float(res.pvalue))


def ks_weighted(
    ref_values: FloatArray,
    ref_weights: npt.NDArray[Any],
    cur_values: FloatArray,
    cur_weights: npt.NDArray[Any],
    n_ref: int,
    n_cur: int,
) -> StatResult:
    """KS from weighted samples (sketches): D = max CDF gap, asymptotic p.

    The p-value is ``kstwo.sf(D, round(n m / (n + m)))`` as in whylogs; D carries the
    sketches' rank error (up to about twice the per-sketch error), which dwarfs the
    critical value at large n, so read it as an effect size there.
    """
    from scipy import stats

    grid = np.union1d(ref_values, cur_values)
    cdf_ref = _weighted_cdf(ref_values, ref_weights, grid)
    cdf_cur = _weighted_cdf(cur_values, cur_weights, grid)
    d = float(np.max(np.abs(cdf_ref - cdf_cur))) if len(grid) else 0.0
    n_eff = round(n_ref * n_cur / (n_ref + n_cur))
    return StatResult(d, float(stats.kstwo.sf(d, max(n_eff, 1))))


def _weighted_cdf(values: FloatArray, weights: npt.NDArray[Any], grid: FloatArray) -> FloatArray:
    order = np.argsort(values, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=np.float64)[order])])
    return np.asarray(
        cum[np.searchsorted(values[order], grid, side="right")] / cum[-1], dtype=np.float64
    )


def chisquare_gof(reference_counts: ArrayLike, current_counts: ArrayLike) -> StatResult:
    """Evidently's chi-square goodness of fit of current counts to scaled reference counts.

    Agrees with ``scipy.stats.chisquare(cur, ref * n_cur / n_ref)`` and returns
    ``(inf, 0.0)`` without a warning when a current category has no reference count.
    """
    from scipy import stats

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    expected = ref * (cur.sum() / ref.sum())
    if np.any((expected == 0) & (cur > 0)):
        return StatResult(math.inf, 0.0)
    used = expected > 0
    chi2 = float(np.sum((cur[used] - expected[used]) ** 2 / expected[used]))
    df = len(ref) - 1
    return StatResult(chi2, float(stats.chi2.sf(chi2, df)) if df > 0 else 1.0)


def z_test_proportions(ref_ones: float, n_ref: int, cur_ones: float, n_cur: int) -> StatResult:
    """Two-proportion z-test, pooled variance, two-sided p = 2 (1 - Phi(|z|))."""
    from scipy import stats

    p1, p2 = ref_ones / n_ref, cur_ones / n_cur
    pooled = (ref_ones + cur_ones) / (n_ref + n_cur)
    var = pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur)
    if var <= 0:
        return StatResult(0.0, 1.0)
    z = (p1 - p2) / math.sqrt(var)
    return StatResult(z, float(2 * stats.norm.sf(abs(z))))


def wasserstein_normed(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    reference_weights: ArrayLike | None = None,
    current_weights: ArrayLike | None = None,
    reference_std: float | None = None,
) -> float:
    """W1 divided by ``max(std_ddof0(reference), 0.001)`` (Evidently's normed Wasserstein)."""
    from scipy import stats

    ref = np.asarray(reference, dtype=np.float64)
    w1 = float(
        stats.wasserstein_distance(
            ref, np.asarray(current, dtype=np.float64), reference_weights, current_weights
        )
    )
    if reference_std is None:
        reference_std = float(np.std(ref))
    return w1 / max(reference_std, 0.001)


def jensen_shannon(p: ArrayLike, q: ArrayLike, base: float | None = None) -> float:
    """Jensen-Shannon *distance*; natural log unless ``base`` is given (scipy's convention)."""
    from scipy.spatial import distance

    value = float(
        distance.jensenshannon(
            np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64), base=base
        )
    )
    return 0.0 if math.isnan(value) else value


def fill_zeros(shares: ArrayLike) -> FloatArray:
    """Evidently's zero fill: zeros become ``min_nonzero / 1e6`` if ``min_nonzero <= 1e-4``,
    else ``1e-4``; no renormalisation."""
    out = np.array(shares, dtype=np.float64)
    nonzero = out[out != 0]
    if len(nonzero) == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(p: ArrayLike, q: ArrayLike, *, fill: bool = True) -> float:
    """Population stability index ``sum((p - q) ln(p / q))`` (reference ``p``)."""
    ref = np.asarray(p, dtype=np.float64)
    cur = np.asarray(q, dtype=np.float64)
    if fill:
        ref, cur = fill_zeros(ref), fill_zeros(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def sturges_edges(lo: float, hi: float, n: int, *, integral: bool = False) -> FloatArray:
    """``numpy.histogram_bin_edges(data, 'sturges')`` from the data's min, max and size."""
    if lo == hi:
        return np.linspace(lo - 0.5, hi + 0.5, 2)
    width = (hi - lo) / (math.log2(n) + 1.0)
    if integral and width < 1:
        width = 1.0
    bins = math.ceil((hi - lo) / width)
    return np.linspace(lo, hi, bins + 1)


def binned_shares(
    reference: ArrayLike, current: ArrayLike, *, numerical: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Evidently's ``get_binned_data`` on raw arrays, without the zero fill.

    Numerical data with more than 20 distinct reference values: Sturges equal-width bins
    over the combined range; otherwise one bin per distinct value of either sample.
    """
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if numerical and len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return (
            np.histogram(ref, edges)[0] / len(ref),
            np.histogram(cur, edges)[0] / len(cur),
        )
    keys = np.union1d(ref, cur)
    ref_counts = np.array([np.sum(ref == k) for k in keys], dtype=np.float64)
    cur_counts = np.array([np.sum(cur == k) for k in keys], dtype=np.float64)
    return ref_counts / len(ref), cur_counts / len(cur)

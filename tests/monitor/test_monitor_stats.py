"""The statistics agree with SciPy and with the vectors of drift.md section 5."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import spatial, stats

from mlkernel.monitor import stats as ms

A2 = [0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82, 0.37]
A2 += [1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06, -2.47]
B2 = [2.2, 1.66, 1.38, 0.2, 0.36, 0.0, 0.96, 1.56, 0.44, 1.5, -0.32, -0.24, 0.59, 0.77, 0.1]
B2 += [1.88, 2.69, 0.57, 1.56, 1.74]
P = [0.25, 0.25, 0.25, 0.25]
Q = [0.1, 0.2, 0.3, 0.4]

samples = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
)


def test_ks_vectors() -> None:
    d, p = ms.ks_2samp(np.arange(1, 11), np.arange(6, 16))
    assert d == 0.5 and p == pytest.approx(0.1678213427, rel=1e-9)
    d, p = ms.ks_2samp(A2, B2)
    assert d == pytest.approx(0.33) and p == pytest.approx(0.1431435237, rel=1e-9)
    n = 10_000
    ref = stats.norm.ppf((np.arange(n) + 0.5) / n)
    d, p = ms.ks_2samp(ref, ref + 0.05)
    assert d == pytest.approx(0.02) and p == pytest.approx(0.0366286, rel=1e-5)
    assert stats.kstwo.sf(0.002, 500_000) == pytest.approx(0.0365822, rel=1e-5)


def test_ks_weighted_matches_exact_statistic() -> None:
    a, b = np.sort(np.array(A2)), np.sort(np.array(B2))
    d, p = ms.ks_weighted(a, np.ones(len(a)), b, np.ones(len(b)), len(a), len(b))
    assert d == pytest.approx(0.33)
    assert p == pytest.approx(stats.kstwo.sf(0.33, round(25 * 20 / 45)))


def test_chisquare_vectors() -> None:
    chi2, p = ms.chisquare_gof([50, 30, 20], [40, 30, 30])
    assert chi2 == pytest.approx(7.0) and p == pytest.approx(0.0301973834, rel=1e-9)
    chi2, p = ms.chisquare_gof([500, 300, 200], [450, 300, 250])
    assert chi2 == pytest.approx(17.5) and p == pytest.approx(1.58461e-4, rel=1e-5)
    assert ms.chisquare_gof([50, 50, 0], [40, 40, 20]) == (math.inf, 0.0)


def test_z_vectors() -> None:
    z, p = ms.z_test_proportions(30, 100, 45, 100)
    assert z == pytest.approx(-2.19089023, rel=1e-8) and p == pytest.approx(0.0284597369, rel=1e-8)
    z, p = ms.z_test_proportions(300, 1000, 330, 1000)
    assert z == pytest.approx(-1.44412802, rel=1e-8) and p == pytest.approx(0.1487029679, rel=1e-8)
    assert ms.z_test_proportions(0, 10, 0, 20) == (0.0, 1.0)


def test_psi_js_wasserstein_vectors() -> None:
    assert ms.psi(P, Q) == pytest.approx(0.2282174096, rel=1e-9)
    assert ms.psi(
        [0.1] * 10, [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15]
    ) == pytest.approx(0.1098612289, rel=1e-9)
    assert ms.psi([0.5, 0.5, 0], [0.4, 0.4, 0.2]) == pytest.approx(1.5640491119, rel=1e-9)
    assert ms.jensen_shannon(P, Q) == pytest.approx(0.1669299657, rel=1e-9)
    assert ms.jensen_shannon(P, Q, base=2) == pytest.approx(0.2005033225, rel=1e-9)
    assert ms.jensen_shannon([1, 0], [0, 1]) == pytest.approx(0.8325546112, rel=1e-9)
    ref = np.arange(5.0)
    assert ms.wasserstein_normed(ref, ref + 1) == pytest.approx(0.7071067812, rel=1e-9)
    n = 10_000
    grid = stats.norm.ppf((np.arange(n) + 0.5) / n)
    assert ms.wasserstein_normed(grid, grid + 0.1) == pytest.approx(0.1000066, rel=1e-6)


def test_evidently_binning_pipeline() -> None:
    p, q = ms.binned_shares(np.arange(0, 100), np.arange(50, 150))
    assert len(p) == 9
    assert ms.psi(p, q) == pytest.approx(7.4145327459, rel=1e-9)
    assert ms.jensen_shannon(p, q) == pytest.approx(0.5887050113, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_stats_agree_with_scipy(a: list[float], b: list[float]) -> None:
    ref, cur = np.array(a), np.array(b)
    res = stats.ks_2samp(ref, cur)
    assert ms.ks_2samp(ref, cur) == (res.statistic, res.pvalue)
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert ms.wasserstein_normed(ref, cur) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert ms.wasserstein_normed(ref, cur, reference_std=float(np.std(ref))) == pytest.approx(
        expected
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 500), min_size=2, max_size=12).flatmap(
        lambda r: st.tuples(
            st.just(r), st.lists(st.integers(0, 500), min_size=len(r), max_size=len(r))
        )
    )
)
def test_chisquare_agrees_with_scipy(counts: tuple[list[int], list[int]]) -> None:
    ref, cur = np.array(counts[0], dtype=float), np.array(counts[1], dtype=float)
    if cur.sum() == 0:
        return
    expected = stats.chisquare(cur, ref * cur.sum() / ref.sum())
    chi2, p = ms.chisquare_gof(ref, cur)
    assert chi2 == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-7, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=20).filter(
        lambda v: sum(v) > 0
    ),
    st.sampled_from([None, 2.0, 10.0]),
)
def test_js_agrees_with_scipy(p: list[float], base: float | None) -> None:
    q = list(reversed(p))
    expected = spatial.distance.jensenshannon(p, q, base=base)
    assert ms.jensen_shannon(p, q, base) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.booleans(),
)
def test_sturges_edges_match_numpy(values: list[float], integral: bool) -> None:
    data = np.array(values)
    if integral:
        data = np.round(data).astype(np.int64)
    expected = np.histogram_bin_edges(data, bins="sturges")
    got = ms.sturges_edges(float(data.min()), float(data.max()), len(data), integral=integral)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


def test_z_agrees_with_formula() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        n1, n2 = rng.integers(5, 500, size=2)
        x1, x2 = rng.integers(1, n1), rng.integers(1, n2)
        pooled = (x1 + x2) / (n1 + n2)
        z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        got = ms.z_test_proportions(x1, int(n1), x2, int(n2))
        assert got.statistic == pytest.approx(z) and got.p_value == pytest.approx(
            2 * stats.norm.sf(abs(z))
        )

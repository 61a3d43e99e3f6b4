"""Drift from profiles: default selection, agreement with SciPy, overrides, verdicts."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlkernel.errors import ConfigError
from mlkernel.monitor import stats as ms
from mlkernel.monitor.drift import DriftOptions, compute_drift, default_method
from mlkernel.monitor.profile import ProfileOptions, build_profile


@pytest.mark.parametrize(
    ("rows", "kind", "n_unique", "expected"),
    [
        (1000, "numerical", 6, "ks"),
        (1000, "numerical", 5, "chisquare"),
        (1000, "numerical", 2, "z"),
        (1001, "numerical", 5, "jensenshannon"),
        (1001, "numerical", 6, "wasserstein"),
        (1001, "categorical", 2, "jensenshannon"),
        (1000, "categorical", 3, "chisquare"),
        (1000, "datetime", 30, None),
    ],
)
def test_default_selection_matches_reference(
    rows: int, kind: str, n_unique: int, expected: str | None
) -> None:
    assert default_method(kind, rows, n_unique) == expected


def _drift(ref: dict[str, object], cur: dict[str, object], **opts: object):  # type: ignore[no-untyped-def]
    return compute_drift(pa.table(ref), pa.table(cur), DriftOptions(**opts))  # type: ignore[arg-type]


small = st.lists(st.floats(-100, 100, allow_nan=False), min_size=3, max_size=80)


@settings(max_examples=40, deadline=None)
@given(small, small)
def test_small_numeric_is_exact_scipy(a: list[float], b: list[float]) -> None:
    res = _drift({"x": a}, {"x": b}, columns={"x": {"method": "ks"}})["x"]
    expected = stats.ks_2samp(a, b)
    assert res.exact and res.method == "ks"
    assert res.statistic == expected.statistic and res.p_value == expected.pvalue
    w = _drift({"x": a}, {"x": b}, columns={"x": {"method": "wasserstein"}})["x"]
    assert w.score == pytest.approx(ms.wasserstein_normed(a, b), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=200),
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=200),
)
def test_small_categorical_is_exact(a: list[str], b: list[str]) -> None:
    keys = sorted(set(a) | set(b))
    ref = np.array([a.count(k) for k in keys], dtype=float)
    cur = np.array([b.count(k) for k in keys], dtype=float)
    chi = _drift({"c": a}, {"c": b}, columns={"c": {"method": "chisquare"}})["c"]
    assert (chi.statistic, chi.p_value) == pytest.approx(tuple(ms.chisquare_gof(ref, cur)))
    z = _drift({"c": a}, {"c": b}, columns={"c": {"method": "z"}})["c"]
    zs, zp = ms.z_test_proportions(len(a) - ref[0], len(a), len(b) - cur[0], len(b))
    assert z.p_value == pytest.approx(zp) and z.statistic == pytest.approx(zs)
    js = _drift({"c": a}, {"c": b}, columns={"c": {"method": "jensenshannon"}})["c"]
    assert js.score == pytest.approx(ms.jensen_shannon(ref / len(a), cur / len(b)), abs=1e-12)
    psi = _drift({"c": a}, {"c": b}, columns={"c": {"method": "psi"}})["c"]
    assert psi.score == pytest.approx(ms.psi(ref / len(a), cur / len(b)), rel=1e-9, abs=1e-12)


def test_reference_vectors_through_profiles() -> None:
    res = _drift(
        {"x": np.arange(0.0, 100)}, {"x": np.arange(50.0, 150)}, columns={"x": {"method": "psi"}}
    )["x"]
    assert res.score == pytest.approx(7.4145327459, rel=1e-9)
    res = _drift(
        {"x": np.arange(0.0, 100)},
        {"x": np.arange(50.0, 150)},
        columns={"x": {"method": "jensenshannon"}},
    )
    assert res["x"].score == pytest.approx(0.5887050113, rel=1e-9)
    assert res["x"].details["log"] == "natural log"
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 40 + ["b"] * 30 + ["c"] * 30
    chi = _drift({"c": ref}, {"c": cur})["c"]
    assert chi.method == "chisquare" and chi.p_value == pytest.approx(0.0301973834, rel=1e-9)
    assert "goodness of fit" in chi.details["variant"]
    z = _drift({"c": ["x"] * 70 + ["y"] * 30}, {"c": ["x"] * 55 + ["y"] * 45})["c"]
    assert z.method == "z" and z.p_value == pytest.approx(0.0284597369, rel=1e-8)


def test_large_numeric_from_sketches() -> None:
    n = 10_000
    grid = stats.norm.ppf((np.arange(n) + 0.5) / n)
    exact = compute_drift(
        build_profile(pa.table({"x": grid}), ProfileOptions(kll_k=16_384)),
        build_profile(pa.table({"x": grid + 0.1}), ProfileOptions(kll_k=16_384)),
    )["x"]
    assert exact.method == "wasserstein" and exact.exact
    assert exact.score == pytest.approx(0.1000066, rel=1e-6) and exact.drift_detected
    approx = _drift({"x": grid}, {"x": grid + 0.1})["x"]
    assert not approx.exact and approx.score == pytest.approx(0.1, abs=0.005)
    ks = _drift({"x": grid}, {"x": grid + 0.05}, columns={"x": {"method": "ks"}})["x"]
    assert ks.statistic == pytest.approx(0.02, abs=0.006)
    js = _drift({"x": grid}, {"x": grid + 0.5}, columns={"x": {"method": "jensenshannon"}})["x"]
    p, q = ms.binned_shares(grid, grid + 0.5)
    assert js.score == pytest.approx(ms.jensen_shannon(p, q), abs=0.01)


def test_overrides_verdict_and_json() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    ref = {f"x{i}": rng.normal(size=n) for i in range(4)}
    cur = {f"x{i}": rng.normal(size=n) + (1.0 if i < 2 else 0) for i in range(4)}
    ref["c"] = rng.choice(["a", "b"], n)
    cur["c"] = rng.choice(["a", "b"], n)
    result = _drift(ref, cur)
    assert [c.column for c in result.drifted] == ["x0", "x1"]
    assert result.share_drifted == 0.4 and not result.dataset_drift
    assert _drift(ref, cur, drift_share=0.4).dataset_drift
    custom = _drift(
        ref,
        cur,
        columns={
            "x0": {"threshold": 5.0},
            "x2": {"method": "psi", "threshold": 0.0},
            "c": {"skip": True},
        },
    )
    assert not custom["x0"].drift_detected and custom["x0"].threshold == 5.0
    assert custom["x2"].method == "psi" and custom["x2"].drift_detected
    assert custom["c"].skipped and len(custom.tested) == 4
    js2 = _drift(ref, cur, js_base=2.0)["c"]
    assert js2.method_label.endswith("(log base 2)")
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["drifted_columns"] == ["x0", "x1"] and doc["columns"][0]["method"] == "wasserstein"


def test_corrections() -> None:
    rng = np.random.default_rng(4)
    cols = {f"x{i}": rng.normal(size=200) for i in range(10)}
    shifted = {k: v + (0.25 if k == "x0" else 0.0) for k, v in cols.items()}
    other = {k: rng.normal(size=200) for k in cols}
    plain = compute_drift(
        pa.table(cols), pa.table({k: other[k] + shifted[k] - cols[k] for k in cols})
    )
    p = np.array([c.p_value for c in plain.columns])
    bonf = compute_drift(
        pa.table(cols),
        pa.table({k: other[k] + shifted[k] - cols[k] for k in cols}),
        DriftOptions(correction="bonferroni"),
    )
    np.testing.assert_allclose([c.adjusted_p_value for c in bonf.columns], np.minimum(p * 10, 1))
    assert [c.drift_detected for c in bonf.columns] == [
        bool(v <= 0.05) for v in np.minimum(p * 10, 1)
    ]
    bh = compute_drift(
        pa.table(cols),
        pa.table({k: other[k] + shifted[k] - cols[k] for k in cols}),
        DriftOptions(correction="bh"),
    )
    np.testing.assert_allclose(
        [c.adjusted_p_value for c in bh.columns], stats.false_discovery_control(p)
    )


def test_schema_changes_and_errors() -> None:
    result = _drift(
        {"a": [1.0, 2.0], "b": ["x", "y"], "gone": [1, 2]},
        {"a": [None, None], "b": [1.0, 2.0], "new": [1, 2]},
    )
    assert result.missing_columns == ["gone"] and result.new_columns == ["new"]
    assert "no values" in (result["a"].skipped or "")
    # A changed type is not tested (no test compares text with numbers) but is drift.
    assert result["b"].skipped is None and result["b"].drift_detected
    assert result["b"].details["type_changed"] == "categorical (string) -> numerical (double)"
    assert result.tested == [result["b"]] and result.dataset_drift
    with pytest.raises(ConfigError, match="unknown drift method"):
        DriftOptions(columns={"a": {"method": "magic"}})
    with pytest.raises(ConfigError, match="unknown column"):
        _drift({"a": [1.0]}, {"a": [1.0]}, columns={"zz": {"threshold": 0.2}})
    with pytest.raises(ConfigError, match="unknown drift option"):
        DriftOptions.from_mapping({"share": 0.3})
    with pytest.raises(ConfigError, match="needs a numeric column"):
        _drift({"c": ["a", "b"]}, {"c": ["a", "b"]}, columns={"c": {"method": "ks"}})
    opts = DriftOptions.from_mapping(
        {"drift_share": 0.3, "columns": {"a": {"method": "psi", "threshold": 0.2}}}
    )
    assert opts.spec("a").method == "psi" and opts.spec("zz").method is None

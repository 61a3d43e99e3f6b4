"""Profiles: exact parts, sketch parts, merge == profile of the union, JSON round trip."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlkernel.errors import UsageError
from mlkernel.monitor.profile import DatasetProfile, ProfileOptions, build_profile

SRC = str(Path(__file__).resolve().parents[2] / "src")

values = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
)
words = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "déjà", ""]), st.text(max_size=4))


def _table(nums: list[float | None], cats: list[str | None]) -> pa.Table:
    n = min(len(nums), len(cats))
    return pa.table(
        {
            "x": pa.array(nums[:n], type=pa.float64()),
            "c": pa.array(cats[:n], type=pa.string()),
            "i": pa.array(
                [None if v is None or not math.isfinite(v) else int(v) for v in nums[:n]],
                type=pa.int64(),
            ),
        }
    )


def test_moments_vector_from_reference() -> None:
    opts = ProfileOptions(threads=1)
    a = build_profile(pa.table({"x": [1.0, 2.0, 3.0, 4.0]}), opts)
    b = build_profile(pa.table({"x": [10.0, 20.0]}), opts)
    assert a["x"].m2 == pytest.approx(5.0)  # not the biased 3.75
    col = a.merge(b)["x"]
    assert col.mean == pytest.approx(6.6666667)
    assert col.m2 == pytest.approx(263.3333333)
    assert col.variance == pytest.approx(52.6666667)
    assert col.std == pytest.approx(7.2571803524)


def test_counts_and_summary() -> None:
    table = pa.table(
        {
            "x": pa.array([1.0, None, float("nan"), float("inf"), -float("inf"), 2.0, 100.0]),
            "c": pa.array(["a", "b", None, "a", "a", "c", "b"]),
            "b": pa.array([True, False, True, None, True, True, False]),
            "t": pa.array(np.arange(7).astype("datetime64[s]")),
        }
    )
    prof = build_profile(table)
    x = prof["x"]
    assert (x.count, x.nulls, x.nan, x.pos_inf, x.neg_inf, x.n) == (7, 1, 1, 1, 1, 3)
    assert (x.min, x.max) == (1.0, 100.0)
    assert x.percentiles()["p50"] == 2.0
    c = prof["c"]
    assert c.kind == "categorical" and c.top(2) == [("a", 3), ("b", 2)] and c.distinct_count == 3
    assert prof["b"].top(2) == [("true", 4), ("false", 2)]
    assert prof["t"].kind == "datetime" and prof["t"].max == 6
    summary = prof.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["columns"]["x"]["quantiles_exact"] is True
    with pytest.raises(UsageError, match="no column 'nope'"):
        prof["nope"]


def test_outliers_exact_when_small() -> None:
    data = np.concatenate([np.linspace(-1, 1, 200), [8.0, -9.0]])
    out = build_profile(pa.table({"x": data}))["x"].outliers()
    assert out is not None and out.exact
    q1, q3 = np.quantile(data, [0.25, 0.75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    assert out.iqr_count == np.sum((data < lo) | (data > hi)) == 2
    z = (data - data.mean()) / data.std()
    assert out.z_count == np.sum(np.abs(z) > 3)
    assert sorted(out.iqr_examples) == [-9.0, 8.0]


def test_outliers_estimated_when_large() -> None:
    data = np.random.default_rng(2).standard_t(5, size=200_000)
    out = build_profile(pa.table({"x": data}))["x"].outliers()
    assert out is not None and not out.exact
    q1, q3 = np.quantile(data, [0.25, 0.75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    true = np.sum((data < lo) | (data > hi))
    assert abs(out.iqr_count - true) < 0.005 * len(data)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(values, max_size=150), st.lists(values, max_size=150), st.lists(words, max_size=150)
)
def test_merge_equals_profile_of_union(
    a: list[float | None], b: list[float | None], cats: list[str | None]
) -> None:
    opts = ProfileOptions(kll_k=64, top_capacity=16, threads=1)
    ta = _table(a, cats)
    tb = _table(b, cats[::-1])
    whole = build_profile(pa.concat_tables([ta, tb]), opts)
    merged = build_profile(ta, opts).merge(build_profile(tb, opts))
    assert merged.n_rows == whole.n_rows
    for name in ("x", "i", "c"):
        m, w = merged[name], whole[name]
        assert (m.count, m.nulls, m.nan, m.pos_inf, m.neg_inf, m.n) == (
            w.count,
            w.nulls,
            w.nan,
            w.pos_inf,
            w.neg_inf,
            w.n,
        )
        assert m.mean == pytest.approx(w.mean, rel=1e-9, abs=1e-6)
        assert m.m2 == pytest.approx(w.m2, rel=1e-8, abs=1e-3)
        assert (m.min, m.max) == (w.min, w.max)
        assert m.smallest == w.smallest and m.largest == w.largest
        if m.frequent.is_exact and w.frequent.is_exact:
            assert m.frequent.counts == w.frequent.counts
        assert abs(m.distinct_count - w.distinct_count) <= max(0.05 * w.distinct_count, 1)
        if m.sketch is not None and w.sketch is not None and w.n:
            data = np.sort(
                np.array(
                    [
                        v
                        for v in a[: len(ta)] + b[: len(tb)]
                        if v is not None and abs(v) < float("inf")
                    ]
                )
            )
            if name == "x" and len(data):
                est = m.sketch.quantiles([0.1, 0.5, 0.9])
                lo = np.searchsorted(data, est, side="left") / len(data)
                hi = np.searchsorted(data, est, side="right") / len(data)
                slack = 0.15 + 1 / len(data)
                assert np.all((lo - slack <= [0.1, 0.5, 0.9]) & (hi + slack >= [0.1, 0.5, 0.9]))


def test_merge_of_many_chunks_large() -> None:
    rng = np.random.default_rng(9)
    data = rng.gamma(2.0, size=300_000)
    table = pa.table({"x": data, "c": pa.array(rng.choice(list("abcdefg"), size=len(data)))})
    whole = build_profile(table)
    parts = [build_profile(table.slice(i, 37_500)) for i in range(0, len(data), 37_500)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    qs = np.array([0.01, 0.25, 0.5, 0.75, 0.99])
    ordered = np.sort(data)
    for prof in (whole, merged):
        ranks = np.searchsorted(ordered, prof["x"].sketch.quantiles(qs)) / len(data)  # type: ignore[union-attr]
        assert np.max(np.abs(ranks - qs)) < 0.01
        assert prof["x"].std == pytest.approx(np.std(data, ddof=1), rel=1e-10)
        assert prof["c"].frequent.counts == whole["c"].frequent.counts
        assert abs(prof["x"].distinct_count - len(data)) < 0.05 * len(data)


def test_sources_and_round_trip() -> None:
    table = pa.table({"x": np.arange(5000.0), "c": pa.array(["u", "v"] * 2500).dictionary_encode()})
    from_table = build_profile(table, ProfileOptions(batch_rows=700))
    from_batches = build_profile(iter(table.to_batches(max_chunksize=1000)))
    from_reader = build_profile(
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=999))
    )
    for prof in (from_batches, from_reader):
        assert prof.n_rows == from_table.n_rows == 5000
        assert prof["x"].mean == pytest.approx(from_table["x"].mean)
        assert prof["c"].top(2) == from_table["c"].top(2) == [("u", 2500), ("v", 2500)]
    text = from_table.to_json()
    again = DatasetProfile.from_json(text)
    assert again.to_json() == text
    assert again["x"].percentiles() == from_table["x"].percentiles()
    with pytest.raises(UsageError):
        DatasetProfile.from_dict({"format": "other"})
    with pytest.raises(UsageError):
        build_profile([1, 2, 3])
    with pytest.raises(UsageError):
        build_profile(42)
    with pytest.raises(UsageError, match="different columns"):
        from_table.merge(build_profile(pa.table({"y": [1.0]})))


def test_import_is_lazy() -> None:
    code = (
        "import sys, mlkernel.monitor as m; "
        "heavy = [x for x in ('numpy', 'scipy', 'pyarrow') if x in sys.modules]; "
        "assert not heavy, heavy; assert callable(m.build_profile); print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr

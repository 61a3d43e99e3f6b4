"""The sketches: exactness below their size, error bounds above it, merge, round trip."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlkernel.errors import UsageError
from mlkernel.monitor._hashing import hash_floats, hash_strings
from mlkernel.monitor.sketch import FrequentItems, HyperLogLog, KLLSketch

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _rank_error(sketch: KLLSketch, data: np.ndarray) -> float:
    qs = np.linspace(0.01, 0.99, 99)
    est = sketch.quantiles(qs)
    ordered = np.sort(data)
    lo = np.searchsorted(ordered, est, side="left") / len(ordered)
    hi = np.searchsorted(ordered, est, side="right") / len(ordered)
    # the estimate is right if q lies within its rank interval, give or take one value
    slack = 1 / len(ordered)
    return float(np.max(np.maximum(lo - qs - slack, qs - hi - slack).clip(min=0)))


@given(st.lists(finite, min_size=1, max_size=300))
def test_kll_is_exact_while_small(values: list[float]) -> None:
    sketch = KLLSketch(k=512)
    sketch.update(np.array(values))
    data = np.array(values)
    assert sketch.is_exact
    qs = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]
    np.testing.assert_allclose(sketch.quantiles(qs), np.quantile(data, qs))
    edges = np.linspace(data.min() - 1, data.max() + 1, 7)
    np.testing.assert_array_equal(sketch.histogram(edges), np.histogram(data, edges)[0])


@pytest.mark.parametrize("chunks", [1, 7, 100])
def test_kll_rank_error_large(chunks: int) -> None:
    data = np.random.default_rng(3).lognormal(size=200_000)
    sketch = KLLSketch(k=256)
    for part in np.array_split(data, chunks):
        sketch.update(part)
    assert sketch.n == len(data)
    assert sketch.retained < 4 * 256
    assert _rank_error(sketch, data) < 0.02
    assert sketch.min == data.min() and sketch.max == data.max()
    assert sketch.rank(np.inf)[()] == len(data)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(finite, min_size=0, max_size=3000),
    st.lists(finite, min_size=1, max_size=3000),
)
def test_kll_merge_matches_union(a: list[float], b: list[float]) -> None:
    sa, sb = KLLSketch(k=128), KLLSketch(k=128)
    sa.update(np.array(a))
    sb.update(np.array(b))
    merged = sa.merge(sb)
    data = np.array(a + b)
    assert merged.n == len(data)
    assert merged.min == data.min() and merged.max == data.max()
    assert merged.weighted()[1].sum() == len(data)  # compaction keeps weight exact
    assert _rank_error(merged, data) < 0.05


def test_kll_round_trip_and_errors() -> None:
    sketch = KLLSketch(k=64)
    sketch.update(np.arange(10_000, dtype=float))
    again = KLLSketch.from_dict(sketch.to_dict())
    np.testing.assert_array_equal(again.quantiles([0.1, 0.5]), sketch.quantiles([0.1, 0.5]))
    with pytest.raises(UsageError):
        sketch.merge(KLLSketch(k=128))
    with pytest.raises(UsageError):
        KLLSketch(k=2)
    assert np.isnan(KLLSketch().quantiles([0.5])).all()


def test_kll_is_deterministic() -> None:
    data = np.random.default_rng(0).normal(size=50_000)
    one, two = KLLSketch(k=64), KLLSketch(k=64)
    for part in np.array_split(data, 9):
        one.update(part)
        two.update(part)
    assert one.to_dict() == two.to_dict()


@pytest.mark.parametrize("n", [0, 1, 10, 1000, 30_000, 300_000])
def test_hll_estimate(n: int) -> None:
    sketch = HyperLogLog(12)
    sketch.update(hash_floats(np.arange(n, dtype=float) * 1.5))
    tolerance = max(0.05 * n, 1.0)
    assert abs(sketch.estimate() - n) <= tolerance


def test_hll_merge_is_union_and_round_trips() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    a.update(hash_floats(np.arange(0, 20_000, dtype=float)))
    b.update(hash_floats(np.arange(10_000, 30_000, dtype=float)))
    assert abs(a.merge(b).estimate() - 30_000) < 0.05 * 30_000
    assert HyperLogLog.from_dict(a.to_dict()).estimate() == a.estimate()
    with pytest.raises(UsageError):
        a.merge(HyperLogLog(14))


def test_hashes_are_stable() -> None:
    # Stored profiles merge across processes and versions: pin the hash values.
    assert hash_floats(np.array([1.0, -0.0, 0.0])).tolist() == [
        int(hash_floats(np.array([1.0]))[0]),
        int(hash_floats(np.array([0.0]))[0]),
        int(hash_floats(np.array([0.0]))[0]),
    ]
    arr = pa.array(["x", "", "abc", "x", "abc"]).cast(pa.large_string())
    sliced = arr.slice(2)
    full = _string_hashes(arr)
    assert full[0] == full[3] and full[2] == full[4] and len(set(full.tolist())) == 3
    np.testing.assert_array_equal(_string_hashes(sliced), full[2:])


def _string_hashes(arr: pa.Array) -> np.ndarray:
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return hash_strings(offsets, np.frombuffer(bufs[2], dtype=np.uint8))


@given(st.lists(st.integers(0, 40), max_size=400), st.lists(st.integers(0, 40), max_size=400))
def test_frequent_items_bounds(a: list[int], b: list[int]) -> None:
    def build(values: list[int]) -> FrequentItems[float]:
        sketch: FrequentItems[float] = FrequentItems(capacity=8)
        keys, counts = np.unique(np.array(values, dtype=float), return_counts=True)
        sketch.update_counts(keys.tolist(), counts.astype(np.int64))
        return sketch

    merged = build(a).merge(build(b))
    truth: dict[float, int] = {}
    for v in a + b:
        truth[float(v)] = truth.get(float(v), 0) + 1
    assert merged.n == len(a) + len(b)
    assert len(merged.counts) <= 8
    for key, true_count in truth.items():
        estimate = merged.counts.get(key, 0)
        assert true_count - merged.max_error <= estimate <= true_count
    if len(truth) <= 8:
        assert merged.is_exact and merged.counts == truth

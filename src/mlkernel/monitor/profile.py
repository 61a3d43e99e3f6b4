"""Mergeable dataset profiles, built batch by batch in bounded memory.

``build_profile(data)`` reads a ``pyarrow.Table``, a ``RecordBatch``, a ``RecordBatchReader`` or
any iterable of record batches, one batch at a time, and keeps per column only fixed-size
state (see :class:`ColumnProfile`), so memory depends on the number of columns and the
batch size, not on the number of rows. Two profiles of the same schema merge into the
profile of the concatenated data (exactly for counts, moments, min/max and the tail
examples; within sketch error for quantiles, distinct counts and frequent items).

Column kinds
    ``numerical``    integers, floats, decimals (profiled as float64)
    ``categorical``  strings, dictionaries, booleans (``"false"``/``"true"``)
    ``datetime``     timestamps, dates, times, durations (profiled as their integer value;
                     the summary adds them as dates, timestamps... under ``readable``)
    ``other``        anything else: only counts and nulls

Moments
    Each batch contributes ``(n, mean, M2)`` with ``M2 = sum((x - mean)**2)`` (two-pass
    inside the batch, so no ``var() * (n - 1)`` bias), merged with Chan, Golub & LeVeque's
    parallel formula: ``delta = mean_b - mean_a``, ``M2 = M2_a + M2_b + delta**2 n_a n_b / n``.

Outliers
    The IQR fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR) and the z fences (mean +- 3 std) are only
    known once all data are seen, so a one-pass profile cannot count values outside them
    exactly. The counts are read from the quantile sketch: ``rank(below lower fence) +
    n - rank(up to upper fence)``. They are exact while the sketch is exact (n <= k) and
    otherwise carry the sketch's rank error, about ``1.7/k * n`` (0.17 % of n at k=1024).
    The examples are exact: the profile keeps the few smallest and largest values
    (mergeable) and reports those beyond the fences.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from mlkernel.errors import UsageError
from mlkernel.monitor._hashing import hash_floats, hash_strings
from mlkernel.monitor.sketch import FrequentItems, HyperLogLog, KLLSketch

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PERCENTILES",
    "ColumnProfile",
    "DatasetProfile",
    "OutlierSummary",
    "ProfileOptions",
    "build_profile",
]

FORMAT_VERSION = 1
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
ColumnKind = Literal["numerical", "categorical", "datetime", "other"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProfileOptions:
    """Sizes of the sketches and of the batches read.

    ``kll_k``: quantile-sketch size (rank error about 1.7/k; exact up to k values).
    ``hll_p``: distinct-count precision (2**p registers, error 1.04/sqrt(2**p)).
    ``top_capacity``: Misra-Gries counters per column (categories are complete below it).
    ``tail_examples``: smallest and largest values kept per numeric column.
    ``batch_rows``: rows per batch when splitting a table.
    ``threads``: columns profiled in parallel (None: the CPU count, at most 8).
    """

    kll_k: int = 1024
    hll_p: int = 12
    top_capacity: int = 1024
    tail_examples: int = 10
    batch_rows: int = 1 << 20
    threads: int | None = None

    def sketch_config(self) -> dict[str, int]:
        return {
            "kll_k": self.kll_k,
            "hll_p": self.hll_p,
            "top_capacity": self.top_capacity,
            "tail_examples": self.tail_examples,
        }


@dataclass(frozen=True)
class OutlierSummary:
    """Values outside the IQR fences and outside mean +- 3 std."""

    iqr_low: float
    iqr_high: float
    iqr_count: float
    z_low: float
    z_high: float
    z_count: float
    exact: bool
    iqr_examples: list[float]
    z_examples: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "iqr": {
                "low": self.iqr_low,
                "high": self.iqr_high,
                "count": self.iqr_count,
                "examples": self.iqr_examples,
            },
            "zscore": {
                "low": self.z_low,
                "high": self.z_high,
                "count": self.z_count,
                "examples": self.z_examples,
            },
            "exact": self.exact,
            "method": "counts from the quantile sketch's ranks (exact while the sketch is exact); "
            "examples from the exact tails",
        }


def _kind_of(arrow_type: pa.DataType) -> ColumnKind:
    import pyarrow as pa

    t = pa.types
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "numerical"
    if t.is_dictionary(arrow_type):
        return _kind_of(arrow_type.value_type)
    if (
        t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or t.is_boolean(arrow_type)
        or getattr(t, "is_string_view", lambda _: False)(arrow_type)
    ):
        return "categorical"
    if t.is_temporal(arrow_type):
        return "datetime"
    return "other"


@dataclass
class ColumnProfile:
    """The mergeable state of one column; the summary statistics are read from it."""

    name: str
    kind: ColumnKind
    dtype: str
    integral: bool = False
    count: int = 0
    nulls: int = 0
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0
    mean: float = 0.0
    m2: float = 0.0
    sketch: KLLSketch | None = None
    distinct: HyperLogLog = field(default_factory=HyperLogLog)
    frequent: FrequentItems[Any] = field(default_factory=FrequentItems)
    smallest: list[float] = field(default_factory=list)
    largest: list[float] = field(default_factory=list)
    tail_examples: int = 10

    @classmethod
    def empty(cls, name: str, arrow_type: pa.DataType, options: ProfileOptions) -> ColumnProfile:
        import pyarrow as pa

        kind = _kind_of(arrow_type)
        value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
        return cls(
            name=name,
            kind=kind,
            dtype=str(arrow_type),
            integral=bool(pa.types.is_integer(value_type) or pa.types.is_temporal(value_type)),
            sketch=KLLSketch(options.kll_k) if kind in ("numerical", "datetime") else None,
            distinct=HyperLogLog(options.hll_p),
            frequent=FrequentItems(options.top_capacity),
            tail_examples=options.tail_examples,
        )

    # -- updating ---------------------------------------------------------------------
    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch of this column."""
        self.count += len(column)
        self.nulls += column.null_count
        if self.kind in ("numerical", "datetime"):
            self._update_numeric(column)
        elif self.kind == "categorical":
            self._update_categorical(column)

    def _update_numeric(self, column: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        valid = pc.drop_null(column)
        if isinstance(valid, pa.ChunkedArray):
            valid = valid.combine_chunks()
        if pa.types.is_dictionary(valid.type):
            valid = valid.dictionary_decode()
        if pa.types.is_temporal(valid.type):
            width = valid.type.bit_width  # date32 and time32 do not cast to int64 directly
            valid = valid.view(pa.int64()) if width == 64 else valid.view(pa.int32())
        if pa.types.is_decimal(valid.type):
            valid = valid.cast(pa.float64())
        values = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=np.float64)
        finite_mask = np.isfinite(values)
        if not finite_mask.all():
            bad = values[~finite_mask]
            self.nan += int(np.isnan(bad).sum())
            self.pos_inf += int((bad == np.inf).sum())
            self.neg_inf += int((bad == -np.inf).sum())
            values = values[finite_mask]
        if len(values) == 0:
            return
        ordered = np.sort(values)
        self._add_moments(len(ordered), ordered)  # before the sketch update: uses the old n
        assert self.sketch is not None
        self.sketch.update_sorted(ordered)
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        uniques = ordered[starts]
        counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
        self.distinct.update(hash_floats(uniques))
        keep, cut = self.frequent.batch_cut(counts)
        if keep is None:
            self.frequent.update_counts(uniques.tolist(), counts)
        else:
            self.frequent.update_counts(
                uniques[keep].tolist(), counts[keep] - cut, total=len(ordered), error=cut
            )
        t = self.tail_examples
        self.smallest = sorted([*self.smallest, *ordered[:t].tolist()])[:t]
        self.largest = sorted([*self.largest, *ordered[-t:].tolist()])[-t:]

    def _add_moments(self, n_b: int, values: FloatArray) -> None:
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        self.mean, self.m2 = _chan(self.n, self.mean, self.m2, n_b, mean_b, m2_b)

    def _update_categorical(self, column: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if not (pa.types.is_large_string(column.type)):
            column = column.cast(pa.large_string())
        counted = pc.value_counts(column)
        values = counted.field("values")
        counts = np.asarray(counted.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
        if values.null_count:
            keep = values.is_valid()
            values = values.filter(keep)
            counts = counts[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        if len(values) == 0:
            return
        buffers = values.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[
            values.offset : values.offset + len(values) + 1
        ]
        data = (
            np.frombuffer(buffers[2], dtype=np.uint8)
            if buffers[2] is not None
            else np.empty(0, dtype=np.uint8)
        )
        self.distinct.update(hash_strings(offsets, data))
        keep, cut = self.frequent.batch_cut(counts)
        if keep is None:
            self.frequent.update_counts(values.to_pylist(), counts)
        else:
            self.frequent.update_counts(
                values.take(keep).to_pylist(),
                counts[keep] - cut,
                total=int(counts.sum()),
                error=cut,
            )

    # -- merging ------------------------------------------------------------------------
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if (self.name, self.kind) != (other.name, other.kind):
            raise UsageError(
                f"cannot merge column '{self.name}' ({self.kind}) with "
                f"'{other.name}' ({other.kind}); profile both with the same schema"
            )
        mean, m2 = _chan(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        t = max(self.tail_examples, other.tail_examples)
        sketch = None
        if self.sketch is not None and other.sketch is not None:
            sketch = self.sketch.merge(other.sketch)
        return ColumnProfile(
            name=self.name,
            kind=self.kind,
            dtype=self.dtype if self.dtype == other.dtype else f"{self.dtype}|{other.dtype}",
            integral=self.integral and other.integral,
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            nan=self.nan + other.nan,
            pos_inf=self.pos_inf + other.pos_inf,
            neg_inf=self.neg_inf + other.neg_inf,
            mean=mean,
            m2=m2,
            sketch=sketch,
            distinct=self.distinct.merge(other.distinct),
            frequent=self.frequent.merge(other.frequent),
            smallest=sorted([*self.smallest, *other.smallest])[:t],
            largest=sorted([*self.largest, *other.largest])[-t:] if t else [],
            tail_examples=t,
        )

    # -- reading ------------------------------------------------------------------------
    @property
    def is_numeric(self) -> bool:
        return self.sketch is not None

    @property
    def n(self) -> int:
        """Finite, non-null values (numeric) or non-null values (categorical)."""
        if self.sketch is not None:
            return self.sketch.n
        return self.count - self.nulls

    @property
    def missing(self) -> int:
        """Nulls plus NaN: the values drift tests drop (with +-inf)."""
        return self.nulls + self.nan

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); NaN below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    @property
    def std(self) -> float:
        return math.sqrt(self.variance) if self.n > 1 else math.nan

    @property
    def std_population(self) -> float:
        """Population std (ddof=0), as ``numpy.std`` and Evidently's Wasserstein norm use."""
        return math.sqrt(self.m2 / self.n) if self.n else math.nan

    @property
    def min(self) -> float | None:
        return self.sketch.min if self.sketch is not None and self.sketch.n else None

    @property
    def max(self) -> float | None:
        return self.sketch.max if self.sketch is not None and self.sketch.n else None

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        if self.sketch is None:
            raise UsageError(
                f"column '{self.name}' is {self.kind}; quantiles need a numeric column"
            )
        return [float(v) for v in self.sketch.quantiles(list(qs))]

    def percentiles(self) -> dict[str, float]:
        """p1 .. p99 (``PERCENTILES``) from the quantile sketch."""
        if self.sketch is None or self.sketch.n == 0:
            return {}
        values = self.quantiles(p / 100 for p in PERCENTILES)
        return {f"p{p}": v for p, v in zip(PERCENTILES, values, strict=True)}

    @property
    def distinct_count(self) -> float:
        """Exact while the frequent-items counters are exact, else the HyperLogLog estimate."""
        if self.frequent.is_exact:
            return float(len(self.frequent.counts))
        return self.distinct.estimate()

    def top(self, k: int = 10) -> list[tuple[Any, int]]:
        return self.frequent.top(k)

    def categories(self) -> tuple[set[Any], bool]:
        """The set of values seen and whether it is complete (exact)."""
        return set(self.frequent.counts), self.frequent.is_exact

    def histogram(self, bins: int = 20) -> dict[str, list[float]]:
        """Equal-width histogram over [min, max] read from the quantile sketch."""
        if self.sketch is None or self.sketch.n == 0:
            return {"edges": [], "counts": []}
        lo, hi = self.sketch.min, self.sketch.max
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        return {"edges": edges.tolist(), "counts": self.sketch.histogram(edges).tolist()}

    def outliers(self) -> OutlierSummary | None:
        """IQR and |z| > 3 outliers (counts from the sketch; see module docstring)."""
        sk = self.sketch
        if sk is None or sk.n == 0:
            return None
        q1, q3 = (float(v) for v in sk.quantiles([0.25, 0.75]))
        iqr = q3 - q1
        i_lo, i_hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        std = self.std_population
        z_lo, z_hi = self.mean - 3 * std, self.mean + 3 * std

        def outside(lo: float, hi: float) -> float:
            return float(sk.rank(lo, inclusive=False) + sk.n - sk.rank(hi))

        def examples(lo: float, hi: float) -> list[float]:
            return [v for v in self.smallest if v < lo] + [v for v in self.largest if v > hi]

        return OutlierSummary(
            iqr_low=i_lo,
            iqr_high=i_hi,
            iqr_count=outside(i_lo, i_hi),
            z_low=z_lo,
            z_high=z_hi,
            z_count=outside(z_lo, z_hi),
            exact=sk.is_exact,
            iqr_examples=examples(i_lo, i_hi),
            z_examples=examples(z_lo, z_hi),
        )

    def summary(self) -> dict[str, Any]:
        """The human-facing statistics of this column (JSON-ready)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "nulls": self.nulls,
            "null_share": self.nulls / self.count if self.count else 0.0,
            "distinct_estimate": self.distinct_count,
            "top": [[_json_key(k), c] for k, c in self.top(10)],
            "top_exact": self.frequent.is_exact,
        }
        if self.is_numeric:
            outliers = self.outliers()
            out.update(
                nan=self.nan,
                pos_inf=self.pos_inf,
                neg_inf=self.neg_inf,
                mean=self.mean if self.n else None,
                std=_json_float(self.std),
                min=self.min,
                max=self.max,
                quantiles=self.percentiles(),
                quantiles_exact=bool(self.sketch and self.sketch.is_exact),
                histogram=self.histogram(),
                outliers=outliers.to_dict() if outliers else None,
            )
            if self.kind == "datetime":
                out.update(self.readable(out))
        return out

    def readable(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """A datetime column's statistics as people read them (see :mod:`.temporal`).

        The numbers stay as Arrow stores them (``value_unit`` says what they count);
        ``readable`` has the same statistics as dates, timestamps, times or durations,
        and ``std`` as a span in days or seconds (the unit is in the text).
        """
        from mlkernel.monitor import temporal

        dtype = self.dtype

        def point(value: Any) -> str | None:
            return temporal.point(dtype, value) if isinstance(value, int | float) else None

        return {
            "value_unit": temporal.unit(dtype),
            "readable": {
                "mean": point(summary.get("mean")),
                "std": temporal.span(dtype, summary.get("std")),
                "min": point(summary.get("min")),
                "max": point(summary.get("max")),
                "quantiles": {q: point(v) for q, v in summary.get("quantiles", {}).items()},
                "top": [[point(k), c] for k, c in summary.get("top", [])],
            },
        }

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "integral": self.integral,
            "count": self.count,
            "nulls": self.nulls,
            "nan": self.nan,
            "pos_inf": self.pos_inf,
            "neg_inf": self.neg_inf,
            "mean": self.mean,
            "m2": self.m2,
            "sketch": self.sketch.to_dict() if self.sketch is not None else None,
            "distinct": self.distinct.to_dict(),
            "frequent": self.frequent.to_dict(),
            "smallest": self.smallest,
            "largest": self.largest,
            "tail_examples": self.tail_examples,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            name=str(data["name"]),
            kind=data["kind"],
            dtype=str(data["dtype"]),
            integral=bool(data["integral"]),
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            nan=int(data["nan"]),
            pos_inf=int(data["pos_inf"]),
            neg_inf=int(data["neg_inf"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            sketch=KLLSketch.from_dict(data["sketch"]) if data["sketch"] is not None else None,
            distinct=HyperLogLog.from_dict(data["distinct"]),
            frequent=FrequentItems.from_dict(data["frequent"]),
            smallest=[float(v) for v in data["smallest"]],
            largest=[float(v) for v in data["largest"]],
            tail_examples=int(data["tail_examples"]),
        )


def _chan(
    n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float, m2_b: float
) -> tuple[float, float]:
    """Chan et al.'s merge of (n, mean, M2); returns (mean, M2) of the union."""
    n = n_a + n_b
    if n_b == 0:
        return mean_a, m2_a
    if n_a == 0:
        return mean_b, m2_b
    delta = mean_b - mean_a
    return mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _json_key(key: Any) -> Any:
    if isinstance(key, float) and key.is_integer() and abs(key) < 2**53:
        return int(key)
    return key


@dataclass
class DatasetProfile:
    """Profiles of every column of a dataset, mergeable and JSON-serialisable."""

    columns: dict[str, ColumnProfile]
    n_rows: int = 0
    config: dict[str, int] = field(default_factory=lambda: ProfileOptions().sketch_config())

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            known = ", ".join(self.columns) or "none"
            raise UsageError(f"the profile has no column '{name}' (columns: {known})") from None

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both datasets' rows (schemas must match by name and kind)."""
        if list(self.columns) != list(other.columns):
            raise UsageError(
                "cannot merge profiles of different columns: "
                f"{sorted(set(self.columns) ^ set(other.columns)) or 'same names, other order'}"
            )
        return DatasetProfile(
            columns={name: col.merge(other.columns[name]) for name, col in self.columns.items()},
            n_rows=self.n_rows + other.n_rows,
            config=dict(self.config),
        )

    def summary(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "columns": {n: c.summary() for n, c in self.columns.items()}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mlkernel.profile",
            "version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "config": self.config,
            "columns": [col.to_dict() for col in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProfile:
        if data.get("format") != "mlkernel.profile" or data.get("version") != FORMAT_VERSION:
            raise UsageError(
                f"not an mlkernel profile of version {FORMAT_VERSION} "
                f"(format={data.get('format')!r}, version={data.get('version')!r})"
            )
        columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
        return cls(
            columns={c.name: c for c in columns},
            n_rows=int(data["n_rows"]),
            config={k: int(v) for k, v in data["config"].items()},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetProfile:
        return cls.from_dict(json.loads(text))


def _batches(data: Any, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches(max_chunksize=batch_rows))
    if isinstance(data, pa.RecordBatch):
        return data.schema, iter([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    if isinstance(data, Iterable):
        iterator = iter(data)
        first = next(iterator, None)
        if first is None:
            raise UsageError("cannot profile an empty iterable of record batches; pass a table")
        if not isinstance(first, pa.RecordBatch | pa.Table):
            raise UsageError(f"expected pyarrow RecordBatches, got {type(first).__name__}")

        def chain() -> Iterator[pa.RecordBatch]:
            yield from _split(first, batch_rows)
            for item in iterator:
                yield from _split(item, batch_rows)

        return first.schema, chain()
    raise UsageError(
        f"cannot profile {type(data).__name__}; pass a pyarrow Table, RecordBatch, "
        "RecordBatchReader or an iterable of RecordBatches"
    )


def _split(item: pa.RecordBatch | pa.Table, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    if isinstance(item, pa.Table):
        yield from item.to_batches(max_chunksize=batch_rows)
    else:
        yield item


def build_profile(data: Any, options: ProfileOptions | None = None) -> DatasetProfile:
    """Profile a pyarrow Table / RecordBatch / RecordBatchReader / iterable of batches.

    Batches are read one at a time; within a batch the columns are profiled in a thread
    pool (NumPy and Arrow release the GIL for the heavy parts).
    """
    options = options or ProfileOptions()
    schema, batches = _batches(data, options.batch_rows)
    columns = {f.name: ColumnProfile.empty(f.name, f.type, options) for f in schema}
    if len(columns) != len(schema):
        raise UsageError("cannot profile a table with duplicate column names; rename them first")
    threads = options.threads or min(os.cpu_count() or 1, 8)
    n_rows = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for batch in batches:
            if batch.schema.names != schema.names:
                raise UsageError(
                    f"batch columns {batch.schema.names} differ from the first batch's {schema.names}"
                )
            n_rows += batch.num_rows
            work = [(columns[name], batch.column(i)) for i, name in enumerate(schema.names)]
            if threads > 1 and len(work) > 1:
                list(pool.map(lambda cw: cw[0].update(cw[1]), work))
            else:
                for col, array in work:
                    col.update(array)
    return DatasetProfile(columns=columns, n_rows=n_rows, config=options.sketch_config())

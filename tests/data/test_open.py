"""Opening versions in a layout: columns (memory-mapped Arrow), rows (NumPy), batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.errors import NotFoundError, UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]


@pytest.fixture
def sales(project: Kernel, write: Write, sample: Callable[..., str]) -> Kernel:
    project.data.add(write("sales.csv", sample(1000)), progress=False)
    return project


def test_columns_open_memory_mapped_without_copying(sales: Kernel) -> None:
    import pyarrow as pa

    before = pa.total_allocated_bytes()
    table = sales.data.open("sales")
    assert pa.total_allocated_bytes() == before  # every buffer points into the mapped file
    assert table.num_rows == 1000
    assert table.column("price").to_pylist()[:3] == [0.0, 1.5, 3.0]


def test_columns_filter_and_other_frames(sales: Kernel) -> None:
    import pyarrow.compute as pc

    small = sales.data.open("sales", columns=["id", "city"], filter=[("id", "<", 4)])
    assert small.column_names == ["id", "city"] and small.num_rows == 4
    expr = sales.data.open("sales@1", filter=pc.field("city") == "b")
    assert expr.num_rows == 333
    frame = sales.data.open("dataset:sales", columns=["id"], as_="polars")
    assert frame.shape == (1000, 1)
    pandas = sales.data.open("sales", columns=["price"], as_="pandas")
    assert float(pandas["price"].sum()) == pytest.approx(1.5 * 999 * 1000 / 2)
    with pytest.raises(UsageError, match="has no column 'prise'; did you mean 'price'"):
        sales.data.open("sales", columns=["prise"])
    with pytest.raises(NotFoundError):
        sales.data.open("sales@7")


def test_rows_are_a_cached_c_contiguous_matrix_with_encodings(sales: Kernel) -> None:
    import numpy as np

    rows = sales.data.open("sales", layout="rows")
    assert rows.shape == (1000, 6) and rows.matrix.flags["C_CONTIGUOUS"]
    assert rows.matrix.dtype == np.float64
    assert rows.columns == ["id", "price", "city", "at", "day", "ok"]
    assert rows.encodings == {"city": ["a", "b", "c"]}
    first = rows.matrix[1]
    assert first[0] == 1 and first[1] == 1.5 and rows.encodings["city"][int(first[2])] == "b"
    assert first[3] == 1704153600.0 and first[5] == 1.0  # 2024-01-02 UTC in seconds; True
    assert isinstance(rows.matrix, np.memmap)
    cache = sales.config.state_dir / "cache" / "data"
    assert len(list(cache.glob("*.npy"))) == 1
    again = sales.data.open("sales", layout="rows")
    assert np.array_equal(np.asarray(again), np.asarray(rows))
    assert len(list(cache.glob("*.npy"))) == 1
    small = sales.data.open("sales", layout="rows", columns=["price", "id"], dtype="float32")
    assert small.shape == (1000, 2) and small.matrix.dtype == np.float32
    assert small.matrix[2].tolist() == [3.0, 2.0]


def test_rows_refuse_text_columns_and_bad_dtypes(project: Kernel, write: Write) -> None:
    project.data.add(write("t.csv", "a,b\n1,x1\n2,x2\n"), progress=False)
    rows = project.data.open("t", layout="rows")
    assert rows.columns == ["a"] and rows.dropped == ["b"]
    with pytest.raises(UsageError, match="'b' is not numeric"):
        project.data.open("t", layout="rows", columns=["b"])
    with pytest.raises(UsageError, match="use float64 or float32"):
        project.data.open("t", layout="rows", dtype="int64")


def test_nulls_become_nan(sqlite_project: Kernel, write: Write) -> None:
    import math

    sqlite_project.data.add(write("n.csv", "a,b\n1,\n,2.5\n"), progress=False)
    rows = sqlite_project.data.open("n", layout="rows")
    assert rows.matrix[0, 0] == 1 and math.isnan(rows.matrix[0, 1])
    assert math.isnan(rows.matrix[1, 0]) and rows.matrix[1, 1] == 2.5


def test_iter_batches_streams_fixed_size_batches(sales: Kernel) -> None:
    sizes = [b.num_rows for b in sales.data.iter_batches("sales", rows=300)]
    assert sizes == [300, 300, 300, 100]
    ids = [
        v
        for b in sales.data.iter_batches("sales", rows=128, columns=["id"])
        for v in b.column(0).to_pylist()
    ]
    assert ids == list(range(1000))

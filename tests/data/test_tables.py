"""data.tables: a returned table made the table an ingest makes; what a version records."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mlkernel.data import layout, tables
from mlkernel.data.readers import ReadOptions, read_source
from mlkernel.data.sources import sniff
from mlkernel.data.storage import Written
from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]
CATEGORY = pa.dictionary(pa.int32(), pa.string())


def _table(value: object) -> pa.Table:
    return tables.to_table(value, "step s", "dataset:d").table


def test_ingest_records_what_describe_gives(
    sqlite_project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    k = sqlite_project
    first = k.data.add(write("a.csv", sample(30)), name="a", progress=False, parquet=True)
    props = first.record.properties
    ipc = k.context.objects.path(props["objects"]["ipc"])
    parquet = k.context.objects.path(props["objects"]["parquet"])
    table = layout.map_table(ipc)
    # What was recorded, against facts found apart from data.tables: the files, the table.
    assert props["objects"]["ipc"] == first.record.digest
    assert (props["rows"], props["columns"]) == (30, 6) == (table.num_rows, table.num_columns)
    assert [c["name"] for c in props["schema"]] == table.column_names
    assert props["ipc_bytes"] == ipc.stat().st_size
    assert props["parquet_bytes"] == parquet.stat().st_size
    assert props["bytes"] == ipc.stat().st_size + parquet.stat().st_size
    assert props["categories"] == {"city": ["a", "b", "c"]}
    assert props["schema_changes"] is None
    # and a step's table is described by the same function, so it records the same keys
    described = tables.describe(
        table,
        Written(ipc, props["objects"]["ipc"], ipc.stat().st_size),
        Written(parquet, props["objects"]["parquet"], parquet.stat().st_size),
    )
    assert described == {key: props[key] for key in described}

    second = k.data.add(write("b.csv", "id,price\n1,2.5\n2,3.5\n"), name="a", progress=False)
    changes = second.record.properties["schema_changes"]
    assert changes["from_version"] == 1
    assert changes["removed"] == ["city", "at", "day", "ok"]
    assert changes["added"] == []


def test_library_types_become_the_types_an_ingest_gives() -> None:
    n = 8
    table = pa.table(
        {
            "text": pa.array([f"t{i}" for i in range(n)], pa.large_string()),
            "view": pa.array([f"v{i}" for i in range(n)], pa.string_view()),
            "blob": pa.array([b"x"] * n, pa.large_binary()),
            "cat": pa.array(["a", "b"] * (n // 2))
            .dictionary_encode()
            .cast(pa.dictionary(pa.uint32(), pa.large_string())),
            "codes": pa.array([1, 2] * (n // 2)).dictionary_encode(),
        }
    ).replace_schema_metadata({"pandas": "{}"})
    table = table.cast(table.schema.set(0, table.schema.field(0).with_metadata({"k": "v"})))
    out = _table(table)
    assert out.schema.types == [pa.string(), pa.string(), pa.binary(), CATEGORY, pa.int64()]
    assert out.schema.metadata is None
    assert all(f.metadata is None for f in out.schema)
    assert out.column("cat").to_pylist() == ["a", "b"] * (n // 2)
    assert out.column("codes").to_pylist() == [1, 2] * (n // 2)


def test_text_becomes_a_category_where_an_ingest_would_make_one() -> None:
    out = _table(
        {
            "few": ["x", "y", "z"] * 4,  # 3 values, each repeated: a category
            "unique": [str(i) for i in range(12)],  # all distinct: text
        }
    )
    assert out.schema.field("few").type == CATEGORY
    assert out.schema.field("unique").type == pa.string()
    # over max_categories distinct values stays text even when each repeats
    limit = ReadOptions().max_categories
    many = _table({"v": [str(i % (limit + 1)) for i in range(2 * (limit + 1))]})
    assert many.schema.field("v").type == pa.string()
    at_limit = _table({"v": [str(i % limit) for i in range(2 * limit)]})
    assert at_limit.schema.field("v").type == CATEGORY
    # a mostly unique pandas category is text, as an ingest would store it
    mostly = _table(pd.DataFrame({"c": pd.Categorical(["a", "b", "c", "a"])}))
    assert mostly.schema.field("c").type == pa.string()


def test_pandas_polars_and_arrow_give_equal_tables() -> None:
    columns = {"id": [3, 1, 2, 4], "city": ["a", "b", "a", "b"], "x": [0.5, None, 1.5, 2.0]}
    arrow = _table(pa.table(columns))
    assert _table(pl.DataFrame(columns)).equals(arrow)
    assert _table(pd.DataFrame(columns)).equals(arrow)
    assert _table(pa.table(columns).to_batches()[0]).equals(arrow)


def test_a_named_pandas_index_is_a_column_and_an_unnamed_one_is_not() -> None:
    frame = pd.DataFrame({"v": [1, 2, 3, 4]}, index=[10, 20, 5, 7])  # e.g. rows picked
    assert _table(frame).column_names == ["v"]
    grouped = pd.DataFrame({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]}).groupby("k").sum()
    out = _table(grouped)
    assert out.column_names == ["v", "k"]
    assert out.column("k").to_pylist() == ["a", "b", "c"]


def test_chunks_do_not_change_the_stored_bytes(tmp_path: Path) -> None:
    whole = pa.table({"id": list(range(10)), "city": ["a", "b"] * 5})
    pieces = pa.concat_tables([whole.slice(0, 3), whole.slice(3, 3), whole.slice(6)])
    assert pieces.column("id").num_chunks == 3
    from mlkernel.artifacts.store import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    one = tables.write_version(whole, store, "step s", "dataset:d")
    two = tables.write_version(pieces, store, "step s", "dataset:d")
    assert one["digest"] == two["digest"]
    stored = store.local_path_for_reading(one["digest"])
    assert stored.stat().st_size == one["size"] == one["ipc_bytes"]
    assert not stored.stat().st_mode & stat.S_IWUSR  # read-only, like every object
    assert list(store.staging.iterdir()) == []
    assert layout.map_table(stored).equals(_table(whole))
    assert (one["rows"], one["format"], one["python_type"]) == (10, "arrow", "pyarrow.lib.Table")
    assert one["objects"] == {"ipc": one["digest"]}


def test_a_file_is_read_as_data_add_reads_it(write: Write) -> None:
    path = write("rows.ndjson", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n{"a": 3, "b": "x"}\n')
    found = tables.to_table(path, "step s", "dataset:d")
    assert (found.format, found.compression, found.source_bytes) == (
        "ndjson",
        None,
        path.stat().st_size,
    )
    assert found.table.equals(read_source(sniff(path), ReadOptions()).table)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "step s returned a value of type list, which cannot be stored as dataset:d; "),
        (pa.array([1]), "step s returned a value of type pyarrow.lib.Int64Array, which cannot"),
        ({"a": [1, 2], "b": [1]}, "step s returned a dict that is not a table of columns ("),
        (pa.table({"a": pa.array([], pa.int64())}), "step s returned a table with no rows; "),
        (pa.table({}), "step s returned a table with no columns; "),
        (
            pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]),
            "step s: columns 1 and 2 are both named 'a'; ",
        ),
    ],
)
def test_what_cannot_be_a_dataset_is_refused_in_one_line(value: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        _table(value)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_missing_file_or_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError,
        match=r"^step s returned .*missing.csv, which cannot be ingested \(.* does not exist\)",
    ):
        _table(tmp_path / "missing.csv")
    with pytest.raises(
        UsageError, match=r"returned the folder .*; return the path of one data file"
    ):
        _table(tmp_path)

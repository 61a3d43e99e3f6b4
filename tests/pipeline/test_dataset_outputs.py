"""Steps whose output is a dataset: versions like an ingest's, passed on, cached, traced."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkernel.data.tables import ACCEPTED
from mlkernel.kernel import Kernel
from mlkernel.pipeline.runner import RunResult

Writer = Callable[[Path, str, str], Path]

PIPE = """
import pandas as pd
import polars as pl
import mlkernel as mlk

@mlk.step(output="dataset:raw")
def gather(n: int = 6):
    return pd.DataFrame({
        "id": list(range(n)),
        "city": ["paris", "oslo"] * (n // 2),
        "spend": [float(i * 10) for i in range(n)],
    })

@mlk.step(output="dataset:train")
def prepare(raw):                      # no annotation: a dataset arrives as a handle
    frame = pl.from_arrow(raw.open())
    return frame.with_columns((pl.col("spend") * 2).alias("double"))

@mlk.step(output="model:churn")
def train(data: mlk.Artifact):
    rows = data.open(layout="rows")
    return {"columns": rows.columns, "sums": rows.matrix.sum(axis=0).tolist(),
            "encodings": rows.encodings, "n": len(rows)}

@mlk.pipeline
def pipe(n: int = 6):
    train(prepare(gather(n=n)))
"""


def _run(k: Kernel, executor: str = "process", **options: Any) -> RunResult:
    result = k.pipelines.run("pipes/ds.py:pipe", executor=executor, ml_mode=False, **options)
    assert result.state == "completed", result.error
    return result


def _edges(k: Kernel, ref: str) -> set[tuple[str, str, str]]:
    lineage = k.lineage(ref)
    return {
        (
            lineage.artifacts[e.parent_id].ref,
            lineage.executions[e.execution_id].name,
            lineage.artifacts[e.child_id].ref,
        )
        for e in lineage.edges
    }


def test_steps_make_dataset_versions_that_flow_on(k: Kernel, write: Writer) -> None:
    write(k.root, "pipes/ds.py", PIPE)
    first = _run(k)
    assert {s.state for s in first.steps.values()} == {"ran"}
    assert first.output("gather") == "dataset:raw@1"
    assert first.output("prepare") == "dataset:train@1"

    raw = k.data.resolve("raw")
    props = raw.properties
    assert props["rows"] == 6
    assert props["columns"] == 3
    assert props["schema"] == [
        {"name": "id", "type": "int64"},
        {"name": "city", "type": "category"},
        {"name": "spend", "type": "double"},
    ]
    assert props["categories"] == {"city": ["paris", "oslo"]}
    assert props["objects"] == {"ipc": raw.digest}
    assert props["ipc_bytes"] == props["bytes"] == raw.size
    assert props["schema_changes"] is None
    assert (props["source"], props["pipeline"], props["step"]) == ("step gather", "pipe", "gather")
    assert props["format"] == "pandas"

    train = k.data.open("dataset:train")
    assert train.column_names == ["id", "city", "spend", "double"]
    assert train.column("city").type == pa.dictionary(pa.int32(), pa.string())
    assert train.column("city").to_pylist() == ["paris", "oslo"] * 3
    assert train.column("double").to_pylist() == [float(i * 20) for i in range(6)]
    assert k.data.head("train", 2).num_rows == 2
    assert k.data.resolve("train").properties["format"] == "polars"

    model = k.load("model:churn")
    assert model["columns"] == ["id", "city", "spend", "double"]
    assert model["sums"] == [15.0, 3.0, 150.0, 300.0]  # city: codes 0, 1, 0, 1, 0, 1
    assert model["encodings"] == {"city": ["paris", "oslo"]}

    assert {
        ("dataset:raw@1", "prepare", "dataset:train@1"),
        ("dataset:train@1", "train", "model:churn@1"),
    } <= _edges(k, "model:churn")
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("mlk")), "-C", str(k.root), "lineage", "model:churn"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for text in ("model:churn@1", "step train", "dataset:train@1", "step prepare", "dataset:raw@1"):
        assert text in shown
    assert k.data.show("train").used_by == ["model:churn@1"]
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("mlk")), "-C", str(k.root), "data", "show", "train"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    source = next(line for line in shown.splitlines() if line.lstrip().startswith("source"))
    assert source.split()[1:] == ["step", "prepare"]  # no source file, so no size

    again = _run(k)
    assert {s.state for s in again.steps.values()} == {"cached"}
    assert again.output("prepare") == "dataset:train@1"
    assert [v.version for v in k.data.versions("train")] == [1]

    more = _run(k, params={"n": 8})
    assert {s.state for s in more.steps.values()} == {"ran"}
    assert (more.output("gather"), more.output("prepare")) == ("dataset:raw@2", "dataset:train@2")
    second = k.data.resolve("raw@2").properties
    assert second["rows"] == 8
    assert second["schema_changes"] == {"from_version": 1, "added": [], "removed": [], "changed": []}  # fmt: skip
    assert k.load("model:churn@2")["n"] == 8
    assert ("dataset:train@2", "train", "model:churn@2") in _edges(k, "model:churn@2")


def test_inline_and_process_store_the_same_dataset(k: Kernel, write: Writer) -> None:
    write(k.root, "pipes/ds.py", PIPE)
    inline = _run(k, "inline", force=True)
    process = _run(k, "process", force=True)
    assert {s.state for s in process.steps.values()} == {"ran"}
    for step in ("gather", "prepare"):
        assert inline.output(step) == process.output(step)  # same digest: no new version
    assert [v.version for v in k.data.versions("train")] == [1]
    inline_digest = k.data.resolve("train").digest
    # written again by the inline executor, the object's bytes are the same
    assert (
        k.data.ipc_path("train").read_bytes() == k.context.objects.path(inline_digest).read_bytes()
    )


SAME = """
import pandas as pd
import polars as pl
import pyarrow as pa
import mlkernel as mlk

COLUMNS = {"id": [1, 2, 3, 4], "city": ["a", "b", "a", "b"], "note": ["w", "x", "y", "z"]}

@mlk.step(output="dataset:same")
def make(kind: str):
    if kind == "pandas":
        return pd.DataFrame(COLUMNS)
    if kind == "polars":
        return pl.DataFrame(COLUMNS)
    if kind == "dict":
        return dict(COLUMNS)
    table = pa.table(COLUMNS)
    if kind == "batch":
        return table.to_batches()[0]
    if kind == "chunked":
        return pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])
    return table

@mlk.pipeline
def pipe(kind: str = "arrow"):
    make(kind)
"""


def test_equal_tables_give_one_version_whatever_they_came_as(
    k: Kernel, write: Writer, tmp_path: Path
) -> None:
    write(k.root, "pipes/same.py", SAME)
    outputs = set()
    for kind in ("arrow", "pandas", "polars", "dict", "batch", "chunked"):
        result = k.pipelines.run("pipes/same.py:pipe", executor="inline", params={"kind": kind})
        assert result.state == "completed", result.error
        outputs.add(result.output("make"))
    assert outputs == {"dataset:same@1"}
    stored = k.data.resolve("same")
    assert stored.properties["schema"] == [
        {"name": "id", "type": "int64"},
        {"name": "city", "type": "category"},  # 2 values each twice: a category
        {"name": "note", "type": "string"},  # all distinct: text
    ]
    # the very version `data add` makes of the table written to Parquet
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "city": ["a", "b", "a", "b"],
                             "note": ["w", "x", "y", "z"]}), tmp_path / "same.parquet")  # fmt: skip
    added = k.data.add(tmp_path / "same.parquet", name="ingested", progress=False)
    assert added.record.digest == stored.digest
    shared = ("rows", "columns", "schema", "categories", "bytes", "ipc_bytes", "objects")
    assert {key: added.record.properties[key] for key in shared} == {
        key: stored.properties[key] for key in shared
    }


FILE = """
import gzip
from pathlib import Path
import mlkernel as mlk

@mlk.step(output="dataset:logs")
def gather(rows: int = 5):
    path = Path(__file__).resolve().parent.parent / "out" / "logs.csv.gz"
    path.parent.mkdir(exist_ok=True)
    lines = ["at,level,ms"] + [f"2024-01-0{i + 1}T00:00:00Z,{'info' if i % 2 else 'warn'},{i}"
                               for i in range(rows)]
    path.write_bytes(gzip.compress(("\\n".join(lines) + "\\n").encode()))
    return path

@mlk.pipeline
def pipe():
    gather()
"""


def test_a_path_output_is_ingested_like_data_add(k: Kernel, write: Writer) -> None:
    write(k.root, "pipes/file.py", FILE)
    result = k.pipelines.run("pipes/file.py:pipe", executor="process", ml_mode=False)
    assert result.state == "completed", result.error
    assert result.output("gather") == "dataset:logs@1"
    stored = k.data.resolve("logs")
    props = stored.properties
    assert (props["format"], props["compression"], props["rows"]) == ("csv", "gzip", 5)
    assert props["schema"][0] == {"name": "at", "type": "timestamp[s, tz=UTC]"}
    assert props["source"] == "step gather"
    added = k.data.add(k.root / "out" / "logs.csv.gz", name="direct", progress=False)
    assert added.record.digest == stored.digest
    assert k.data.open("logs").column("ms").to_pylist() == [0, 1, 2, 3, 4]


BAD = """
from pathlib import Path
import mlkernel as mlk

@mlk.step(output="dataset:bad")
def wrong(kind: str = "list"):
    if kind == "dict":
        return {"a": [1, 2], "b": [1]}
    if kind == "path":
        path = Path(__file__).resolve().parent / "bad.csv"
        path.write_text("a,b\\n1,2\\n3\\n")
        return path
    return [1, 2, 3]

@mlk.step
def after(data):
    return data

@mlk.pipeline
def pipe(kind: str = "list"):
    after(wrong(kind))
"""


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (
            "list",
            "step wrong returned a value of type list, which cannot be stored as "
            f"dataset:bad; return {ACCEPTED}",
        ),
        (
            "dict",
            "step wrong returned a dict that is not a table of columns (Column 1 named b "
            "expected length 2 but got length 1); return {column name: list or array of "
            "values}, all of one length",
        ),
        (
            "path",
            "step wrong returned {root}/pipes/bad.csv, which cannot be ingested (line 3 has "
            "1 fields where the header has 2); fix the file the step writes",
        ),
    ],
)
def test_a_value_that_is_no_table_fails_the_step_in_one_line(
    k: Kernel, write: Writer, kind: str, error: str
) -> None:
    write(k.root, "pipes/bad.py", BAD)
    result = k.pipelines.run(
        "pipes/bad.py:pipe", executor="process", ml_mode=False, params={"kind": kind}
    )
    assert result.state == "failed"
    assert result.steps["wrong"].state == "failed"
    assert result.steps["after"].state == "skipped"
    message = result.steps["wrong"].error or ""
    assert "\n" not in message
    assert message == error.replace("{root}", str(k.root.resolve()))
    assert result.error == f"step wrong failed: {message}"
    assert k.context.table.versions("dataset", "bad") == []
    assert message in dict(k.pipelines.logs(result.id))["wrong"]


def test_a_dataset_trigger_sees_a_version_a_step_made(
    k: Kernel, write: Writer, declare: Callable[[Path, str], None]
) -> None:
    write(k.root, "pipes/ds.py", PIPE + USE)
    declare(
        k.root,
        """
        [pipelines]
        make = "pipes/ds.py:pipe"
        use = "pipes/ds.py:use"

        [triggers.retrain]
        pipeline = "use"
        dataset = "train"
        executor = "inline"
        """,
    )
    from mlkernel import open as open_project

    k = open_project(k.root)
    try:
        assert k.pipelines.run_pending() == []  # no version yet
        _run(k, "inline")
        fired = k.pipelines.run_pending()
        assert [(f.trigger, f.state) for f in fired] == [("retrain", "completed")]
        assert fired[0].reason == "dataset:train@1 is new"
        assert k.load("model:rows") == 6
        assert k.pipelines.run_pending() == []
        _run(k, "inline", params={"n": 4})
        fired = k.pipelines.run_pending()
        assert [f.reason for f in fired] == ["dataset:train@2 is new (last seen @1)"]
        assert k.load("model:rows") == 4
    finally:
        k.close()


USE = """
@mlk.step(output="model:rows")
def count(data):
    return data.open().num_rows

@mlk.pipeline
def use():
    count(mlk.Ref("dataset:train"))
"""


def test_only_a_dataset_output_loads_arrow_in_the_worker(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from mlkernel.pipeline.task import encode_output\n"
        f"objects = {str(tmp_path / 'objects')!r}\n"
        "encode_output({'a': [1, 2]}, objects, step='s', output='model:m')\n"
        "before = sorted(m for m in ('pyarrow', 'pandas', 'polars') if m in sys.modules)\n"
        "out, _ = encode_output({'a': [1, 2]}, objects, step='s', output='dataset:d')\n"
        "after = sorted(m for m in ('pyarrow', 'pandas', 'polars') if m in sys.modules)\n"
        "print(json.dumps([before, after, out['rows']]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, rows = json.loads(run.stdout)
    assert before == []
    assert "pyarrow" in after
    assert rows == 2

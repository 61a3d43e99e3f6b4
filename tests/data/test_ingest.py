"""Ingesting files into dataset versions: formats, inference, versions, many files."""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from blake3 import blake3

from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]


def test_csv_is_ingested_with_inferred_types(
    project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    path = write("sales.csv", sample(50))
    result = project.data.add(path, progress=False)
    assert result.created and result.ref == "dataset:sales@1"
    props = result.record.properties
    assert props["rows"] == 50 and props["columns"] == 6
    types = {c["name"]: c["type"] for c in props["schema"]}
    assert types == {
        "id": "int64",
        "price": "double",
        "city": "category",
        "at": "timestamp[s, tz=UTC]",
        "day": "date32[day]",
        "ok": "bool",
    }
    assert props["categories"]["city"] == ["a", "b", "c"]
    assert props["source"] == str(path.resolve())
    assert props["source_digest"] == blake3(path.read_bytes()).hexdigest()
    # One object, the Arrow file, hashed while it was written: its digest is its content's.
    assert props["objects"] == {"ipc": result.record.digest}
    assert props["bytes"] == props["ipc_bytes"] == result.record.size
    project.context.objects.verify(result.record.digest)
    assert [r.ref for r in project.ls()] == ["dataset:sales@1"]


def test_parquet_is_stored_when_asked_and_otherwise_made_on_first_need(
    project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    import pyarrow.parquet as pq

    lazy = project.data.add(write("a.csv", sample(40)), progress=False)
    made = project.data.parquet_path(lazy.ref)
    assert made.name == f"{lazy.record.digest}.parquet" and made.parent.name == "data"
    assert pq.read_table(made).column("price").to_pylist() == [i * 1.5 for i in range(40)]
    assert project.data.parquet_path("a") == made and made.stat().st_mtime_ns == (
        project.data.parquet_path("a").stat().st_mtime_ns
    )

    eager = project.data.add(write("b.csv", sample(40)), parquet=True, progress=False)
    props = eager.record.properties
    stored = props["objects"]["parquet"]
    assert project.data.parquet_path(eager.ref) == project.context.objects.path(stored)
    assert props["bytes"] == props["ipc_bytes"] + props["parquet_bytes"]
    assert pq.read_table(project.context.objects.path(stored)).num_rows == 40
    # The copy is listed in the version's properties, not registered as an artifact of its
    # own, and gc keeps it.
    assert [r.ref for r in project.ls()] == ["dataset:a@1", "dataset:b@1"]
    assert project.gc(dry_run=False).removed == []
    project.context.objects.verify(stored)


def test_identical_content_makes_no_new_version(
    project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    path = write("t.csv", sample(20))
    first = project.data.add(path, progress=False)
    again = project.data.add(path, progress=False)
    assert not again.created and again.ref == first.ref
    # The same rows, compressed: different bytes, same content, still no new version.
    packed = write("t.csv.gz", gzip.compress(path.read_bytes()))
    third = project.data.add(packed, name="t", progress=False)
    assert not third.created and third.ref == "dataset:t@1"
    assert [r.version for r in project.data.versions("t")] == [1]


def test_a_new_version_records_its_schema_changes(project: Kernel, write: Write) -> None:
    project.data.add(write("t.csv", "a,b\n1,x\n2,y\n"), progress=False)
    second = project.data.add(write("t.csv", "a,c\n1.5,3\n2.5,4\n"), progress=False)
    assert second.ref == "dataset:t@2"
    changes = second.record.properties["schema_changes"]
    assert changes["from_version"] == 1
    assert changes["added"] == ["c"] and changes["removed"] == ["b"]
    assert changes["changed"] == [{"name": "a", "from": "int64", "to": "double"}]
    diff = project.data.diff("t@1", "t@2")
    assert diff.schema.added == ["c"] and (diff.rows.before, diff.rows.after) == (2, 2)


RECORDS = [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(30)]


def _csv() -> bytes:
    return (
        "id,name,score\n" + "".join(f"{r['id']},{r['name']},{r['score']}\n" for r in RECORDS)
    ).encode()


def _parquet(tmp: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(RECORDS), tmp / "x.parquet")
    return (tmp / "x.parquet").read_bytes()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("d.csv", lambda tmp: _csv()),
        ("d.tsv", lambda tmp: _csv().replace(b",", b"\t")),
        ("d.ndjson", lambda tmp: "".join(json.dumps(r) + "\n" for r in RECORDS).encode()),
        ("d.json", lambda tmp: json.dumps(RECORDS).encode()),
        ("d.parquet", _parquet),
        ("d.csv.gz", lambda tmp: gzip.compress(_csv())),
        ("d.csv.bz2", lambda tmp: bz2.compress(_csv())),
        ("d.csv.zst", lambda tmp: _zstd(_csv())),
        (
            "d.jsonl.gz",
            lambda tmp: gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS).encode()),
        ),
        ("noext", lambda tmp: "".join(json.dumps(r) + "\n" for r in RECORDS).encode()),
    ],
)
def test_every_format_reads_the_same_rows(
    sqlite_project: Kernel, write: Write, tmp_path: Path, name: str, make: Callable[[Path], bytes]
) -> None:
    path = write(name, make(tmp_path))
    result = sqlite_project.data.add(path, name="d", progress=False)
    table = sqlite_project.data.open("d")
    assert table.num_rows == 30
    assert table.column("id").to_pylist() == list(range(30))
    assert table.column("score").to_pylist() == [r["score"] for r in RECORDS]
    assert [str(v) for v in table.column("name").to_pylist()] == [r["name"] for r in RECORDS]
    assert result.record.properties["format"] in ("csv", "tsv", "ndjson", "json", "parquet")


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


def test_an_explicit_schema_file_sets_types(
    project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    schema = write(
        "schema.json",
        json.dumps({"columns": {"id": "float32", "city": "string", "at": "timestamp[ms, UTC]"}}),
    )
    result = project.data.add(write("s.csv", sample(5)), schema=schema, progress=False)
    types = {c["name"]: c["type"] for c in result.record.properties["schema"]}
    assert types["id"] == "float" and types["city"] == "string"
    assert types["at"] == "timestamp[ms, tz=UTC]"
    with pytest.raises(UsageError, match="unknown type 'decimal'"):
        project.data.add(
            write("s.csv", "id\n1\n"), schema=write("bad.json", '{"id": "decimal"}'), progress=False
        )


def test_a_directory_becomes_one_version_with_a_source_column(
    sqlite_project: Kernel, write: Write, sample: Callable[..., str], tmp_path: Path
) -> None:
    write("parts/a.csv", sample(3))
    write("parts/b.csv", sample(4, start=3))
    result = sqlite_project.data.add(tmp_path / "files" / "parts", progress=False)
    assert result.ref == "dataset:parts@1" and result.rows == 7
    table = sqlite_project.data.open("parts")
    assert table.column("source_file").to_pylist() == ["a.csv"] * 3 + ["b.csv"] * 4
    glob = sqlite_project.data.add(
        str(tmp_path / "files" / "parts" / "*.csv"), name="g", progress=False
    )
    assert glob.rows == 7 and glob.record.properties["source_files"][1]["path"].endswith("b.csv")


def test_files_with_different_schemas_are_refused_naming_the_difference(
    sqlite_project: Kernel, write: Write, tmp_path: Path
) -> None:
    write("mixed/a.csv", "id,price\n1,2.5\n")
    write("mixed/b.csv", "id,cost\n1,2.5\n")
    with pytest.raises(
        UsageError, match=r"b\.csv does not match .*a\.csv: column 2 is 'cost' here but 'price'"
    ):
        sqlite_project.data.add(tmp_path / "files" / "mixed", progress=False)
    write("types/a.csv", "id,price\n1,2.5\n")
    write("types/b.csv", "id,price\n1,cheap\n")
    with pytest.raises(UsageError, match="column 'price' is string here but double"):
        sqlite_project.data.add(tmp_path / "files" / "types", progress=False)
    assert sqlite_project.data.ls() == []


def test_progress_callback_sees_the_bytes(
    sqlite_project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    path = write("p.csv", sample(200))
    seen: list[tuple[int, int]] = []
    sqlite_project.data.add(path, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)

"""JSON and NDJSON: the typed parse reads what Arrow's inference reads, and declared types win.

The NDJSON reader infers types on the first lines only, then parses the file with them,
and lets Arrow infer throughout when a later line does not fit. These files change after
the first lines; each must read as plain ``pyarrow.json.read_json`` reads it. A field whose
JSON type changes is refused unless ``--schema`` declares its type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.cli.main import main
from mlkernel.data.readers import ReadOptions, read_source
from mlkernel.data.sources import sniff
from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]

BLOCK = 4096  # small blocks, so that these files span many


def _lines(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps(
            {"id": i, "price": i * 0.5, "kind": f"k{i % 4}", "at": f"2024-01-01 00:00:{i % 60:02d}"}
        )
        + "\n"
        for i in range(start, start + n)
    )


def _one(**fields: object) -> str:
    return json.dumps(fields) + "\n"


CASES = {
    "nothing changes": _lines(600),
    "an int field gets a float": _lines(300) + _one(id=7.25) + _lines(9),
    "an int field gets a huge int": _lines(300) + _one(id=2**70) + _lines(9),
    "a float field gets an int": _lines(300) + _one(price=3) + _lines(9),
    "a timestamp gets fractions": _lines(300) + _one(at="2024-01-01 00:00:00.25"),
    "a timestamp gets text": _lines(300) + _one(at="soon") + _lines(9),
    "a field appears late": _lines(300) + _one(id=1, late=True) + _lines(9),
    "a field is null at first": "".join(_one(id=i, n=None) for i in range(300)) + _one(n=1.5),
    "a field goes missing": _lines(300) + "".join(_one(id=i) for i in range(300)),
    "fields come in another order": _lines(300)
    + "".join(_one(at="2024-01-02 00:00:00", kind="z", id=i) for i in range(9)),
    "nested fields change": "".join(_one(id=i, tags=[i], box={"a": i}) for i in range(300))
    + _one(tags=[1.5], box={"a": 1, "b": "x"}),
    "nested and null fields come first": "".join(
        _one(tags=[i], n=None, id=i, kind="k") for i in range(300)
    )
    + _one(n=2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_table_is_what_arrow_inference_reads(
    tmp_path: Path, head_bytes: int, case: str
) -> None:
    import pyarrow as pa
    import pyarrow.json as pajson

    path = tmp_path / "t.ndjson"
    path.write_text(CASES[case])
    # No categories, so that text stays text as in Arrow's own reading.
    result = read_source(sniff(path), ReadOptions(block_size=BLOCK, max_categories=0))
    expected = pajson.read_json(path, read_options=pajson.ReadOptions(block_size=BLOCK))
    if case == "an int field gets a huge int":  # Arrow rounds it to a float; we keep it exact
        ids = [json.loads(line).get("id") for line in CASES[case].splitlines()]
        exact = pa.array(ids, pa.decimal128(38, 0))
        expected = expected.set_column(0, pa.field("id", exact.type), exact)
    if case == "a timestamp gets fractions":  # Arrow leaves it text; every format reads it
        at = expected.column("at").cast(pa.timestamp("ns"))
        expected = expected.set_column(3, pa.field("at", at.type), at)
    assert result.table.schema == expected.schema
    assert result.table.equals(expected)


MIXED = (
    '{"id": 1, "a": 1}\n{"id": 2, "a": "x"}\n{"id": 3, "a": 2.50}\n{"id": 4, "a": true}\n'
    '{"id": 5, "a": null}\n{"id": 6, "a": {"k": [1]}}\n{"id": 7}\n'
)
AS_TEXT = ["1", "x", "2.50", "true", None, '{"k":[1]}', None]


def test_a_changing_ndjson_field_is_read_as_the_declared_type(
    project: Kernel, write: Write
) -> None:
    data = write("m.ndjson", MIXED)
    with pytest.raises(
        UsageError,
        match=r"field 'a' is a number on line 1 but a string on line 2; .*declare its type "
        r"with --schema",
    ):
        project.data.add(data, progress=False)
    schema = write("s.json", json.dumps({"columns": {"a": "string"}}))
    result = project.data.add(data, schema=schema, progress=False)
    table = project.data.open(result.ref)
    assert table.column_names == ["id", "a"] and str(table.schema.field("a").type) == "string"
    assert table.column("a").to_pylist() == AS_TEXT
    assert table.column("id").to_pylist() == list(range(1, 8))


def test_declared_numbers_are_converted_and_bad_ones_named(project: Kernel, write: Write) -> None:
    schema = write("s.toml", 'v = "float64"\n')
    ok = write("v.ndjson", '{"v": 1}\n{"v": "2.5"}\n{"v": null}\n')
    result = project.data.add(ok, schema=schema, progress=False)
    assert project.data.open(result.ref).column("v").to_pylist() == [1.0, 2.5, None]
    bad = write("w.ndjson", '{"v": 1}\n{"v": "high"}\n')
    with pytest.raises(UsageError, match=r"column 'v' cannot be read as double .*'high'"):
        project.data.add(bad, schema=schema, progress=False)


def test_declared_text_with_bad_lines_set_aside(project: Kernel, write: Write) -> None:
    schema = write("s.json", json.dumps({"a": "string"}))
    data = write("m.ndjson", '{"a": 1}\n{"a": \n{"a": "x"}\n[1]\n')
    result = project.data.add(data, schema=schema, on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [2, 4]
    assert project.data.open(result.ref).column("a").to_pylist() == ["1", "x"]


def test_a_declared_category_is_read_from_ndjson(project: Kernel, write: Write) -> None:
    schema = write("s.json", json.dumps({"kind": "category"}))
    data = write("c.ndjson", "".join(_one(id=i, kind="ab"[i % 2]) for i in range(10)))
    table = project.data.open(project.data.add(data, schema=schema, progress=False).ref)
    assert table.column_names == ["id", "kind"]
    assert str(table.schema.field("kind").type).startswith("dictionary<values=string")


def test_a_changing_json_array_field_is_read_as_the_declared_type(
    project: Kernel, write: Write
) -> None:
    data = write("a.json", json.dumps([{"v": 1}, {"v": [1]}, {"v": "x"}, {"v": 2.5}]))
    with pytest.raises(UsageError, match=r"field 'v' is a number on record 1 but an array"):
        project.data.add(data, progress=False)
    schema = write("s.json", json.dumps({"v": "string"}))
    result = project.data.add(data, schema=schema, progress=False)
    assert project.data.open(result.ref).column("v").to_pylist() == ["1", "[1]", "x", "2.5"]


def test_the_cli_reads_a_changing_field_with_schema(
    tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlkernel

    mlkernel.init(tmp_path / "proj", name="proj").close()
    root = str(tmp_path / "proj")
    data = write("m.ndjson", MIXED)
    assert main(["-C", root, "data", "add", str(data)]) == 2
    assert "field 'a' is a number on line 1 but a string on line 2" in capsys.readouterr().err
    schema = write("s.toml", '[columns]\na = "string"\n')
    assert main(["-C", root, "data", "add", str(data), "--schema", str(schema), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert main(["-C", root, "data", "show", added["ref"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {"name": "a", "type": "string"} in shown["properties"]["schema"]

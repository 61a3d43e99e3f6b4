"""Values kept as written: big integers, one null-token rule and one date rule in every
format, JSON arrays read as NDJSON is, and clean refusals for files a user can hand us."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import mlkernel
from mlkernel.cli.main import main
from mlkernel.errors import MLKernelError, UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]

IDS = [2**53 + 1, 99999999999999999999, *range(2**53 + 2, 2**53 + 120)]


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


def _as(fmt: str, rows: list[dict[str, object]]) -> tuple[str, bytes]:
    """``rows`` written as a file of format ``fmt`` (csv, tsv, ndjson, json, csv.gz, ...)."""
    base, _, codec = fmt.partition(".")
    names = list(rows[0])
    if base in ("csv", "tsv"):
        sep = "," if base == "csv" else "\t"
        text = sep.join(names) + "\n"
        text += "".join(
            sep.join("" if r[n] is None else str(r[n]) for n in names) + "\n" for r in rows
        )
        data = text.encode()
    elif base == "ndjson":
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    else:
        data = json.dumps(rows, indent=1).encode()
    packed = {"": data, "gz": gzip.compress(data), "bz2": bz2.compress(data)}
    if codec == "zst":
        return f"t.{fmt}", _zstd(data)
    return f"t.{fmt}", packed[codec]


FORMATS = ["csv", "tsv", "ndjson", "json", "csv.gz", "ndjson.zst", "json.bz2"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_integers_beyond_a_double_come_back_exact(
    sqlite_project: Kernel, write: Write, fmt: str
) -> None:
    rows: list[dict[str, object]] = [{"id": i, "n": k} for k, i in enumerate(IDS)]
    result = sqlite_project.data.add(write(*_as(fmt, rows)), progress=False)
    table = sqlite_project.data.open(result.ref)
    assert str(table.schema.field("id").type) == "decimal128(38, 0)"
    assert table.column("id").to_pylist() == [Decimal(i) for i in IDS]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([2**53 + 1, -(2**62)], "int64"),  # one value a double rounds: kept int64
        ([2**64 - 1, 1], "uint64"),
        ([-(2**64), 1], "decimal128(38, 0)"),
    ],
)
def test_the_narrowest_exact_type_is_chosen(
    sqlite_project: Kernel, write: Write, fmt: str, values: list[int], kind: str
) -> None:
    rows: list[dict[str, object]] = [{"id": v, "x": 0.5} for v in values]
    result = sqlite_project.data.add(write(*_as(fmt, rows)), progress=False)
    table = sqlite_project.data.open(result.ref)
    assert str(table.schema.field("id").type) == kind
    assert [int(v) for v in table.column("id").to_pylist()] == values
    assert table.column("x").to_pylist() == [0.5, 0.5]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_large_floats_stay_floats(sqlite_project: Kernel, write: Write, fmt: str) -> None:
    rows: list[dict[str, object]] = [{"v": 1.5e300}, {"v": 2.5}, {"v": 12345678901234567.5}]
    result = sqlite_project.data.add(write(*_as(fmt, rows)), progress=False)
    table = sqlite_project.data.open(result.ref)
    assert str(table.schema.field("v").type) == "double"
    assert table.column("v").to_pylist() == [1.5e300, 2.5, 12345678901234567.5]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_an_integer_past_38_digits_is_refused_naming_it(
    sqlite_project: Kernel, write: Write, fmt: str
) -> None:
    huge = 10**40 + 7
    rows: list[dict[str, object]] = [{"id": 1}, {"id": huge}]
    with pytest.raises(UsageError, match=rf"column 'id' holds the integer {huge}.*--schema"):
        sqlite_project.data.add(write(*_as(fmt, rows)), progress=False)
    assert sqlite_project.data.ls() == []


MISSING_ROWS: list[dict[str, object]] = [
    {"n": "1", "t": "a", "d": "2024-01-01"},
    {"n": "NA", "t": "NA", "d": "NA"},
    {"n": "", "t": "", "d": ""},
    {"n": "null", "t": "None", "d": "N/A"},
    {"n": "2", "t": "b", "d": "2024-01-02"},
]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "ndjson", "json"])
def test_null_tokens_are_missing_in_every_column_and_format(
    sqlite_project: Kernel, write: Write, fmt: str
) -> None:
    rows = [dict(r) for r in MISSING_ROWS]
    if fmt in ("ndjson", "json"):  # JSON numbers are numbers; the tokens are strings
        for r in rows:
            r["n"] = int(str(r["n"])) if str(r["n"]).isdigit() else r["n"]
    result = sqlite_project.data.add(write(*_as(fmt, rows)), progress=False)
    table = sqlite_project.data.open(result.ref)
    assert table.column("n").to_pylist() == [1, None, None, None, 2]
    assert table.column("t").to_pylist() == ["a", None, None, None, "b"]
    assert str(table.schema.field("d").type) == "date32[day]"
    assert table.column("d").null_count == 3


def test_quoted_tokens_are_missing_too_and_null_values_changes_the_list(
    sqlite_project: Kernel, write: Write
) -> None:
    path = write("q.csv", 't,n\n"NA",1\n"",2\nx,-\n')
    table = sqlite_project.data.open(sqlite_project.data.add(path, progress=False).ref)
    assert table.column("t").to_pylist() == [None, None, "x"]
    result = sqlite_project.data.add(path, name="q2", null_values=["-"], progress=False)
    table = sqlite_project.data.open(result.ref)
    assert table.column("t").to_pylist() == ["NA", "", "x"]
    assert table.column("n").to_pylist() == [1, 2, None]
    nd = write("q.ndjson", '{"t": "NA"}\n{"t": "-"}\n{"t": "x"}\n')
    result = sqlite_project.data.add(nd, name="q3", null_values=["-"], progress=False)
    assert sqlite_project.data.open(result.ref).column("t").to_pylist() == ["NA", None, "x"]


def test_cli_null_values(tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    mlkernel.init(tmp_path / "p", name="p").close()
    path = write("c.csv", "t\nNA\n-\nx\n")
    root = str(tmp_path / "p")
    assert main(["-C", root, "data", "add", str(path), "-q", "--null-values=-,"]) == 0
    assert main(["-C", root, "data", "head", "c", "--json"]) == 0
    out = capsys.readouterr().out
    assert [r["t"] for r in json.loads(out[out.index("[") :])] == ["NA", None, "x"]


DATES: list[dict[str, object]] = [
    {"slash": "2012/01/01", "iso": "2024-01-01", "at": "2024-01-01T10:00:00Z", "no": "2012/01/01"},
    {"slash": "2012/1/2", "iso": "2024-01-02", "at": "2024-01-01 11:30:00.5+02:00", "no": "x"},
]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_dates_are_read_alike_in_every_format(
    sqlite_project: Kernel, write: Write, fmt: str
) -> None:
    result = sqlite_project.data.add(write(*_as(fmt, DATES)), progress=False)
    table = sqlite_project.data.open(result.ref)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["slash"] == "date32[day]" and types["iso"] == "date32[day]"
    assert types["at"] == "timestamp[ns, tz=UTC]"
    assert types["no"] in ("string", "dictionary<values=string, indices=int32, ordered=0>")
    assert [str(d) for d in table.column("slash").to_pylist()] == ["2012-01-01", "2012-01-02"]
    assert [t.isoformat() for t in table.column("at").to_pylist()] == [
        "2024-01-01T10:00:00+00:00",
        "2024-01-01T09:30:00.500000+00:00",
    ]


def test_json_forms_agree_on_nan_and_repeated_keys(sqlite_project: Kernel, write: Write) -> None:
    nd = write("n.ndjson", '{"a": NaN}\n{"a": 1.5}\n')
    arr = write("n.json", '[{"a": NaN}, {"a": 1.5}]')
    for path in (nd, arr):
        table = sqlite_project.data.open(sqlite_project.data.add(path, progress=False).ref)
        values = table.column("a").to_pylist()
        assert values[0] != values[0] and values[1] == 1.5  # NaN, then 1.5
    nd = write("d.ndjson", '{"a": 1}\n{"a": 1, "a": 2}\n{"a": 3}\n')
    arr = write("d.json", '[{"a": 1}, {"a": 1, "a": 2}, {"a": 3}]')
    for path, unit in ((nd, "line"), (arr, "record")):
        with pytest.raises(UsageError, match=rf"{unit} 2 has the key 'a' twice"):
            sqlite_project.data.add(path, name="dup", progress=False)
        result = sqlite_project.data.add(path, name="dup", on_bad_rows="skip", progress=False)
        assert [b.line for b in result.bad_rows] == [2]
        assert sqlite_project.data.open(result.ref).column("a").to_pylist() == [1, 3]
    nd = write("m.ndjson", '{"a": 1}\n{"a": "x"}\n')
    arr = write("m.json", '[{"a": 1}, {"a": "x"}]')
    for path, unit in ((nd, "line"), (arr, "record")):
        with pytest.raises(
            UsageError, match=rf"'a' is a number on {unit} 1 but a string on {unit} 2"
        ):
            sqlite_project.data.add(path, name="mixed", progress=False)


def _refusals(tmp: Path) -> dict[str, Path]:
    """Files a user can hand over that no reader can take."""
    tmp.mkdir(parents=True, exist_ok=True)
    cases: dict[str, bytes] = {}
    rows: list[dict[str, object]] = [{"a": i, "b": f"x{i}"} for i in range(3000)]
    for base in ("csv", "ndjson", "json"):
        for codec in ("gz", "bz2", "zst"):
            name, data = _as(f"{base}.{codec}", rows)
            cases[name] = data[: len(data) // 2]
    corrupt = bytearray(gzip.compress(b"a,b\n" + b"1,2\n" * 1000))
    corrupt[20:40] = b"x" * 20
    cases["corrupt.csv.gz"] = bytes(corrupt)
    cases["noname.gz"] = gzip.compress(b"a,b\n1,2\n" * 1000)[:30]  # sniffed, not named
    cases["header.csv"] = b"a,b\xff\n1,2\n"
    cases["wide.csv"] = "a,b\n1,2\n3,4\n".encode("utf-16")
    cases["wide.ndjson"] = '{"a": 1}\n'.encode("utf-16-le")
    cases["deep.ndjson"] = ('{"a":' * 65 + "1" + "}" * 65 + "\n").encode()
    cases["deep.json"] = ("[" + '{"a":' * 65 + "1" + "}" * 65 + "]").encode()
    cases["deeper.json"] = ("[" + '{"a":' * 10_000 + "1" + "}" * 10_000 + "]").encode()
    cases["deeper.ndjson"] = ('{"a":' * 10_000 + "1" + "}" * 10_000 + "\n").encode()
    paths = {}
    for name, data in cases.items():
        (tmp / name).write_bytes(data)
        paths[name] = tmp / name
    return paths


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_bad_files_are_refused_in_one_line(
    tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mlkernel.init(tmp_path / "p", name="p").close()
    root = str(tmp_path / "p")
    expected = {
        "header.csv": "line 1 holds byte 0xff, which is not UTF-8",
        "wide.csv": "file is UTF-16",
        "wide.ndjson": "file is UTF-16",
        "deep.ndjson": "nested more than 64 levels",
        "deep.json": "nested more than 64 levels",
        "deeper.json": "nested more than 64 levels",
        "deeper.ndjson": "nested more than 64 levels",
    }
    for name, path in _refusals(tmp_path / "files").items():
        code = main(["-C", root, "data", "add", str(path), "-q", "--on-bad-rows", mode])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert len(err.splitlines()) == 1, (name, err)
        codec = name.rsplit(".", 1)[-1]
        want = expected.get(name, f"the {dict(gz='gzip', zst='zstd').get(codec, codec)} data")
        assert want in err, (name, err)
    k = mlkernel.open(root)
    try:
        assert k.data.ls() == []
        tmp = Path(root) / ".mlkernel" / "objects" / "tmp"
        assert not tmp.exists() or not any(tmp.iterdir())
    finally:
        k.close()


def test_a_truncated_file_exits_2_from_the_real_command(tmp_path: Path) -> None:
    mlkernel.init(tmp_path / "p", name="p").close()
    path = _refusals(tmp_path / "files")["t.csv.gz"]
    mlk = str(Path(sys.executable).parent / "mlk")
    out = subprocess.run(
        [mlk, "-C", str(tmp_path / "p"), "data", "add", str(path), "-q"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"mlk: error: {path}: the gzip data is cut short or corrupt (Truncated compressed "
        "stream); fetch or compress the file again"
    ]


def test_a_long_name_gets_its_own_quarantine(sqlite_project: Kernel, write: Write) -> None:
    path = write("r.csv", "a,b\n1,2\n3\n4,5\n")
    long = "n" * 190
    result = sqlite_project.data.add(path, name=long, on_bad_rows="quarantine", progress=False)
    assert result.quarantine is not None and len(result.quarantine.name) == 200
    assert result.record.properties["quarantine"] == result.quarantine.ref
    other = sqlite_project.data.add(path, name=long + "x", on_bad_rows="quarantine", progress=False)
    assert other.quarantine is not None and other.quarantine.name != result.quarantine.name
    short = sqlite_project.data.add(path, name="r", on_bad_rows="quarantine", progress=False)
    assert short.quarantine is not None and short.quarantine.name == "r.quarantine"


def test_an_empty_name_is_refused(sqlite_project: Kernel, write: Write) -> None:
    path = write("r.csv", "a\n1\n")
    with pytest.raises(MLKernelError, match="dataset name is empty"):
        sqlite_project.data.add(path, name="", progress=False)
    assert sqlite_project.data.ls() == []


def test_a_symlink_loop_is_named(sqlite_project: Kernel, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    with pytest.raises(UsageError, match="is a symlink loop"):
        sqlite_project.data.add(loop, progress=False)


def test_a_200_character_name_is_ingested_on_both_backends(project: Kernel, write: Write) -> None:
    path = write("r.csv", "a,b\n1,2\n3\n")
    name = "n" * 200  # its ingest's execution ("data add …") and quarantine names fit too
    result = project.data.add(path, name=name, on_bad_rows="quarantine", progress=False)
    assert result.record.name == name and result.quarantine is not None
    assert project.data.open(result.ref).num_rows == 1


def test_files_of_one_dataset_widen_integers_to_the_first_files_decimal(
    sqlite_project: Kernel, write: Write
) -> None:
    write("many/a.csv", f"id\n{2**70}\n")
    write("many/b.csv", "id\n5\n")
    folder = write("many/c.csv", "id\n-7\n").parent
    table = sqlite_project.data.open(sqlite_project.data.add(folder, progress=False).ref)
    assert str(table.schema.field("id").type) == "decimal128(38, 0)"
    assert [int(v) for v in table.column("id").to_pylist()] == [2**70, 5, -7]


def test_a_wrong_or_unknown_encoding_is_refused_in_one_line(
    sqlite_project: Kernel, write: Write
) -> None:
    path = write("l1.csv", "a\nété\n".encode("latin-1"))
    with pytest.raises(UsageError, match="unknown encoding 'foo'"):
        sqlite_project.data.add(path, encoding="foo", progress=False)
    with pytest.raises(UsageError, match=r"l1.csv: not utf-16 .*pass --encoding"):
        sqlite_project.data.add(path, encoding="utf-16", progress=False)
    assert sqlite_project.data.ls() == []

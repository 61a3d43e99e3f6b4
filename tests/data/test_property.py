"""Random CSV and NDJSON files read back value for value as Python's csv and json modules
read them, plus the documented rules (null tokens, exact integers, dates)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlkernel
from mlkernel.data.readers import DEFAULT_NULL_VALUES

KINDS = ["int", "bigint", "float", "bool", "text", "date"]
TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters=",\"\n'é"
    ),
    max_size=8,
)


def _value(kind: str) -> st.SearchStrategy[Any]:
    return {
        "int": st.integers(-(2**40), 2**40),
        "bigint": st.integers(2**53, 2**70),
        "float": st.floats(-1e12, 1e12, allow_nan=False).map(lambda f: round(f, 3) + 0.5),
        "bool": st.booleans(),
        "text": TEXT.map(lambda t: "t" + t),  # never a token, a number or a date
        "date": st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    }[kind]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    rows = draw(st.integers(1, 30))
    columns = []
    for kind in kinds:
        values = draw(st.lists(st.one_of(_value(kind), st.none()), min_size=rows, max_size=rows))
        if all(v is None for v in values):
            values[0] = draw(_value(kind))
        columns.append(values)
    return kinds, [list(r) for r in zip(*columns, strict=True)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _expected(kind: str, texts: list[Any]) -> list[Any]:
    """The documented reading of one column: tokens missing, then the column's type."""
    values = [None if v is None or v in DEFAULT_NULL_VALUES else v for v in texts]
    if kind == "bigint":
        return [None if v is None else Decimal(int(v)) for v in values]
    if kind == "int":
        return [None if v is None else int(v) for v in values]
    if kind == "float":
        return [None if v is None else float(v) for v in values]
    if kind == "bool":
        return [None if v is None else v in (True, "true") for v in values]
    if kind == "date":
        return [None if v is None else dt.date.fromisoformat(str(v)) for v in values]
    return values


def _check(
    k: Any, path: Path, kinds: list[str], rows: list[list[Any]], read: Any, encoding: str = "utf8"
) -> None:
    table = k.data.open(k.data.add(path, name="p", encoding=encoding, progress=False).ref)
    got = table.to_pydict()
    for i, kind in enumerate(kinds):
        column = got[f"c{i}"]
        want = _expected(kind, read(i))
        if kind == "bigint":
            column = [None if v is None else Decimal(int(v)) for v in column]
        assert column == want, (kind, column, want)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tables(),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["", "NA", "null"]),  # how a missing value is written
    st.sampled_from(["utf-8", "latin-1"]),
    st.booleans(),  # gzip
)
def test_random_csv_reads_as_pythons_csv_module(
    tmp_path_factory: Any,
    table: tuple[list[str], list[list[Any]]],
    quoting: int,
    missing: str,
    encoding: str,
    packed: bool,
) -> None:
    kinds, rows = table
    if encoding == "latin-1":  # what latin-1 cannot write, it writes as ?
        rows = [
            [
                v.encode("latin-1", "replace").decode("latin-1") if isinstance(v, str) else v
                for v in r
            ]
            for r in rows
        ]
    folder = tmp_path_factory.mktemp("prop")
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(len(kinds))])
    writer.writerows([[missing if v is None else _text(v) for v in row] for row in rows])
    data = buffer.getvalue().encode(encoding)
    path = folder / ("t.csv.gz" if packed else "t.csv")
    path.write_bytes(gzip.compress(data) if packed else data)
    parsed = list(csv.reader(io.StringIO(data.decode(encoding))))[1:]
    k = mlkernel.init(folder / "proj", name="p")
    try:
        _check(k, path, kinds, rows, lambda i: [r[i] for r in parsed], encoding=encoding)
    finally:
        k.close()


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_random_ndjson_reads_as_pythons_json_module(
    tmp_path_factory: Any, table: tuple[list[str], list[list[Any]]]
) -> None:
    kinds, rows = table
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "t.ndjson"
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            record = {
                f"c{i}": v.isoformat() if isinstance(v, dt.date) else v for i, v in enumerate(row)
            }
            for i, v in enumerate(row):  # missing text or dates also written as a token
                if v is None and kinds[i] in ("text", "date") and len(record) % 2:
                    record[f"c{i}"] = "NA"
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    parsed = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    k = mlkernel.init(folder / "proj", name="p")
    try:
        _check(k, path, kinds, rows, lambda i: [r.get(f"c{i}") for r in parsed])
    finally:
        k.close()

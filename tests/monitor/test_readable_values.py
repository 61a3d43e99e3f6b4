"""What people read of a profile or a drift report shows dates as dates; odd columns never
end in an internal error (exit 70)."""

import decimal
import json
import math
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import mlkernel
from mlkernel.testing import run_mlk


def mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlk(*args, cwd=root, columns=250)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    mlkernel.init(root, name="proj").close()
    return root


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("date,ts,x\n" + "\n".join(rows) + "\n")
    return path


def test_profile_of_a_csv_date_column_shows_dates(root: Path, tmp_path: Path) -> None:
    rows = ["2012-01-01,2012-01-01T10:00:00,1", "2012-03-05,2012-03-05T11:30:00,2"]
    rows.append("2013-07-01,2013-07-01T00:00:00,3")
    added = mlk(root, "data", "add", str(_csv(tmp_path / "a.csv", rows)), "--name", "d")
    assert added.returncode == 0, added.stderr
    shown = mlk(root, "data", "profile", "d")
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.strip().startswith("date "))
    assert "2012-01-01" in line and "2013-07-01" in line  # min and max
    assert "2012-07-23" in line  # the mean, a date too (15543.67 days, rounded)
    assert "299.1 days" in line  # the std, with its unit
    assert "e+0" not in line
    ts = next(x for x in shown.stdout.splitlines() if x.strip().startswith("ts "))
    assert "2012-01-01 10:00:00" in ts and "2013-07-01 00:00:00" in ts
    assert "e+0" not in ts

    doc = json.loads(mlk(root, "data", "profile", "d", "--json").stdout)
    date = doc["columns"]["date"]
    assert date["min"] == 15340  # the machine value stays, and says what it counts
    assert date["value_unit"] == "days since 1970-01-01"
    readable = date["readable"]
    assert (readable["min"], readable["max"], readable["mean"]) == (
        "2012-01-01",
        "2013-07-01",
        "2012-07-23",
    )
    assert readable["quantiles"]["p50"] == "2012-03-05"
    assert sorted(k for k, _ in readable["top"]) == ["2012-01-01", "2012-03-05", "2013-07-01"]
    assert doc["columns"]["ts"]["readable"]["min"] == "2012-01-01 10:00:00"
    assert "readable" not in doc["columns"]["x"]


def test_drift_report_shows_dates(root: Path, tmp_path: Path) -> None:
    before = [f"2012-01-{d:02d},2012-01-{d:02d}T10:00:00,{d}" for d in range(1, 29)]
    after = [f"2014-07-{d:02d},2014-07-{d:02d}T10:00:00,{d}" for d in range(1, 29)]
    for name, rows in (("a.csv", before), ("b.csv", after)):
        assert (
            mlk(root, "data", "add", str(_csv(tmp_path / name, rows)), "--name", "d").returncode
            == 0
        )
    page_path = tmp_path / "drift.html"
    result = mlk(root, "data", "drift", "d@1", "d@2", "--html", str(page_path), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    with mlkernel.open(root) as k:  # the report's JSON document, which the page is made from
        stored = json.loads(k.context.objects.read_bytes(k.resolve(doc["report_json"]).digest))
    side = next(c for c in stored["columns"] if c["column"] == "date")["reference"]
    assert side["mean"] == pytest.approx(15353.5)  # the number stays for programs
    assert side["readable"]["mean"] == "2012-01-15"  # 14.5 days after the 1st, rounded
    assert side["readable"]["std"].endswith(" days")
    page = page_path.read_text()
    assert "Mean 2012-01-15 → 2014-07-15" in page
    assert ">2012-01-01</text>" in page and ">2014-07-28</text>" in page  # histogram axis
    assert "1.534e+04" not in page


@pytest.mark.parametrize(
    ("dtype", "value", "shown"),
    [
        ("date64[ms]", 15340 * 86_400_000, "2012-01-01"),
        ("timestamp[us, tz=Europe/Paris]", 1_325_412_000_000_000, "2012-01-01 11:00:00+01:00"),
        ("timestamp[ns, tz=+05:30]", 1_325_412_000_123_000_000, "2012-01-01 15:30:00.123+05:30"),
        ("time32[s]", 41_400, "11:30:00"),
        ("time64[us]", 41_400_500_000, "11:30:00.500"),
        ("duration[s]", 93_784, "1 day, 2:03:04"),
    ],
)
def test_temporal_points(dtype: str, value: float, shown: str) -> None:
    from mlkernel.monitor import temporal

    assert temporal.point(dtype, float(value)) == shown


def test_temporal_spans_and_limits() -> None:
    from mlkernel.monitor import temporal

    assert temporal.span("timestamp[s]", 42_094.6) == "42095 s"
    assert temporal.span("timestamp[s]", 2 * 86400.0) == "2.000 days"
    assert temporal.span("date32[day]", 0.5) == "0.5000 days"
    assert temporal.point("timestamp[ns]", 1e30) is None  # beyond the calendar: the number
    assert temporal.point("int64", 3.0) is None
    assert temporal.point("date32[day]", math.nan) is None


ODD = {
    "boolean": pa.table({"b": pa.array([True, False, None, True] * 10)}),
    "allnull": pa.table(
        {"n": pa.array([None] * 40, pa.float64()), "s": pa.array([None] * 40, pa.string())}
    ),
    "nulltype": pa.table({"z": pa.nulls(40), "x": pa.array(range(40), pa.int64())}),
    "naninf": pa.table({"f": pa.array([math.nan, math.inf, -math.inf, math.nan] * 10)}),
    "tz": pa.table(
        {
            "t": pa.array(
                [1_325_412_000_000_000 + i * 3_600_000_000 for i in range(40)],
                pa.timestamp("us", tz="Europe/Paris"),
            )
        }
    ),
    "decimal": pa.table(
        {"d": pa.array([decimal.Decimal(10**30 + i) for i in range(40)], pa.decimal128(38, 0))}
    ),
    "clock": pa.table(
        {
            "t": pa.array([3600 * (i % 24) for i in range(40)], pa.time32("s")),
            "du": pa.array([60 * i for i in range(40)], pa.duration("s")),
        }
    ),
}


def test_odd_columns_profile_and_drift_without_internal_errors(root: Path) -> None:
    with mlkernel.open(root) as k:
        for name, table in ODD.items():
            k.data.add(table, name=name, progress=False)
            k.data.add(table.slice(0, 20), name=name, progress=False)
    for name in ODD:
        for args in (
            ("data", "profile", name),
            ("data", "profile", name, "--json"),
            ("data", "drift", f"{name}@1", f"{name}@2"),
            ("data", "drift", f"{name}@1", f"{name}@2", "--json"),
        ):
            result = mlk(root, *args)
            assert result.returncode == 0, (args, result.stderr)
            assert "Traceback" not in result.stderr
    naninf = mlk(root, "data", "profile", "naninf@1").stdout
    assert "0 (+20 NaN, 20 ±inf)" in naninf  # what the mean and the tests leave out
    tz = json.loads(mlk(root, "data", "profile", "tz@1", "--json").stdout)["columns"]["t"]
    assert tz["readable"]["min"] == "2012-01-01 11:00:00+01:00"
    dec = json.loads(mlk(root, "data", "profile", "decimal@1", "--json").stdout)["columns"]["d"]
    assert dec["kind"] == "numerical" and dec["min"] == pytest.approx(1e30)
    boolean = json.loads(mlk(root, "data", "profile", "boolean@1", "--json").stdout)["columns"]["b"]
    assert sorted(k for k, _ in boolean["top"]) == ["false", "true"]
    assert boolean["nulls"] == 10

"""What a run logs is stored exactly or refused at the call; a failing database loses nothing.

Every test runs on SQLite and on PostgreSQL (``project`` is parametrised by backend).
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlkernel.config import TrackingConfig
from mlkernel.errors import StorageError, UsageError
from mlkernel.kernel import Kernel
from mlkernel.testing import run_mlk
from mlkernel.tracking.run import unsaved_path

EDGE_FLOATS = [
    0.0,
    -0.0,
    5e-324,  # the smallest subnormal
    -5e-324,
    2.2250738585072014e-308,  # the smallest normal
    1.7976931348623157e308,  # the largest finite
    -1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
    0.1,
    1 / 3,
    2.0**53 + 2,
    -(2.0**63),
]


def same_float(stored: float, logged: float) -> bool:
    """Bit-for-bit equal, except that any NaN matches NaN and -0.0 reads as 0.0
    (SQLite keeps no sign on a zero; both backends store it as 0.0 so they read alike)."""
    if math.isnan(logged):
        return math.isnan(stored)
    if logged == 0.0:
        return struct.pack("<d", stored) == struct.pack("<d", 0.0)
    return struct.pack("<d", stored) == struct.pack("<d", logged)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30))
@example(values=EDGE_FLOATS)
def test_any_float_reads_back_exactly(project: Kernel, values: list[float]) -> None:
    half = len(values) // 2
    with project.start_run("prop") as run:
        for value in values[:half]:
            run.log_metric("m", value)
        run.flush()  # the first half through a flush, the rest with the run's end
        for value in values[half:]:
            run.log_metric("m", value)
    assert project.context.meta.get_execution(run.id).state == "completed"
    stored = project.metrics(run.id, "m")
    assert [step for _k, step, _v, _t in stored] == list(range(len(values)))
    for (_k, _s, got, _t), logged in zip(stored, values, strict=True):
        assert same_float(got, logged), (got, logged)
    summary = project.run_info(run.id).metrics["m"]
    assert same_float(summary.last, values[-1])
    finite = [v for v in values if not math.isnan(v)]
    if finite:
        assert summary.min == min(finite) and summary.max == max(finite)
    else:
        assert math.isnan(summary.min) and math.isnan(summary.max)


def mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlk("-C", str(root), *args)


def strict_json(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"not standard JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_nan_metric_keeps_the_run_and_what_came_before(project: Kernel) -> None:
    with project.start_run("train", params={"lr": math.nan}) as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
        run.log_metric("loss", math.nan)
        run.log_metric("acc", math.inf)
        run.log_metric("acc", -math.inf)
    assert project.context.meta.get_execution(run.id).state == "completed"
    values = [v for _k, _s, v, _t in project.metrics(run.id, "loss")]
    assert values[:2] == [0.5, 0.25] and math.isnan(values[2])
    info = project.run_info(run.id)
    assert math.isnan(info.metrics["loss"].last)
    assert (info.metrics["loss"].min, info.metrics["loss"].max) == (0.25, 0.5)
    assert (info.metrics["acc"].min, info.metrics["acc"].max) == (-math.inf, math.inf)
    assert math.isnan(info.params["lr"])

    shown = mlk(project.root, "runs", "show", str(run.id))
    assert shown.returncode == 0, shown.stderr
    assert "nan" in shown.stdout and "inf" in shown.stdout
    as_json = mlk(project.root, "runs", "show", str(run.id), "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = strict_json(as_json.stdout)
    assert doc["metrics"]["loss"]["last"] == "NaN"
    assert doc["metrics"]["acc"] == {"last": "-Infinity", "steps": 2, "min": "-Infinity",
                                     "max": "Infinity"}  # fmt: skip
    assert doc["params"]["lr"] == "NaN"
    assert float(doc["metrics"]["acc"]["max"]) == math.inf  # the strings read back as floats


BAD_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("text value", {"value": "high"}),
    ("numeric text value", {"value": "0.5"}),
    ("complex value", {"value": 1 + 2j}),
    ("numpy complex value", {"value": np.complex64(1 + 1j)}),
    ("int beyond a float", {"value": 10**400}),
    ("array value", {"value": np.array([1.0, 2.0])}),
    ("object value", {"value": object()}),
    ("signalling NaN decimal", {"value": Decimal("sNaN")}),
    ("None value", {"value": None}),
    ("fractional step", {"step": 1.5}),
    ("NaN step", {"step": math.nan}),
    ("infinite step", {"step": math.inf}),
    ("step beyond int64", {"step": 2**63}),
    ("step below int64", {"step": -(2**63) - 1}),
    ("text step", {"step": "3"}),
    ("bool step", {"step": True}),
    ("NaN timestamp", {"timestamp": math.nan}),
    ("infinite timestamp", {"timestamp": math.inf}),
    ("text timestamp", {"timestamp": "now"}),
    ("empty key", {"key": ""}),
    ("long key", {"key": "k" * 251}),
    ("NUL in key", {"key": "a\x00b"}),
    ("surrogate in key", {"key": "loss\ud800"}),
    ("int key", {"key": 5}),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[n for n, _ in BAD_CALLS])
def test_bad_metric_calls_are_refused_at_the_call(project: Kernel, call: dict[str, Any]) -> None:
    args = {"key": "m", "value": 1.0, "step": None, "timestamp": None, **call}
    with project.start_run("train") as run:
        run.log_metric("m", 1.0)
        with pytest.raises(UsageError) as refused:
            run.log_metric(args["key"], args["value"], args["step"], args["timestamp"])
        assert "\n" not in str(refused.value)
        with pytest.raises(UsageError):  # log_metrics checks all before recording any
            run.log_metrics(
                {"ok": 1.0, args["key"]: args["value"]}, args["step"], args["timestamp"]
            )
        run.log_metric("m", 2.0)
    assert project.context.meta.get_execution(run.id).state == "completed"
    assert [(k, s, v) for k, s, v, _t in project.metrics(run.id)] == [("m", 0, 1.0), ("m", 1, 2.0)]


def test_numbers_of_other_types_are_stored(project: Kernel) -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with project.start_run("train") as run:
        run.log_metric("np32", np.float32(0.1))
        run.log_metric("np64", np.float64("nan"))
        run.log_metric("npint", np.int64(7), step=np.int64(3))
        run.log_metric("flag", True)
        run.log_metric("npflag", np.bool_(False))
        run.log_metric("dec", Decimal("2.5"), step=3.0)
        run.log_metric("frac", Fraction(1, 4), step=2**63 - 1)
        run.log_metric("low", 1.0, step=-(2**63), timestamp=when)
        run.log_metric("big", 10**300)
    got = {k: (s, v, t) for k, s, v, t in project.metrics(run.id)}
    assert got["np32"][1] == float(np.float32(0.1))
    assert math.isnan(got["np64"][1])
    assert got["npint"][:2] == (3, 7.0)
    assert (got["flag"][1], got["npflag"][1]) == (1.0, 0.0)
    assert got["dec"][:2] == (3, 2.5)
    assert got["frac"][:2] == (2**63 - 1, 0.25)
    assert got["low"] == (-(2**63), 1.0, when.timestamp())
    assert got["big"][1] == 1e300
    with project.start_run("overflow") as run:
        run.log_metric("m", 1.0, step=2**63 - 1)
        with pytest.raises(UsageError, match="64-bit range"):
            run.log_metric("m", 2.0)  # the next step would not fit
    assert project.context.meta.get_execution(run.id).state == "completed"


def test_parameters_of_any_kind_are_stored_or_refused_at_the_call(project: Kernel) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    with project.start_run("train") as run:
        run.log_params(
            {
                "np_int": np.int64(5),
                "np_float": np.float32(0.5),
                "array": np.arange(3),
                "nan": math.nan,
                "inf": -math.inf,
                "huge": 2**100,
                "path": Path("/data/x.csv"),
                "tags": {"b", "a"},
                "other": Opaque(),
            }
        )
        with pytest.raises(UsageError, match="parameter 'grid' cannot be stored"):
            run.log_param("grid", {(1, 2): "tuple keys"})
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(UsageError, match="parameter 'loop'"):
            run.log_param("loop", loop)
        with pytest.raises(UsageError):
            run.log_param("bad\ud800", 1)
        run.log_param("after", 1)
    assert project.context.meta.get_execution(run.id).state == "completed"
    params = project.run_info(run.id).params
    assert params["np_int"] == 5 and isinstance(params["np_int"], int)
    assert params["np_float"] == 0.5
    assert params["array"] == [0, 1, 2]
    assert math.isnan(params["nan"]) and params["inf"] == -math.inf
    assert params["huge"] == 2**100
    assert params["path"] == "/data/x.csv"
    assert params["tags"] == ["a", "b"]
    assert params["other"] == "opaque!"
    assert params["after"] == 1
    assert "grid" not in params and "loop" not in params


def test_bad_start_parameters_leave_no_half_run(project: Kernel) -> None:
    before = len(project.runs(include_internal=True))
    with pytest.raises(UsageError, match="parameter 'grid'"):
        project.start_run("train", params={"ok": 1, "grid": {(1, 2): 3}})
    assert len(project.runs(include_internal=True)) == before


def test_an_error_text_the_database_refuses_still_ends_the_run(project: Kernel) -> None:
    # PostgreSQL refuses NUL in text; neither driver encodes a lone surrogate (as in a
    # file name decoded with surrogateescape)
    with pytest.raises(RuntimeError), project.start_run("train") as run:
        run.log_metric("loss", 1.0)
        raise RuntimeError("bad byte \x00 in " + b"caf\xe9".decode("utf-8", "surrogateescape"))
    record = project.context.meta.get_execution(run.id)
    assert record.state == "failed"
    assert record.error is not None and record.error.startswith("RuntimeError: bad byte")
    assert len(project.metrics(run.id)) == 1


@contextmanager
def broken_database(k: Kernel) -> Iterator[None]:
    """Every write fails while the block runs, as on a full disk or a server that turned
    read-only: the writer connection itself is made read-only, so the driver raises."""
    db: Any = k.context.meta.db
    if db.is_sqlite:
        db._writer.execute("PRAGMA query_only = ON")
    else:
        with db._writer.cursor() as cur:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        db._writer.commit()
    try:
        yield
    finally:
        if db.is_sqlite:
            db._writer.execute("PRAGMA query_only = OFF")
        else:
            db._writer.rollback()
            with db._writer.cursor() as cur:
                cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
            db._writer.commit()


def test_a_failed_flush_keeps_its_rows_for_the_next(project: Kernel) -> None:
    config = dataclasses.replace(project.config, tracking=TrackingConfig(flush_rows=3))
    with Kernel(config) as k:
        with k.start_run("train") as run:
            with broken_database(k):
                with pytest.raises(StorageError):
                    run.log_metric("a", 1.0)
                    run.flush()  # an explicit flush says that it failed
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    for i in range(5):  # automatic flushes fail quietly, once warned
                        run.log_metric("b", float(i))
                assert [str(w.message) for w in caught if "could not be written" in str(w.message)]
            run.log_metric("c", math.nan)
        assert k.context.meta.get_execution(run.id).state == "completed"
        keys = [(key, s) for key, s, _v, _t in k.metrics(run.id)]
    assert keys == [("a", 0), *(("b", i) for i in range(5)), ("c", 0)]


def test_an_end_that_cannot_be_written_is_reported_and_recoverable(project: Kernel) -> None:
    run = project.start_run("train")
    run.log_metric("early", 1.0)
    run.flush()
    run.log_metric("late", math.nan)
    run.log_metric("late", 2.0)
    with broken_database(project), pytest.raises(StorageError) as failed, run:
        pass
    message = str(failed.value)
    assert "\n" not in message and f"mlk runs fail {run.id}" in message
    spilled = unsaved_path(project.config.state_dir, run.id)
    assert spilled.exists()
    assert project.context.meta.get_execution(run.id).state == "running"  # its process lives
    assert [k for k, *_ in project.metrics(run.id)] == ["early"]
    # the database works again: ending the run from outside writes the saved metrics in
    assert project.end_run(run.id, "failed", "disk was full") == "failed"
    record = project.context.meta.get_execution(run.id)
    assert record.state == "failed" and record.error is not None
    assert record.error.endswith("disk was full")
    got = [(k, s, v) for k, s, v, _t in project.metrics(run.id)]
    assert got[0] == ("early", 0, 1.0)
    assert got[1][:2] == ("late", 0) and math.isnan(got[1][2])
    assert got[2] == ("late", 1, 2.0)
    assert not spilled.exists()
    # the run object, tried again, neither writes those metrics twice nor changes the state
    run.end()
    assert run.state == "failed"
    assert len(project.metrics(run.id)) == 3


def test_an_end_can_be_retried_by_the_run_itself(project: Kernel) -> None:
    run = project.start_run("train")
    run.log_metric("m", 3.0)
    with broken_database(project), pytest.raises(StorageError):
        run.end()
    assert run.state == "running"
    run.end()
    assert project.context.meta.get_execution(run.id).state == "completed"
    assert [v for _k, _s, v, _t in project.metrics(run.id)] == [3.0]
    assert not unsaved_path(project.config.state_dir, run.id).exists()


def test_a_dropped_postgres_connection_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    """The server drops the writer's connection (a restart, say): the flush that meets it
    fails in one line and keeps its rows; the next write opens a new connection."""
    import uuid

    import psycopg2

    import mlkernel

    k = mlkernel.init(tmp_path / "p", name=f"p{uuid.uuid4().hex[:8]}", metadata_url=pg_url)
    try:
        run = k.start_run("train")
        run.log_metric("loss", 0.5)
        run.flush()
        run.log_metric("loss", math.nan)
        writer: Any = k.context.meta.db
        admin = psycopg2.connect(pg_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (writer._writer.get_backend_pid(),))
        admin.close()
        with pytest.raises(StorageError, match="cannot be used"):
            run.flush()
        run.log_metric("loss", 0.25)
        run.end()
        assert k.context.meta.get_execution(run.id).state == "completed"
        values = [v for _k, _s, v, _t in k.metrics(run.id)]
        assert values[0] == 0.5 and math.isnan(values[1]) and values[2:] == [0.25]
    finally:
        k.close()


def test_an_ended_run_refuses_what_it_could_not_keep(project: Kernel) -> None:
    with project.start_run("train") as run:
        run.log_metric("m", 1.0)
        with pytest.raises(UsageError, match="a run ends as completed, failed, cancelled"):
            run.end("done")
    with pytest.raises(UsageError, match=f"run {run.id} has ended"):
        run.log_metric("m", 2.0)  # once silently buffered and never written
    assert [v for _k, _s, v, _t in project.metrics(run.id)] == [1.0]
    assert project.context.meta.get_execution(run.id).state == "completed"

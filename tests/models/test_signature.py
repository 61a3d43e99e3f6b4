"""Signatures: inferred from each kind of table, checked against callers' data, compared
between model versions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlkernel.errors import UsageError
from mlkernel.models import Column, Signature, compatible, infer_signature


def sig(*columns: tuple[str, str] | tuple[str, str, bool], outputs: str | None = None) -> Signature:
    inputs = tuple(Column(*c) for c in columns)  # type: ignore[arg-type]
    out = (Column("prediction", outputs),) if outputs else ()  # type: ignore[arg-type]
    return Signature(inputs, out)


def types(signature: Signature) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in signature.inputs]


# -- inference ----------------------------------------------------------------------------


def test_infer_from_arrow() -> None:
    table = pa.table(
        {
            "age": pa.array([1, 2], pa.int32()),
            "income": [1.5, None],
            "ok": [True, False],
            "name": ["a", "b"],
            "city": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    assert types(infer_signature(table)) == [
        ("age", "int"),
        ("income", "float"),
        ("ok", "bool"),
        ("name", "string"),
        ("city", "category"),
    ]


def test_infer_refuses_a_timestamp_naming_the_column() -> None:
    table = pa.table({"at": [dt.datetime(2024, 1, 1)], "x": [1]})
    with pytest.raises(UsageError, match=r"column 'at' is timestamp.*convert it"):
        infer_signature(table)


def test_infer_from_pandas() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [1.0, np.nan, 2.0],
            "b": [True, False, True],
            "s": ["a", "b", None],
            "c": pd.Categorical(["u", "v", "u"]),
        }
    )
    assert types(infer_signature(frame)) == [
        ("n", "int"),
        ("x", "float"),
        ("b", "bool"),
        ("s", "string"),
        ("c", "category"),
    ]


def test_infer_from_polars() -> None:
    frame = pl.DataFrame(
        {"n": [1, 2], "x": [0.5, 1.5], "b": [True, False], "s": ["a", "b"]}
    ).with_columns(pl.col("s").cast(pl.Categorical).alias("c"))
    assert types(infer_signature(frame)) == [
        ("n", "int"),
        ("x", "float"),
        ("b", "bool"),
        ("s", "string"),
        ("c", "category"),
    ]


def test_infer_from_numpy_takes_the_models_feature_names() -> None:
    frame = pd.DataFrame({"height": [1.0, 2.0, 3.0, 4.0], "weight": [2.0, 1.0, 4.0, 3.0]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])
    X = frame.to_numpy()
    assert infer_signature(X, model=model).names == ["height", "weight"]
    assert infer_signature(X).names == ["x0", "x1"]
    with pytest.raises(UsageError, match="fitted on 2 features but the matrix has 1"):
        infer_signature(X[:, :1], model=model)
    with pytest.raises(UsageError, match="2-D matrix"):
        infer_signature(X[:, 0])


def test_infer_from_a_mapping_with_output_and_optional() -> None:
    signature = infer_signature(
        {"a": [1, 2], "b": ["x", None], "c": [1, 2.5]},
        output=np.array([0.1, 0.2]),
        optional=["b"],
    )
    assert types(signature) == [("a", "int"), ("b", "string"), ("c", "float")]
    assert signature.column("b").optional and not signature.column("a").optional
    assert signature.outputs == (Column("prediction", "float"),)
    with pytest.raises(UsageError, match="mixes int, str"):
        infer_signature({"a": [1, "x"]})
    with pytest.raises(UsageError, match=r"optional column\(s\) \['zz'\]"):
        infer_signature({"a": [1]}, optional=["zz"])


def test_an_int_or_bool_column_cannot_be_optional() -> None:
    with pytest.raises(UsageError, match="'age' is int and cannot be optional"):
        Column("age", "int", optional=True)
    with pytest.raises(UsageError, match="use one of int, float"):
        Column("age", "decimal")  # type: ignore[arg-type]


def test_dict_roundtrip_and_bad_dicts() -> None:
    signature = sig(("a", "int"), ("b", "category", True), outputs="int")
    data = signature.to_dict()
    assert data == {
        "inputs": [
            {"name": "a", "type": "int"},
            {"name": "b", "type": "category", "optional": True},
        ],
        "outputs": [{"name": "prediction", "type": "int"}],
    }
    assert Signature.from_dict(data) == signature
    with pytest.raises(UsageError, match="a signature is"):
        Signature.from_dict({"columns": []})
    with pytest.raises(UsageError, match="needs at least one input"):
        Signature.from_dict({"inputs": []})
    with pytest.raises(UsageError, match="names input column 'a' twice"):
        Signature.from_dict({"inputs": [{"name": "a", "type": "int"}] * 2})


# -- checks -------------------------------------------------------------------------------

SIGNATURE = sig(("age", "int"), ("income", "float"), ("member", "bool"), ("city", "category"))
GOOD = {"age": [30, 40], "income": [1.5, 2], "member": [True, False], "city": ["oslo", "rome"]}


def test_good_data_has_no_problems_and_extra_columns_are_ignored() -> None:
    assert SIGNATURE.check({**GOOD, "note": ["x", "y"]}) == []
    out = SIGNATURE.coerce(GOOD)
    assert list(out) == ["age", "income", "member", "city"]
    assert out["age"].dtype == np.int64 and out["income"].dtype == np.float64
    assert out["member"].dtype == bool and out["city"].tolist() == ["oslo", "rome"]


def test_each_problem_names_its_column() -> None:
    bad = {
        "age": ["thirty", "40"],
        "income": [1.0, "lots"],
        "city": [1, 2],
    }
    problems = SIGNATURE.check(bad)
    assert problems == [
        "column 'age' is int; 'thirty' cannot be converted",
        "column 'income' is float; 'lots' cannot be converted",
        "missing column 'member' (bool)",
        "column 'city' is int; expected category (send text)",
    ]
    with pytest.raises(UsageError, match="missing column 'member'"):
        SIGNATURE.coerce(bad)


def test_coercions_that_lose_nothing_are_made() -> None:
    out = SIGNATURE.coerce(
        {"age": ["30", 40.0], "income": ["2.5", 3], "member": ["true", 0], "city": ["a", None]}
    )
    assert out["age"].tolist() == [30, 40]
    assert out["income"].tolist() == [2.5, 3.0]
    assert out["member"].tolist() == [True, False]
    assert out["city"].tolist() == ["a", None]


def test_coercions_that_would_lose_something_are_problems() -> None:
    assert SIGNATURE.check({**GOOD, "age": [1.5, 2.0]}) == [
        "column 'age' is int; values [1.5] are not whole numbers"
    ]
    assert SIGNATURE.check({**GOOD, "age": [1, None]}) == [
        "column 'age' has 1 missing value(s); int columns cannot be missing"
    ]
    assert SIGNATURE.check({**GOOD, "age": [np.nan, 1.0]}) == [
        "column 'age' has missing values; int columns cannot be missing"
    ]
    assert SIGNATURE.check({**GOOD, "member": [2, 1]}) == [
        "column 'member' is bool; 2 cannot be converted"
    ]
    assert SIGNATURE.check({**GOOD, "income": [True, False]}) == [
        "column 'income' is bool; expected float (send numbers)"
    ]
    assert SIGNATURE.check({**GOOD, "income": [1.0]}) == [
        "column 'income' has 1 values; the others have 2"
    ]
    assert SIGNATURE.check({**GOOD, "age": [[1], [2]]}) == [
        "column 'age' must be 1-D (one value per row), not shape (2, 1)"
    ]


def test_a_missing_optional_column_is_filled() -> None:
    signature = sig(("a", "int"), ("b", "float", True), ("c", "string", True))
    out = signature.coerce({"a": [1, 2]})
    assert np.isnan(out["b"]).all() and out["c"].tolist() == [None, None]


def test_check_reads_tables_and_frames() -> None:
    table = pa.table(GOOD)
    assert SIGNATURE.check(table) == []
    assert SIGNATURE.check(table.to_pandas()) == []
    assert SIGNATURE.check(pl.from_arrow(table)) == []
    with pytest.raises(UsageError, match="NumPy matrix has no column names"):
        SIGNATURE.check(np.zeros((2, 4)))


# -- compatibility ------------------------------------------------------------------------

OLD = sig(("a", "int"), ("b", "float"), ("c", "string"), outputs="int")


@pytest.mark.parametrize(
    ("new", "reasons"),
    [
        (OLD, []),
        (sig(("a", "float"), ("b", "float"), ("c", "category"), outputs="int"), []),
        (
            sig(("a", "int"), ("b", "float"), ("c", "string"), ("d", "float", True), outputs="int"),
            [],
        ),
        (
            sig(("a", "int"), ("c", "string"), outputs="int"),
            ["input column 'b' was removed"],
        ),
        (
            sig(("a", "int"), ("b", "int"), ("c", "string"), outputs="int"),
            ["input column 'b' changed from float to int"],
        ),
        (
            sig(("a", "int"), ("b", "float"), ("c", "string"), ("d", "int"), outputs="int"),
            ["new required input column 'd' (int)"],
        ),
        (
            sig(("b", "float"), ("a", "int"), ("c", "string"), outputs="int"),
            ["input columns were reordered"],
        ),
        (
            sig(("z", "float", True), ("a", "int"), ("b", "float"), ("c", "string"), outputs="int"),
            ["a new column was inserted before old ones"],
        ),
        (
            sig(("a", "int"), ("b", "float"), ("c", "string"), outputs="float"),
            ["output 'prediction' changed from int to float"],
        ),
    ],
)
def test_compatible(new: Signature, reasons: list[str]) -> None:
    found = compatible(OLD, new)
    assert len(found) == len(reasons), found
    for got, expected in zip(found, reasons, strict=True):
        assert got.startswith(expected), got


def test_optional_turned_required_breaks() -> None:
    old = sig(("a", "int"), ("b", "float", True))
    assert compatible(old, sig(("a", "int"), ("b", "float"))) == [
        "input column 'b' was optional and is now required"
    ]
    assert compatible(sig(("a", "int"), ("b", "float")), old) == []


def test_pandas_nullable_types() -> None:
    frame = pd.DataFrame(
        {
            "gaps": pd.array([1, None, 3], dtype="Int64"),
            "full": pd.array([1, 2, 3], dtype="Int64"),
            "text": pd.array(["x", None, "z"], dtype="string"),
        }
    )
    signature = infer_signature(frame)
    assert types(signature) == [("gaps", "float"), ("full", "int"), ("text", "string")]
    out = signature.coerce(frame)
    assert np.isnan(out["gaps"][1]) and out["text"].tolist() == ["x", None, "z"]

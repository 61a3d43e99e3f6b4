"""The Open Inference Protocol (V2) and v1 JSON codecs of the model server."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlkernel.errors import UsageError
from mlkernel.models import Column, Signature, load, save
from mlkernel.serve.protocol import (
    DATATYPES,
    PREDICT,
    PROBA,
    ProtocolError,
    encode_error,
    encode_response,
    encode_v1,
    model_metadata,
    parse_request,
    parse_v1,
    request_columns,
)

SIGNATURE = Signature(
    (
        Column("age", "int"),
        Column("income", "float"),
        Column("member", "bool"),
        Column("city", "category"),
    )
)


def tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def columns_request(**overrides: dict[str, Any]) -> dict[str, Any]:
    inputs = {
        "age": tensor("age", [2], "INT64", [30, 40]),
        "income": tensor("income", [2, 1], "FP64", [[1.5], [2.5]]),
        "member": tensor("member", [2], "BOOL", [True, False]),
        "city": tensor("city", [2], "BYTES", ["oslo", "rome"]),
    }
    inputs.update(overrides)
    return {"id": "r-1", "inputs": [t for t in inputs.values() if t]}


def problem(body: Any, signature: Signature | None = SIGNATURE) -> str:
    with pytest.raises(ProtocolError) as caught:
        request = parse_request(body)
        if signature is not None:
            request_columns(request, signature)
    assert caught.value.http_status == 400 and "\n" not in str(caught.value)
    return str(caught.value)


# -- requests -----------------------------------------------------------------------------


def test_a_request_with_one_tensor_per_column() -> None:
    request = parse_request(json.dumps(columns_request()).encode())
    assert request.id == "r-1" and request.outputs == () and request.parameters == {}
    columns = request_columns(request, SIGNATURE)
    assert columns["age"].tolist() == [30, 40] and columns["income"].tolist() == [1.5, 2.5]
    assert columns["member"].tolist() == [True, False]
    assert columns["city"].tolist() == ["oslo", "rome"]


def test_the_spec_example_request_parses() -> None:
    body = {
        "id": "42",
        "inputs": [
            tensor("input0", [2, 2], "UINT32", [1, 2, 3, 4]),
            tensor("input1", [3], "BOOL", [True, False, True]),
        ],
        "outputs": [{"name": "output0"}],
        "parameters": {"priority": 1},
    }
    request = parse_request(body)
    assert request.inputs[0].data.tolist() == [[1, 2], [3, 4]]
    assert request.inputs[0].data.dtype == np.uint32
    assert request.outputs == ("output0",) and request.parameters == {"priority": 1}


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("BOOL", [True, False], [True, False]),
        ("UINT8", [0, 255], [0, 255]),
        ("UINT16", [0, 65535], [0, 65535]),
        ("UINT32", [0, 2**32 - 1], [0, 2**32 - 1]),
        ("UINT64", [0, 2**64 - 1], [0, 2**64 - 1]),
        ("INT8", [-128, 127], [-128, 127]),
        ("INT16", [-(2**15), 2**15 - 1], [-(2**15), 2**15 - 1]),
        ("INT32", [-(2**31), 2**31 - 1], [-(2**31), 2**31 - 1]),
        ("INT64", [-(2**63), 2**63 - 1], [-(2**63), 2**63 - 1]),
        ("FP16", [0.5, 2], [0.5, 2.0]),
        ("FP32", [0.25, -1], [0.25, -1.0]),
        ("FP64", [0.1, 3], [0.1, 3.0]),
        ("BYTES", ["a", "ü"], ["a", "ü"]),
    ],
)
def test_every_datatype(datatype: str, data: list[Any], expected: list[Any]) -> None:
    request = parse_request({"inputs": [tensor("x", [2], datatype, data)]})
    array = request.inputs[0].data
    assert array.dtype == np.dtype(DATATYPES[datatype])
    assert array.tolist() == expected


@pytest.mark.parametrize(
    ("datatype", "value", "message"),
    [
        ("UINT8", 256, "UINT8 but holds 256, outside [0, 255]"),
        ("UINT8", -1, "UINT8 but holds -1, outside [0, 255]"),
        ("INT8", -129, "INT8 but holds -129, outside [-128, 127]"),
        (
            "INT64",
            2**63,
            "INT64 but holds 9223372036854775808, "
            "outside [-9223372036854775808, 9223372036854775807]",
        ),
        ("INT32", 1.5, "INT32 but element 1 is 1.5; send whole numbers"),
        ("INT32", True, "INT32 but element 1 is a boolean (True); send numbers"),
        ("FP32", "1.0", "FP32 but element 1 is a string ('1.0'); send numbers"),
        ("BOOL", 1, "BOOL but element 1 is a number (1); send true or false"),
        ("BYTES", 7, "BYTES but element 1 is a number (7); send strings"),
    ],
)
def test_elements_must_fit_the_datatype(datatype: str, value: Any, message: str) -> None:
    body = {"inputs": [tensor("x", [2], datatype, [0 if datatype != "BYTES" else "a", value])]}
    if datatype == "BOOL":
        body["inputs"][0]["data"][0] = True
    assert problem(body, None) == f"input 'x' is {message}"


def test_null_in_a_float_tensor_is_nan() -> None:
    request = parse_request({"inputs": [tensor("x", [2], "FP64", [1.0, None])]})
    assert math.isnan(request.inputs[0].data[1])


def test_nested_and_flat_data_are_the_same() -> None:
    flat = parse_request({"inputs": [tensor("x", [2, 3], "INT32", [1, 2, 3, 4, 5, 6])]})
    nested = parse_request({"inputs": [tensor("x", [2, 3], "INT32", [[1, 2, 3], [4, 5, 6]])]})
    np.testing.assert_array_equal(flat.inputs[0].data, nested.inputs[0].data)
    assert flat.inputs[0].data.shape == (2, 3)


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([2, 3], [1, 2, 3, 4, 5], "has 5 values; shape [2, 3] needs 6"),
        ([2, 3], [[1, 2, 3], [4, 5]], "dimension 1 has 2 where the shape says 3"),
        ([3, 2], [[1, 2, 3], [4, 5, 6]], "dimension 0 has 2 where the shape says 3"),
        ([2], [[1], [2]], "nested deeper than shape [2]"),
        ([2], [1, [2]], "mixes arrays and values"),
        ([-1], [1], "a shape is a list of integers >= 0"),
        ("2", [1, 2], "a shape is a list of integers >= 0"),
        ([], [], "a shape is a list of integers >= 0"),
    ],
)
def test_bad_shapes(shape: Any, data: Any, message: str) -> None:
    text = problem({"inputs": [tensor("x", shape, "INT64", data)]}, None)
    assert text.startswith("input 'x' ") and message in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the request body is not JSON (Expecting property name"),
        (b"\xff", "not UTF-8"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ({}, "needs 'inputs'"),
        ({"inputs": []}, "needs 'inputs'"),
        ({"inputs": [5]}, "inputs[0] must be an object"),
        ({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}, "inputs[0] needs a 'name'"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, "input 'x' has no 'datatype'"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "input 'x' has no 'data'"),
        ({"inputs": [tensor("x", [1], "FP32", 1)]}, "input 'x' 'data' must be an array"),
        ({"id": 5, "inputs": [tensor("x", [1], "FP32", [1])]}, "'id' must be a string"),
        ({"inputs": [tensor("x", [1], "FP32", [1])] * 2}, "input 'x' is given twice"),
        ({"inputs": [tensor("x", [1], "FP32", [1])], "outputs": [{}]}, "a string 'name'"),
        ({"inputs": [tensor("x", [1], "FP32", [1])], "parameters": [1]}, "must be an object"),
    ],
)
def test_malformed_requests(body: Any, message: str) -> None:
    assert message in problem(body, None)


def test_an_unknown_datatype_lists_the_known_ones() -> None:
    text = problem({"inputs": [tensor("x", [1], "FLOAT32", [1.0])]}, None)
    assert text.startswith("input 'x' has datatype 'FLOAT32'; use one of BOOL, UINT8")
    assert "BYTES" in text


def test_a_missing_or_badly_typed_column_is_named() -> None:
    assert problem(columns_request(member={})) == "missing column 'member' (bool)"
    wrong = columns_request(city=tensor("city", [2], "INT64", [1, 2]))
    assert problem(wrong) == "column 'city' is int; expected category (send text)"
    text = columns_request(age=tensor("age", [2], "BYTES", ["30", "old"]))
    assert problem(text) == "column 'age' is int; 'old' cannot be converted"


def test_an_unknown_input_and_a_wide_column_are_named() -> None:
    typo = columns_request(agee=tensor("agee", [2], "INT64", [1, 2]))
    assert problem(typo).startswith("unknown input 'agee'; the model takes 'age', 'income'")
    wide = columns_request(age=tensor("age", [1, 2], "INT64", [[30, 40]]))
    assert problem(wide) == "input 'age' has shape [1, 2]; a column is [N] or [N, 1]"
    short = columns_request(age=tensor("age", [1], "INT64", [30]))
    assert problem(short) == "column 'age' has 1 values; the others have 2"


def test_one_matrix_in_the_signatures_order() -> None:
    signature = Signature((Column("a", "float"), Column("b", "int"), Column("c", "float", True)))
    body = {"inputs": [tensor("input-0", [2, 3], "FP32", [[1, 2, 3], [4, 5, 6]])]}
    columns = request_columns(parse_request(body), signature)
    assert columns["a"].tolist() == [1.0, 4.0] and columns["b"].tolist() == [2, 5]
    assert columns["b"].dtype == np.int64
    # Trailing optional columns may be left out.
    body = {"inputs": [tensor("input-0", [2, 2], "FP64", [1, 2, 4, 5])]}
    columns = request_columns(parse_request(body), signature)
    assert np.isnan(columns["c"]).all()
    body = {"inputs": [tensor("input-0", [1, 1], "FP64", [1])]}
    assert problem(body, signature) == (
        "input 'input-0' has 1 columns; the model takes 2 to 3 in this order: 'a', 'b', 'c'"
    )
    body = {"inputs": [tensor("input-0", [2], "FP64", [1, 2])]}
    assert "send one [N, 3] tensor or one tensor per column" in problem(body, signature)


def test_a_bytes_matrix_carries_mixed_types() -> None:
    body = {
        "inputs": [
            tensor("x", [2, 4], "BYTES", [["30", "1.5", "true", "oslo"], ["40", "2", "0", "rome"]])
        ]
    }
    columns = request_columns(parse_request(body), SIGNATURE)
    assert columns["age"].tolist() == [30, 40] and columns["member"].tolist() == [True, False]
    assert columns["city"].tolist() == ["oslo", "rome"]


def test_protocol_error_is_a_usage_error_with_a_status() -> None:
    error = ProtocolError("x")
    assert isinstance(error, UsageError) and error.http_status == 400
    assert ProtocolError("y", 500).http_status == 500
    assert encode_error(error) == {"error": "x"}


# -- responses ----------------------------------------------------------------------------

OIP_DATATYPES = set(DATATYPES)


def assert_valid_response(body: dict[str, Any]) -> None:
    """The inference response object of the spec: model_name, optional model_version,
    id and parameters, outputs of {name, shape, datatype, data}, row-major data whose
    length is the product of the shape; strict JSON (no NaN)."""
    json.dumps(body, allow_nan=False)
    assert isinstance(body["model_name"], str)
    assert set(body) <= {"model_name", "model_version", "id", "parameters", "outputs"}
    for key in ("model_version", "id"):
        assert key not in body or isinstance(body[key], str)
    assert isinstance(body["outputs"], list)
    for output in body["outputs"]:
        assert set(output) >= {"name", "shape", "datatype", "data"}
        assert isinstance(output["name"], str) and output["datatype"] in OIP_DATATYPES
        assert all(isinstance(d, int) and d >= 0 for d in output["shape"])
        assert isinstance(output["data"], list)
        assert len(output["data"]) == math.prod(output["shape"])
        assert not any(isinstance(v, list) for v in output["data"])


def test_encode_response() -> None:
    request = parse_request(columns_request())
    outputs = {
        PREDICT: np.array([0, 1]),
        PROBA: np.array([[0.75, 0.25], [np.nan, 0.5]], dtype=np.float32),
        "label": np.array(["no", "yes"], dtype=object),
        "flag": np.array([True, False]),
    }
    body = encode_response("churn", outputs, model_version="7", request=request)
    assert_valid_response(body)
    assert body["id"] == "r-1" and body["model_version"] == "7"
    by_name = {o["name"]: o for o in body["outputs"]}
    assert by_name[PREDICT] == {"name": PREDICT, "shape": [2], "datatype": "INT64", "data": [0, 1]}
    assert by_name[PROBA]["datatype"] == "FP32" and by_name[PROBA]["shape"] == [2, 2]
    assert by_name[PROBA]["data"] == [0.75, 0.25, None, 0.5]
    assert by_name["label"]["datatype"] == "BYTES" and by_name["label"]["data"] == ["no", "yes"]
    assert by_name["flag"]["datatype"] == "BOOL"


def test_the_response_gives_the_outputs_asked_for() -> None:
    body = columns_request()
    body["outputs"] = [{"name": PROBA}]
    request = parse_request(body)
    outputs = {PREDICT: np.array([0, 1]), PROBA: np.array([[0.5, 0.5], [0.1, 0.9]])}
    response = encode_response("m", outputs, request=request)
    assert [o["name"] for o in response["outputs"]] == [PROBA]
    assert "model_version" not in response
    body["outputs"] = [{"name": "embedding"}]
    with pytest.raises(ProtocolError, match="asks for output 'embedding'; the model gives"):
        encode_response("m", outputs, request=parse_request(body))


def test_model_metadata() -> None:
    signature = Signature(SIGNATURE.inputs, (Column("prediction", "int"),))
    body = model_metadata("churn", signature, versions=["1", "2"], proba=True)
    assert body["name"] == "churn" and body["versions"] == ["1", "2"]
    assert body["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in body["outputs"]] == [PREDICT, PROBA]
    assert body["outputs"][0]["datatype"] == "INT64"


def test_end_to_end_with_a_real_model(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlkernel.models import infer_signature

    frame, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, y)
    signature = infer_signature(frame)
    loaded = load(tmp_path / "m", save(model, tmp_path / "m"))
    rows = frame.to_numpy()[:5]
    body = {"id": "a", "inputs": [tensor("input", [5, 30], "FP64", rows.tolist())]}
    request = parse_request(json.dumps(body))
    columns = request_columns(request, signature)
    outputs = {PREDICT: loaded.predict(columns), PROBA: loaded.predict_proba(columns)}
    response = encode_response("cancer", outputs, model_version="1", request=request)
    assert_valid_response(response)
    assert response["outputs"][0]["data"] == model.predict(frame.iloc[:5]).tolist()


# -- v1 -------------------------------------------------------------------------------------


def test_v1_records_columns_and_split_agree() -> None:
    records = {
        "records": [
            {"age": 30, "income": 1.5, "member": True, "city": "oslo"},
            {"age": 40, "income": 2, "member": False, "city": "rome", "extra": 1},
        ]
    }
    columns = {
        "columns": {
            "age": [30, 40],
            "income": [1.5, 2],
            "member": [True, False],
            "city": ["oslo", "rome"],
        }
    }
    split = {
        "dataframe_split": {
            "columns": ["city", "age", "income", "member"],
            "data": [["oslo", 30, 1.5, True], ["rome", 40, 2, False]],
        }
    }
    parsed = [parse_v1(json.dumps(b), SIGNATURE) for b in (records, columns, split)]
    for other in parsed[1:]:
        assert {k: v.tolist() for k, v in other.items()} == {
            k: v.tolist() for k, v in parsed[0].items()
        }
    assert parsed[0]["income"].dtype == np.float64


def test_v1_without_a_signature_keeps_what_was_sent() -> None:
    out = parse_v1({"records": [{"a": 1, "b": "x"}, {"a": 2, "c": 0.5}]})
    assert out["a"].dtype == np.int64 and out["b"].tolist() == ["x", None]
    assert out["c"].tolist() == [None, 0.5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send exactly one of"),
        ({"records": [], "columns": {}}, "send exactly one of"),
        ({"records": {"age": 1}}, "'records' must be an array of objects"),
        ({"columns": {"age": 1}}, "'columns' must be an object of column name -> array"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "row 0 has 2 values"),
        (
            {"records": [{"age": 1, "income": 1.0, "member": True, "city": "x"}, {"age": 2}]},
            "record 1 has no 'income'; every record needs it",
        ),
        ({"records": [{"age": "x"}]}, "column 'age' is int; 'x' cannot be converted"),
        ({"columns": {"age": [1]}}, "missing column 'income' (float)"),
    ],
)
def test_v1_errors_name_the_problem(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_v1(body, SIGNATURE)
    assert message in str(caught.value) and caught.value.http_status == 400


def test_encode_v1() -> None:
    assert encode_v1(np.array([1, 0])) == {"predictions": [1, 0]}
    body = encode_v1(np.array(["a", "b"], dtype=object), np.array([[0.5, 0.5], [np.nan, 1.0]]))
    assert body == {"predictions": ["a", "b"], "probabilities": [[0.5, 0.5], [None, 1.0]]}
    json.dumps(body, allow_nan=False)

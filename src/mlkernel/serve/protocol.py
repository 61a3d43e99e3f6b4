"""Request and response codecs of the model server: the Open Inference Protocol's JSON
form (KServe V2, also spoken by Triton and MLServer) and a simple v1 JSON API.

Open Inference Protocol (``POST /v2/models/{name}/infer``): an inference request is
``{"id"?, "parameters"?, "inputs": [tensor, ...], "outputs"?: [{"name"}, ...]}``, each
tensor ``{"name", "shape", "datatype", "parameters"?, "data"}`` with ``data`` row-major,
either flat or nested as the shape. :func:`parse_request` checks all of that;
:func:`request_columns` maps the tensors to a model's :class:`Signature`, either

- one tensor per column, named as the column, of shape ``[N]`` or ``[N, 1]``; or
- one 2-D tensor ``[N, K]`` (any name) whose K columns follow the signature's order
  (trailing optional columns may be left out). A BYTES matrix carries mixed types:
  its text is converted per column ("12" -> 12 for an int column).

A response is ``{"model_name", "model_version"?, "id"?, "parameters"?, "outputs"}``
(:func:`encode_response`); a failure is ``{"error": message}`` with the status of the
:class:`ProtocolError` (400 for every problem with the request). Output tensors are
named ``predict`` and ``predict_proba``, as MLServer's scikit-learn runtime names them.

v1 (``POST /v1/models/{name}/predict``): ``{"records": [{col: value, ...}, ...]}``,
``{"columns": {col: [values], ...}}`` or MLflow's ``{"dataframe_split": {"columns": [...],
"data": [[...], ...]}}`` in (:func:`parse_v1`), ``{"predictions": [...]}`` out
(:func:`encode_v1`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlkernel.errors import UsageError
from mlkernel.models.signature import Signature

__all__ = [
    "DATATYPES",
    "PREDICT",
    "PROBA",
    "InferenceRequest",
    "ProtocolError",
    "Tensor",
    "datatype_of",
    "encode_error",
    "encode_response",
    "encode_v1",
    "model_metadata",
    "output_tensor",
    "parse_request",
    "parse_v1",
    "request_columns",
]

PREDICT = "predict"
PROBA = "predict_proba"

# Open Inference Protocol datatype -> NumPy dtype (BYTES: an object array of str).
DATATYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
# Signature column type -> the datatype a model's metadata advertises for it.
_ADVERTISED = {
    "int": "INT64",
    "float": "FP64",
    "bool": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
}


class ProtocolError(UsageError):
    """A request the server cannot take: HTTP 400, with a message naming the bad part."""

    http_status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass(frozen=True)
class Tensor:
    """One input tensor of a request, its data as a NumPy array of ``shape``."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: Any
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceRequest:
    inputs: tuple[Tensor, ...]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # the output names asked for; empty: all


# -- requests ---------------------------------------------------------------------------


def _json(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        parsed = json.loads(body)
    except UnicodeDecodeError:
        raise ProtocolError("the request body is not UTF-8 text; send JSON") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"the request body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(parsed, dict):
        raise ProtocolError(f"the request body must be a JSON object, not {_json_type(parsed)}")
    return parsed


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} 'parameters' must be an object, not {_json_type(value)}")
    return value


def parse_request(body: bytes | str | Mapping[str, Any]) -> InferenceRequest:
    """An Open Inference Protocol inference request, checked: every input's name, shape,
    datatype and data (its count, nesting and element types)."""
    request = _json(body)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"'id' must be a string, not {_json_type(request_id)}")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("the request needs 'inputs': a non-empty array of tensors")
    tensors = tuple(_tensor(raw, i) for i, raw in enumerate(inputs))
    names = [t.name for t in tensors]
    for name in names:
        if names.count(name) > 1:
            raise ProtocolError(f"input {name!r} is given twice")
    outputs = request.get("outputs") or []
    if not isinstance(outputs, list):
        raise ProtocolError("'outputs' must be an array of {\"name\": ...}")
    wanted: list[str] = []
    for raw in outputs:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ProtocolError("each requested output is an object with a string 'name'")
        wanted.append(raw["name"])
    return InferenceRequest(
        inputs=tensors,
        id=request_id,
        parameters=_parameters(request.get("parameters"), "the request's"),
        outputs=tuple(wanted),
    )


def _tensor(raw: Any, index: int) -> Tensor:
    if not isinstance(raw, dict):
        raise ProtocolError(f"inputs[{index}] must be an object, not {_json_type(raw)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"inputs[{index}] needs a 'name' (a non-empty string)")
    where = f"input {name!r}"
    for key in ("shape", "datatype", "data"):
        if key not in raw:
            raise ProtocolError(f"{where} has no {key!r}")
    shape = raw["shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ProtocolError(f"{where} has shape {shape!r}; a shape is a list of integers >= 0")
    datatype = raw["datatype"]
    if datatype not in DATATYPES:
        raise ProtocolError(f"{where} has datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
    data = raw["data"]
    if not isinstance(data, list):
        raise ProtocolError(f"{where} 'data' must be an array, not {_json_type(data)}")
    flat = _flatten(data, shape, where)
    array = _typed(flat, datatype, where).reshape(shape)
    return Tensor(name, tuple(shape), datatype, array, _parameters(raw.get("parameters"), where))


def _flatten(data: list[Any], shape: list[int], where: str) -> list[Any]:
    """The elements of ``data``, flat (as given) or nested exactly as ``shape``."""
    count = math.prod(shape)
    if not data or not isinstance(data[0], list):
        if any(isinstance(v, (list, dict)) for v in data):
            raise ProtocolError(f"{where} 'data' mixes arrays and values; nest it as the shape")
        if len(data) != count:
            raise ProtocolError(f"{where} has {len(data)} values; shape {shape} needs {count}")
        return data
    flat: list[Any] = []

    def walk(node: Any, depth: int) -> None:
        if depth == len(shape):
            if isinstance(node, (list, dict)):
                raise ProtocolError(f"{where} 'data' is nested deeper than shape {shape}")
            flat.append(node)
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            got = len(node) if isinstance(node, list) else "a value"
            raise ProtocolError(
                f"{where} 'data' is not nested as shape {shape}: dimension {depth} has "
                f"{got} where the shape says {shape[depth]}"
            )
        for child in node:
            walk(child, depth + 1)

    walk(data, 0)
    return flat


def _typed(flat: list[Any], datatype: str, where: str) -> Any:
    import numpy as np

    dtype = DATATYPES[datatype]
    if datatype == "BYTES":
        for i, value in enumerate(flat):
            if not isinstance(value, str) and value is not None:
                raise ProtocolError(
                    f"{where} is BYTES but element {i} is {_json_type(value)} ({value!r}); "
                    "send strings"
                )
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    if datatype == "BOOL":
        for i, value in enumerate(flat):
            if not isinstance(value, bool):
                raise ProtocolError(
                    f"{where} is BOOL but element {i} is {_json_type(value)} ({value!r}); "
                    "send true or false"
                )
        return np.array(flat, dtype=bool)
    floating = datatype.startswith("FP")
    for i, value in enumerate(flat):
        if value is None and floating:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(
                f"{where} is {datatype} but element {i} is {_json_type(value)} ({value!r}); "
                "send numbers"
            )
        if not floating and isinstance(value, float):
            raise ProtocolError(
                f"{where} is {datatype} but element {i} is {value!r}; send whole numbers"
            )
    if floating:
        return np.array([math.nan if v is None else v for v in flat], dtype=dtype)
    info = np.iinfo(dtype)
    if flat:
        low, high = min(flat), max(flat)
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise ProtocolError(
                f"{where} is {datatype} but holds {bad}, outside [{info.min}, {info.max}]"
            )
    return np.array(flat, dtype=dtype)


def request_columns(request: InferenceRequest, signature: Signature) -> dict[str, Any]:
    """The request's inputs as the signature's columns (NumPy arrays of its types), by
    one tensor per column or by one 2-D tensor in the signature's column order."""
    known = set(signature.names)
    tensors = request.inputs
    if len(tensors) == 1:
        tensor = tensors[0]
        one_column = tensor.name in known and (len(tensor.shape) == 1 or tensor.shape[1:] == (1,))
        if not one_column:
            return _check(signature, _matrix_columns(tensor, signature))
    columns: dict[str, Any] = {}
    for tensor in tensors:
        if tensor.name not in known:
            raise ProtocolError(
                f"unknown input {tensor.name!r}; the model takes {_few(signature.names)} (one "
                "tensor per column, or one [N, K] tensor in that order)"
            )
        if len(tensor.shape) == 1:
            columns[tensor.name] = tensor.data
        elif len(tensor.shape) == 2 and tensor.shape[1] == 1:
            columns[tensor.name] = tensor.data[:, 0]
        else:
            raise ProtocolError(
                f"input {tensor.name!r} has shape {list(tensor.shape)}; a column is [N] or [N, 1]"
            )
    return _check(signature, columns)


def _matrix_columns(tensor: Tensor, signature: Signature) -> dict[str, Any]:
    where = f"input {tensor.name!r}"
    if len(tensor.shape) != 2:
        raise ProtocolError(
            f"{where} has shape {list(tensor.shape)}; send one [N, {len(signature.inputs)}] "
            f"tensor or one tensor per column ({_few(signature.names)})"
        )
    width = tensor.shape[1]
    needed = _required_width(signature)
    if not needed <= width <= len(signature.inputs):
        span = (
            str(needed)
            if needed == len(signature.inputs)
            else f"{needed} to {len(signature.inputs)}"
        )
        raise ProtocolError(
            f"{where} has {width} columns; the model takes {span} in this order: "
            f"{_few(signature.names)}"
        )
    return {signature.inputs[i].name: tensor.data[:, i] for i in range(width)}


def _required_width(signature: Signature) -> int:
    """How many leading columns a 2-D tensor must carry: up to the last required one."""
    width = len(signature.inputs)
    while width and signature.inputs[width - 1].optional:
        width -= 1
    return width


def _check(signature: Signature, columns: dict[str, Any]) -> dict[str, Any]:
    try:
        return signature.coerce(columns)
    except UsageError as exc:
        raise ProtocolError(exc.message) from None


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


# -- responses ----------------------------------------------------------------------------


def datatype_of(array: Any) -> str:
    """The Open Inference Protocol datatype of a NumPy array."""
    import numpy as np

    dtype = np.asarray(array).dtype
    if dtype.kind in "OUS":
        return "BYTES"
    for name, numpy_name in DATATYPES.items():
        if numpy_name == dtype.name:
            return name
    raise ProtocolError(f"the model returned {dtype} values, which no datatype carries", 500)


def output_tensor(name: str, array: Any) -> dict[str, Any]:
    """One response output: name, shape, datatype and flat row-major data (NaN -> null)."""
    import numpy as np

    values = np.asarray(array)
    return {
        "name": name,
        "shape": list(values.shape),
        "datatype": datatype_of(values),
        "data": _plain(values.reshape(-1)),
    }


def _plain(values: Any) -> list[Any]:
    """A NumPy array as JSON-ready (nested) lists: text as str, NaN as null."""
    import numpy as np

    if values.dtype.kind in "OUS":
        out = [
            v.decode("utf-8") if isinstance(v, bytes) else v for v in values.reshape(-1).tolist()
        ]
        flat = [v if v is None or isinstance(v, str) else str(v) for v in out]
        return np.array(flat, dtype=object).reshape(values.shape).tolist()  # type: ignore[no-any-return]
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        values = values.astype(object)
        values[np.isnan(values.astype(float))] = None
    return values.tolist()  # type: ignore[no-any-return]


def encode_response(
    model_name: str,
    outputs: Mapping[str, Any],
    *,
    model_version: str | None = None,
    request: InferenceRequest | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An inference response with ``outputs`` (name -> array); with ``request``, its id
    and only the outputs it asked for (a name the model lacks is a ProtocolError)."""
    chosen = dict(outputs)
    if request is not None and request.outputs:
        unknown = [n for n in request.outputs if n not in outputs]
        if unknown:
            raise ProtocolError(
                f"the request asks for output {unknown[0]!r}; the model gives {_few(list(outputs))}"
            )
        chosen = {n: outputs[n] for n in request.outputs}
    body: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        body["model_version"] = model_version
    if request is not None and request.id is not None:
        body["id"] = request.id
    if parameters:
        body["parameters"] = dict(parameters)
    body["outputs"] = [output_tensor(n, a) for n, a in chosen.items()]
    return body


def encode_error(error: Exception | str) -> dict[str, str]:
    """The protocol's error body."""
    return {"error": str(error)}


def model_metadata(
    name: str,
    signature: Signature,
    *,
    versions: Sequence[str] = (),
    platform: str = "mlkernel",
    proba: bool = False,
) -> dict[str, Any]:
    """The model metadata response: one ``[-1]`` input per signature column and the
    outputs the server gives (``predict``, and ``predict_proba`` with ``proba``)."""
    body: dict[str, Any] = {"name": name}
    if versions:
        body["versions"] = list(versions)
    body["platform"] = platform
    body["inputs"] = [
        {"name": c.name, "datatype": _ADVERTISED[c.type], "shape": [-1]} for c in signature.inputs
    ]
    outputs = [
        {
            "name": PREDICT,
            "datatype": _ADVERTISED[signature.outputs[0].type] if signature.outputs else "FP64",
            "shape": [-1],
        }
    ]
    if proba:
        outputs.append({"name": PROBA, "datatype": "FP64", "shape": [-1, -1]})
    body["outputs"] = outputs
    return body


# -- v1: records or columns ---------------------------------------------------------------


def parse_v1(
    body: bytes | str | Mapping[str, Any], signature: Signature | None = None
) -> dict[str, Any]:
    """A v1 request's columns: with ``signature``, coerced to its types (a ProtocolError
    names every bad column); without, as sent (NumPy arrays)."""
    import numpy as np

    request = _json(body)
    forms = [k for k in ("records", "columns", "dataframe_split") if k in request]
    if len(forms) != 1:
        raise ProtocolError(
            'send exactly one of {"records": [{...}, ...]}, {"columns": {name: [...]}} '
            'or {"dataframe_split": {"columns": [...], "data": [[...]]}}'
        )
    form = forms[0]
    if form == "records":
        columns = _records(request["records"], signature)
    elif form == "columns":
        raw = request["columns"]
        if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
            raise ProtocolError("'columns' must be an object of column name -> array of values")
        columns = raw
    else:
        columns = _split(request["dataframe_split"])
    if signature is not None:
        return _check(signature, columns)
    out: dict[str, Any] = {}
    for name, values in columns.items():
        array = np.empty(len(values), dtype=object)
        array[:] = values
        out[name] = _narrow(array)
    return out


def _narrow(array: Any) -> Any:
    """An object array of JSON scalars as the NumPy type they share, if any."""
    import numpy as np

    kinds = {type(v) for v in array.tolist()}
    for group, dtype in (({bool}, bool), ({int}, np.int64), ({int, float}, np.float64)):
        if kinds and kinds <= group:
            return array.astype(dtype)
    return array


def _records(records: Any, signature: Signature | None) -> dict[str, list[Any]]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProtocolError("'records' must be an array of objects, one per row")
    names: list[str] = []
    if signature is not None:
        names = signature.names
    else:
        seen: dict[str, None] = {}
        for record in records:
            seen.update(dict.fromkeys(record))
        names = list(seen)
    optional = {c.name for c in signature.inputs if c.optional} if signature else set()
    columns: dict[str, list[Any]] = {}
    for name in names:
        values: list[Any] = []
        for i, record in enumerate(records):
            if name in record:
                values.append(record[name])
            elif name in optional or signature is None:
                values.append(None)
            elif i == 0 and not any(name in r for r in records):
                break  # absent from every record: the signature check says "missing"
            else:
                raise ProtocolError(f"record {i} has no {name!r}; every record needs it")
        else:
            columns[name] = values
    return columns


def _split(split: Any) -> dict[str, list[Any]]:
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise ProtocolError('\'dataframe_split\' is {"columns": [names], "data": [[row], ...]}')
    names = [str(n) for n in split["columns"]]
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(split["data"]):
        if not isinstance(row, list) or len(row) != len(names):
            raise ProtocolError(
                f"dataframe_split row {i} has {len(row) if isinstance(row, list) else 'no'} "
                f"values; there are {len(names)} columns"
            )
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    return columns


def encode_v1(predictions: Any, probabilities: Any = None) -> dict[str, Any]:
    """``{"predictions": [...]}`` (and ``"probabilities": [[...], ...]`` when given), each
    as nested as the model's output."""
    import numpy as np

    body: dict[str, Any] = {"predictions": _plain(np.asarray(predictions))}
    if probabilities is not None:
        body["probabilities"] = _plain(np.asarray(probabilities))
    return body

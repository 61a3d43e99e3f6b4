"""The ONNX flavor (ONNX Runtime on the CPU) and the scikit-learn -> ONNX conversion.

An ONNX model is a ``onnx.ModelProto`` (or its serialised bytes, logged with
``flavor="onnx"``); it is stored as ``model.onnx`` and loaded into an
``onnxruntime.InferenceSession`` with the CPU provider.

Inputs: a model with one 2-D input takes the columns as one matrix, in the order the
``mlkernel.columns`` metadata entry names (written by :func:`to_onnx`), else the order
given; a model with several inputs takes one column per input, by name. Outputs follow
skl2onnx's convention: the first output is the prediction and a second 2-D float output,
when there is one, the class probabilities.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlkernel.errors import IntegrityError, UsageError
from mlkernel.models.base import LoadedModel, library_versions
from mlkernel.models.signature import Signature

__all__ = ["COLUMNS_KEY", "OnnxFlavor", "to_onnx"]

FILE = "model.onnx"
COLUMNS_KEY = "mlkernel.columns"
_NUMPY_OF = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    name = "onnx"
    unsafe = False

    def handles(self, obj: Any) -> bool:
        if type(obj).__module__.split(".")[0] != "onnx":
            return False
        import onnx

        return isinstance(obj, onnx.ModelProto)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        import onnx

        if isinstance(obj, (bytes, bytearray, memoryview)):
            data = bytes(obj)
            try:
                model = onnx.load_from_string(data)
            except Exception as exc:  # the protobuf decoder's errors have no common base
                raise UsageError(
                    f"these bytes are not an ONNX model ({exc}); pass a .onnx file's content"
                ) from None
        elif isinstance(obj, onnx.ModelProto):
            model, data = obj, obj.SerializeToString()
        else:
            raise UsageError(
                f"the onnx flavor takes an onnx.ModelProto or bytes, not a {type(obj).__name__}"
            )
        (folder / FILE).write_bytes(data)
        properties: dict[str, Any] = {
            "flavor": self.name,
            "format": "onnx",
            "files": [FILE],
            "model_class": "onnx.ModelProto",
            "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
            "libraries": library_versions("onnx", "onnxruntime"),
            "inputs": [i.name for i in model.graph.input],
            "outputs": [o.name for o in model.graph.output],
            "predict_proba": len(model.graph.output) > 1,
            "unsafe": False,
        }
        columns = _columns_entry(model)
        if columns is not None:
            properties["feature_names"] = columns
        return properties

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel:
        import onnxruntime as ort

        path = folder / FILE
        if not path.is_file():
            raise IntegrityError(f"the model folder {folder} has no {FILE}; the version is damaged")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings on stderr per load
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return _loaded(session, properties)


def _columns_entry(model: Any) -> list[str] | None:
    for entry in model.metadata_props:
        if entry.key == COLUMNS_KEY:
            names = json.loads(entry.value)
            return [str(n) for n in names]
    return None


def _loaded(session: Any, properties: dict[str, Any]) -> LoadedModel:
    import numpy as np

    inputs = session.get_inputs()
    outputs = session.get_outputs()
    names = properties.get("feature_names")
    single = len(inputs) == 1 and len(inputs[0].shape) == 2
    first = outputs[0].name
    proba_out = (
        outputs[1].name
        if len(outputs) > 1 and outputs[1].type in ("tensor(float)", "tensor(double)")
        else None
    )

    def feed(data: Any) -> dict[str, Any]:
        if single:
            dtype = _NUMPY_OF.get(inputs[0].type, "float32")
            return {inputs[0].name: np.ascontiguousarray(data, dtype=dtype)}
        return {
            i.name: np.asarray(data[:, n], dtype=_NUMPY_OF.get(i.type, "float32")).reshape(
                (-1, 1) if len(i.shape) == 2 else (-1,)
            )
            for n, i in enumerate(inputs)
        }

    def predict(data: Any) -> Any:
        return session.run([first], feed(data))[0]

    def proba(data: Any) -> Any:
        return session.run([proba_out], feed(data))[0]

    by_input = tuple(i.name for i in inputs)
    columns = (tuple(names) if names else None) if single else by_input
    return LoadedModel(
        flavor="onnx",
        raw=session,
        columns=columns,
        predictor=predict,
        proba=proba if proba_out else None,
        properties=dict(properties),
    )


def to_onnx(model: Any, signature: Signature, *, opset: int | None = None) -> bytes:
    """``model`` (a fitted scikit-learn estimator or pipeline on numeric columns) as an
    ONNX model taking one float32 matrix ``input`` whose columns follow ``signature``.

    Classifiers give ``label`` and a ``probabilities`` matrix (skl2onnx without its
    ZipMap). The column names are kept in the model's metadata (``mlkernel.columns``).
    Predictions match scikit-learn's up to float32 rounding."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    text = [c.name for c in signature.inputs if c.type in ("string", "category")]
    if text:
        raise UsageError(
            f"column {text[0]!r} is text; ONNX conversion takes numeric columns only, so "
            "serve this model with its scikit-learn flavor"
        )
    width = len(signature.inputs)
    try:
        proto = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, width]))],
            options={"zipmap": False} if hasattr(model, "predict_proba") else None,
            target_opset=opset,
        )
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"skl2onnx cannot convert this {type(model).__name__} ({first}); serve it with its "
            "scikit-learn flavor"
        ) from None
    entry = proto.metadata_props.add()
    entry.key = COLUMNS_KEY
    entry.value = json.dumps(signature.names)
    data: bytes = proto.SerializeToString()
    return data

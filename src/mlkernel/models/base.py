"""What every flavor provides: the :class:`Flavor` protocol and the :class:`LoadedModel`
it hands back, which turns columns, tables or a matrix into the model's input."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from mlkernel.errors import UsageError
from mlkernel.models.columns import to_columns

__all__ = ["Flavor", "LoadedModel", "as_matrix", "library_versions", "type_name"]

Predict = Callable[[Any], Any]


class Flavor(Protocol):
    """How one library's models are written to a folder and read back.

    ``save`` writes files into an existing, empty folder and returns the properties to
    record with the version (JSON-serialisable; ``flavor``, ``format``, ``files``,
    ``libraries``, ``unsafe`` at least). ``load`` reads them back; it never runs code
    from the files unless the flavor is ``unsafe``."""

    name: str
    unsafe: bool

    def handles(self, obj: Any) -> bool: ...

    def save(self, obj: Any, folder: Path) -> dict[str, Any]: ...

    def load(self, folder: Path, properties: dict[str, Any]) -> LoadedModel: ...


@dataclass
class LoadedModel:
    """A model read back by its flavor, ready to predict.

    ``predict`` and ``predict_proba`` take a mapping of column names to values, a pyarrow
    Table, a pandas or polars DataFrame (columns are picked by name, in ``columns``'
    order), or a 2-D NumPy matrix whose columns are already in that order."""

    flavor: str
    raw: Any  # the library's own object: estimator, Booster, InferenceSession, ...
    columns: tuple[str, ...] | None  # the input order the model was fitted on, if known
    predictor: Predict
    proba: Predict | None = None
    frame: bool = False  # the model selects columns by name: give it a DataFrame
    rename: Callable[[str], str] | None = None  # a caller's column name -> the model's
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def has_proba(self) -> bool:
        return self.proba is not None

    def predict(self, data: Any) -> Any:
        return self.predictor(self._input(data))

    def predict_proba(self, data: Any) -> Any:
        if self.proba is None:
            raise UsageError(
                f"this {self.flavor} model has no predict_proba (it is not a classifier "
                "with probabilities); call predict"
            )
        return self.proba(self._input(data))

    def _input(self, data: Any) -> Any:
        import numpy as np

        if isinstance(data, np.ndarray):
            if data.ndim != 2:
                raise UsageError(f"a model takes a 2-D matrix (rows x columns), not {data.shape}")
            if self.columns is not None and data.shape[1] != len(self.columns):
                raise UsageError(
                    f"the matrix has {data.shape[1]} columns; the model takes "
                    f"{len(self.columns)} ({_few(self.columns)})"
                )
            if self.frame:
                return _frame(dict(zip(self.columns or (), data.T, strict=True)))
            return data
        columns = to_columns(data)
        if self.rename is not None:
            columns = {self.rename(name): values for name, values in columns.items()}
        names = self.columns if self.columns is not None else tuple(columns)
        missing = [n for n in names if n not in columns]
        if missing:
            raise UsageError(f"missing column(s) {_few(missing)}; the model takes {_few(names)}")
        if self.frame:
            return _frame({n: columns[n] for n in names})
        return as_matrix([columns[n] for n in names])


def as_matrix(arrays: Sequence[Any]) -> Any:
    """Equal-length 1-D arrays as one row-major matrix: float64 when all are numbers or
    bools, else an object matrix."""
    import numpy as np

    if not arrays:
        raise UsageError("the model input has no columns")
    kinds = {np.asarray(a).dtype.kind for a in arrays}
    dtype: Any = np.float64 if kinds <= set("biuf") else object
    out = np.empty((len(arrays[0]), len(arrays)), dtype=dtype)
    for i, values in enumerate(arrays):
        if len(values) != out.shape[0]:
            raise UsageError("the input columns have different lengths; send one value per row")
        out[:, i] = values
    return out


def _frame(columns: dict[str, Any]) -> Any:
    """A DataFrame for models that select columns by name (ColumnTransformer): pandas if
    installed, else polars (scikit-learn takes both)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in dev
        import polars as pl

        return pl.DataFrame(columns)
    return pd.DataFrame(columns)


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def library_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of ``distributions`` (those installed), to record with a model."""
    out: dict[str, str] = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def type_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"

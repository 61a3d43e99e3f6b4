"""What the run service's operations return (``k.tracking``): typed, with ``to_dict()``
giving the JSON ``--json`` prints. Imported when an operation builds one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.meta.records import ExecutionRecord

__all__ = ["MetricSummary", "RunInfo"]


@dataclass(frozen=True)
class MetricSummary:
    """One metric of a run: its last value as logged (NaN included), the number of steps,
    and its extremes leaving NaN out (NaN when every value is NaN)."""

    last: float
    steps: int
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> MetricSummary:
        """The summary of one metric's values in step order."""
        numbers = [v for v in values if not math.isnan(v)]
        return cls(
            last=values[-1],
            steps=len(values),
            min=min(numbers) if numbers else math.nan,
            max=max(numbers) if numbers else math.nan,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"last": self.last, "steps": self.steps, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class RunInfo:
    """One run: its record, parameters, metric summaries, inputs, outputs, environment."""

    record: ExecutionRecord
    params: dict[str, Any]
    metrics: dict[str, MetricSummary]
    inputs: list[str]  # references of the artifacts it read
    outputs: list[str]  # and of those it wrote
    environment: str | None  # the reference of its Python environment

    def to_dict(self) -> dict[str, Any]:
        info = self.record.to_dict()
        info["params"] = dict(self.params)
        info["metrics"] = {k: m.to_dict() for k, m in self.metrics.items()}
        info["inputs"] = list(self.inputs)
        info["outputs"] = list(self.outputs)
        if self.environment is not None:
            info["environment"] = self.environment
        return info

"""What the pipeline service answers about runs: typed, frozen, and each with a
``to_dict()`` that is exactly what ``mlk runs ls/show --json`` print (issue 12).

A light module: it imports no heavy library, so the CLI can render from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.meta.records import ExecutionRecord
    from mlkernel.tracking.results import RunInfo

__all__ = [
    "PipelineParams",
    "PipelineRunInfo",
    "RunPipeline",
    "RunSummary",
    "StepBrief",
    "StepInfo",
]


@dataclass(frozen=True)
class PipelineParams:
    """The parameter overrides a run of pipeline ``pipeline`` gets: mlkernel.toml's
    ``[pipelines.params.NAME]`` (flattened, ``step.key`` for a step's), then those given."""

    pipeline: str
    values: dict[str, Any]  # user parameter values, as written

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class StepBrief:
    """A step of a listed pipeline run: its name, how it went, its execution."""

    name: str
    state: str
    id: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "id": self.id}


@dataclass(frozen=True)
class RunSummary:
    """A run as ``mlk runs ls`` lists it; a pipeline run with its steps' states."""

    record: ExecutionRecord
    steps: tuple[StepBrief, ...] | None  # None: not a pipeline run

    def to_dict(self) -> dict[str, Any]:
        info = self.record.to_dict()
        if self.steps is not None:
            info["steps"] = [s.to_dict() for s in self.steps]
        return info


@dataclass(frozen=True)
class StepInfo:
    """One step execution of a pipeline run (a tuning trial is one too): how it went,
    its output, cache key and resources, its parameters and metrics (a cached step shows
    those of the execution whose output it reused)."""

    id: int
    name: str
    state: str  # ran, cached, failed, skipped, cancelled, running, lost
    duration: float | None
    output: str | None  # the reference of its output artifact
    error: str | None
    cache_key: str | None
    max_rss_kb: int | None
    attempts: int | None
    cached_from: int | None
    started_at: float
    ended_at: float | None
    tune: str | None  # a tuning trial: the tuning step it belongs to
    trial: int | None
    searched: dict[str, Any] | None  # a trial: the parameter values the search chose
    score: float | None
    best: dict[str, Any] | None  # a tuning step: its best trial, metric and direction
    params: dict[str, Any]  # user parameter values
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "duration": self.duration,
            "output": self.output,
            "error": self.error,
            "cache_key": self.cache_key,
            "max_rss_kb": self.max_rss_kb,
            "attempts": self.attempts,
            "cached_from": self.cached_from,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "tune": self.tune,
            "trial": self.trial,
            "searched": self.searched,
            "score": self.score,
            "best": self.best,
            "params": self.params,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class RunPipeline:
    """How a pipeline run was asked for, as its context recorded it."""

    spec: str | None  # the pipeline as named (None: started from Python)
    executor: str | None
    overrides: dict[str, Any] | None  # user parameter values
    trigger: Mapping[str, Any] | None  # what fired it (name, type, reason, at), as stored
    resumed_from: int | None

    @classmethod
    def of(cls, properties: Mapping[str, Any]) -> RunPipeline:
        return cls(
            spec=properties.get("spec"),
            executor=properties.get("executor"),
            overrides=properties.get("overrides"),
            trigger=properties.get("trigger"),
            resumed_from=properties.get("resumed_from"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "executor": self.executor,
            "overrides": self.overrides,
            "trigger": dict(self.trigger) if self.trigger is not None else None,
            "resumed_from": self.resumed_from,
        }


@dataclass(frozen=True)
class PipelineRunInfo:
    """One run as ``mlk runs show`` shows it: the tracking service's :class:`RunInfo`
    and, for a pipeline run, how it was asked for and its steps."""

    run: RunInfo
    pipeline: RunPipeline | None = None  # None: not a pipeline run
    steps: tuple[StepInfo, ...] | None = None

    @property
    def record(self) -> ExecutionRecord:
        return self.run.record

    def to_dict(self) -> dict[str, Any]:
        info = self.run.to_dict()
        if self.pipeline is not None:
            info["pipeline"] = self.pipeline.to_dict()
        if self.steps is not None:
            info["steps"] = [s.to_dict() for s in self.steps]
        return info

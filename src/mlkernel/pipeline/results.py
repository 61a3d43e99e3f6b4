"""What a pipeline run takes (:class:`RunOptions`) and returns (:class:`RunResult`, one
:class:`StepResult` per step), and the echo its progress lines go to.

The bottom of the runner: the cache, the recording and the loop all use these types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunOptions", "RunResult", "SafeEcho", "StepResult"]


@dataclass(slots=True)
class RunOptions:
    executor: str | None = None  # default: [pipelines] executor, else "process"
    workers: int | None = None  # default: [pipelines] workers, else min(4, CPUs)
    force: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    echo: Callable[[str], None] | None = None  # live step output and progress lines
    trigger: dict[str, Any] | None = None  # what fired the run
    ml_mode: bool | None = None  # default: [pipelines] ml_mode, else true
    resume: int | None = None


@dataclass(slots=True)
class StepResult:
    name: str
    state: str  # ran | cached | failed | skipped | cancelled
    execution_id: int | None = None
    output: str | None = None
    error: str | None = None
    duration: float | None = None
    metrics: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class RunResult:
    id: int
    pipeline: str
    state: str  # completed | failed | cancelled
    steps: dict[str, StepResult]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "state": self.state,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps.values()],
        }

    def output(self, step: str) -> str | None:
        return self.steps[step].output


class SafeEcho:
    """The caller's echo, made harmless to the run: an echo that fails (a terminal that
    went away, a closed stream) is dropped after its first failure, and the run, its
    record and its result go on as if nobody watched."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo: Callable[[str], None] | None = echo

    def __call__(self, line: str) -> None:
        echo = self._echo
        if echo is None:
            return
        try:
            echo(line)
        except (OSError, ValueError):  # EPIPE, or "I/O operation on closed file"
            self._echo = None

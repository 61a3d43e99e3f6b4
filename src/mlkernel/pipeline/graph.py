"""A traced pipeline: its nodes (steps with their arguments) in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlkernel.pipeline.values import Ref, StepOptions

__all__ = ["Graph", "Node"]


@dataclass(slots=True)
class Node:
    """One step in a traced pipeline: its arguments are outputs, refs or literal values."""

    name: str
    step: Any  # a Step, or a tuning node (see tune.py)
    args: dict[str, Any]  # parameter name -> Output | Ref | value
    params: dict[str, Any]  # defaults of the parameters not passed (overridable)
    upstream: list[str] = field(default_factory=list)

    @property
    def options(self) -> StepOptions:
        options: StepOptions = self.step.options
        return options


@dataclass(slots=True)
class Graph:
    """A traced pipeline: nodes in an order where every node follows its upstream."""

    name: str
    nodes: dict[str, Node]
    params: dict[str, Any]  # the pipeline function's own parameters

    def downstream(self, name: str) -> list[str]:
        return [n.name for n in self.nodes.values() if name in n.upstream]

    def levels(self) -> dict[str, int]:
        level: dict[str, int] = {}
        for node in self.nodes.values():
            level[node.name] = 1 + max((level[u] for u in node.upstream), default=-1)
        return level

    def draw(self) -> str:
        """The DAG as text: one line per step, indented by depth, with its inputs."""
        level = self.levels()
        width = max(len(n) + 2 * level[n] for n in self.nodes)
        lines = [f"pipeline {self.name}"]
        for node in self.nodes.values():
            sources = [f"<- {u}" for u in node.upstream]
            sources += [f"<- {v}" for v in node.args.values() if isinstance(v, Ref)]
            label = "  " * level[node.name] + node.name
            out = getattr(node.step, "output", None)
            tail = f"  -> {out}" if out else ""
            lines.append(f"  {label:<{width}}  {', '.join(sources) or '(no inputs)'}{tail}")
        return "\n".join(lines)

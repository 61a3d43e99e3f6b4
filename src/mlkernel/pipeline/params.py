"""Pipeline parameters: defaults in code, ``[pipelines.params.NAME]`` in mlkernel.toml,
``-p key=value`` on the command line (later sources win).

A key is ``param`` (the pipeline function's parameter, else that parameter of every step
that has it) or ``step.param`` (one step's parameter). A tuning node also takes its
settings (``n_trials``, ``seed``), and a tuned parameter set to one value leaves its
search. Every value is checked against the annotation of the function that takes it
(annotations.py) when the pipeline is built, before any step runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mlkernel.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from mlkernel.pipeline.graph import Graph, Node

__all__ = ["apply_overrides", "config_params", "parse_assignments"]


def parse_value(text: str) -> Any:
    """A TOML value (``0.1``, ``true``, ``[1, 2]``, ``"x"``), else the text itself."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"parameter {item!r} is not KEY=VALUE; write e.g. -p lr=0.1")
        found[key.strip()] = parse_value(value.strip())
    return found


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and not prefix:
            flat.update(_flatten(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_params(params: Any, pipeline: str) -> dict[str, Any]:
    """``[pipelines.params.<pipeline>]`` flattened (a sub-table names a step); ``params``
    is ``[pipelines.params]`` (:attr:`PipelineSettings.params`)."""
    if not isinstance(params, dict):
        raise ConfigError("mlkernel.toml: [pipelines.params] must be a table of pipelines")
    table = params.get(pipeline, {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"mlkernel.toml: [pipelines.params.{pipeline}] must be a table of key = value"
        )
    return _flatten(table)


def _settings(node: Node) -> tuple[str, ...]:
    """Settings of a tuning node (``n_trials``, ``seed``) that overrides may set."""
    settings: tuple[str, ...] = getattr(node.step, "SETTINGS", ())
    return settings


def _settable(node: Node, key: str) -> bool:
    from mlkernel.pipeline.values import Output, Ref

    if key in node.params or key in _settings(node):
        return True
    return key in node.args and not isinstance(node.args[key], Output | Ref)


def _settable_names(node: Node) -> set[str]:
    return {k for k in {**node.args, **node.params} if _settable(node, k)} | set(_settings(node))


def _close(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when one of ``choices`` is close to ``word``."""
    import difflib

    by_lower = {c.lower(): c for c in sorted(choices)}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[found[0]]!r}?)" if found else ""


def _targets(graph: Graph, key: str) -> tuple[list[Node], str]:
    """The nodes ``key`` sets (``param`` or ``step.param``) and the parameter's name."""
    step_name, dot, param = key.rpartition(".")
    if not dot:
        targets = [n for n in graph.nodes.values() if _settable(n, key)]
        if not targets:
            known = {p for n in graph.nodes.values() for p in _settable_names(n)}
            known |= set(graph.params)
            qualified = {f"{n.name}.{p}" for n in graph.nodes.values() for p in _settable_names(n)}
            raise UsageError(
                f"pipeline {graph.name} has no parameter {key!r}"
                f"{_close(key, known | qualified)}; parameters: "
                f"{', '.join(sorted(known)) or 'none'}"
            )
        return targets, key
    node = graph.nodes.get(step_name)
    if node is None:
        raise UsageError(
            f"parameter {key!r}: pipeline {graph.name} has no step {step_name!r}"
            f"{_close(step_name, graph.nodes)}; steps: {', '.join(graph.nodes)}"
        )
    if not _settable(node, param):
        names = _settable_names(node)
        raise UsageError(
            f"parameter {key!r}: step {step_name} has no parameter {param!r}"
            f"{_close(param, names)}; it has: {', '.join(sorted(names)) or 'none'}"
        )
    return [node], param


def apply_overrides(graph: Graph, overrides: Mapping[str, Any]) -> None:
    """Set each override on the nodes it names, checked against the step functions'
    annotations (see annotations.py) before anything runs. On a tuning node, a tuned
    parameter set to one value is taken out of the search, and ``n_trials`` / ``seed``
    set the search's settings."""
    from mlkernel.pipeline.annotations import check_value

    for key, value in overrides.items():
        targets, name = _targets(graph, key)
        for node in targets:
            if name in _settings(node) and name not in node.params:
                node.step.set_setting(name, value)
                continue
            fitted = check_value(node.step.fn, name, value, f"step {node.name}")
            if name in node.params:
                node.params[name] = fitted
            else:
                node.args[name] = fitted
            fix = getattr(node.step, "fix", None)
            if fix is not None:  # a tuned parameter set to one value is not searched
                fix(name)

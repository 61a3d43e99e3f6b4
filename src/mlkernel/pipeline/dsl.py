"""The pipeline DSL: ``@step`` functions composed in a ``@pipeline`` function.

Calling a step inside a pipeline function does not run it: it adds a node to the graph
being traced and returns an :class:`Output` placeholder, which other steps take as an
argument. Outside a pipeline a step is the plain function, so it can be unit-tested.

>>> @step(output="model:churn")
... def train(data, lr: float = 0.1): ...
>>> @pipeline
... def churn():
...     train(prepare(Ref("dataset:train")))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from mlkernel.errors import UsageError
from mlkernel.pipeline.values import Output, Ref, StepOptions

if TYPE_CHECKING:
    from mlkernel.pipeline.graph import Graph, Node

__all__ = [
    "Metrics",
    "Output",
    "Pipeline",
    "Ref",
    "Step",
    "StepOptions",
    "pipeline",
    "step",
]

P = ParamSpec("P")
R = TypeVar("R")

#: kinds a step's output may be stored as (a ``dataset`` output must be a table, see
#: :mod:`mlkernel.data.tables`).
OUTPUT_KINDS = ("step", "model", "report", "file", "profile", "dataset")


class Metrics(dict[str, float]):
    """Metric values. A step returning ``Metrics`` (or ``(value, Metrics)``) logs them as its
    metrics; the dict (or ``value``) still flows to the steps downstream. Each value must be
    a number (anything ``float()`` takes); another is refused here, naming the metric.

    Defined here, not in values.py: a step output that is a ``Metrics`` is pickled, and its
    recorded ``python_type`` (and digest) name this module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            _check_metric(key, value)

    def __setitem__(self, key: str, value: float) -> None:
        _check_metric(key, value)
        super().__setitem__(key, value)


def _check_metric(key: object, value: object) -> None:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(
            f"metric {key!r} is {value!r}, not a number; give mlk.Metrics numbers"
        ) from None


def _wraps(wrapper: Any, fn: Any) -> None:
    """``functools.update_wrapper`` without importing functools in the worker."""
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            object.__setattr__(wrapper, attr, getattr(fn, attr))
        except (AttributeError, TypeError):
            continue
    wrapper.__wrapped__ = fn


class Step(Generic[P, R]):
    """A function made a pipeline step by ``@step``."""

    def __init__(self, fn: Callable[P, R], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        _wraps(self, fn)

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def output(self) -> str:
        return f"{self.options.output_kind}:{self.options.output_name or self.name}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        tracer = _Tracer.current
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add(self, args, kwargs)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _check_options(name: str, retries: int, timeout: float | None, output: str | None) -> None:
    from mlkernel.refs import validate_name

    validate_name(name, "step name")
    if retries < 0:
        raise UsageError(f"step {name}: retries is {retries}; use 0 or more")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"step {name}: timeout is {timeout}; use a positive number of seconds")
    if output is not None:
        kind, _, out_name = output.rpartition(":")
        if kind and kind not in OUTPUT_KINDS:
            raise UsageError(
                f"step {name}: output kind {kind!r} cannot be produced by a step; "
                f"use one of {', '.join(OUTPUT_KINDS)}"
            )
        validate_name(out_name, "step output name")


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    timeout: float | None = None,
    output: str | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    timeout: float | None = None,
    output: str | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make ``fn`` a pipeline step.

    ``output="model:churn"`` stores the return value as that artifact (default: kind
    ``step``, named after the step); ``cache=False`` runs it every time; ``retries`` and
    ``timeout`` (seconds) apply to each run of it.
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        step_name = name or f.__name__
        _check_options(step_name, retries, timeout, output)
        kind, out_name = "step", None
        if output is not None:
            head, _, out_name = output.rpartition(":")
            kind = head or "step"
        options = StepOptions(step_name, cache, retries, timeout, kind, out_name)
        return Step(f, options)

    return wrap(fn) if fn is not None else wrap


# -- tracing ---------------------------------------------------------------------------


class _Tracer:
    current: _Tracer | None = None

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Output:
        import inspect

        fn = target.fn
        try:
            bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"step {target.name}: {exc}") from None
        params: dict[str, Any] = {}
        for pname, parameter in inspect.signature(fn).parameters.items():
            if pname in bound.arguments or parameter.kind in (
                parameter.VAR_POSITIONAL,
                parameter.VAR_KEYWORD,
            ):
                continue
            if parameter.default is parameter.empty:
                raise UsageError(
                    f"step {target.name} needs argument {pname!r}; pass it where the "
                    "pipeline calls the step, or give it a default"
                )
            params[pname] = parameter.default
        name = target.name
        n = 2
        while name in self.nodes:  # the same step used twice in one pipeline
            name = f"{target.name}-{n}"
            n += 1
        upstream = sorted(
            {v.node for v in bound.arguments.values() if isinstance(v, Output)},
            key=list(self.nodes).index,
        )
        from mlkernel.pipeline.graph import Node

        self.nodes[name] = Node(name, target, dict(bound.arguments), params, upstream)
        return Output(name)


class Pipeline:
    """A function made a pipeline by ``@pipeline``; :meth:`build` traces it into a graph."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        _wraps(self, fn)

    def defaults(self) -> dict[str, Any]:
        import inspect

        return {
            p.name: p.default
            for p in inspect.signature(self.fn).parameters.values()
            if p.default is not p.empty
        }

    def build(self, overrides: Mapping[str, Any] | None = None) -> Graph:
        """Trace the pipeline with its parameters set from ``overrides`` (see params.py)."""
        from mlkernel.pipeline.annotations import check_value
        from mlkernel.pipeline.params import apply_overrides

        own = self.defaults()
        overrides = dict(overrides or {})
        for key in list(overrides):
            if key in own:
                own[key] = check_value(self.fn, key, overrides.pop(key), f"pipeline {self.name}")
        if _Tracer.current is not None:
            raise UsageError("pipelines cannot be built inside another pipeline; call its steps")
        tracer = _Tracer()
        _Tracer.current = tracer
        try:
            self.fn(**own)
        finally:
            _Tracer.current = None
        if not tracer.nodes:
            raise UsageError(f"pipeline {self.name} calls no step; call @mlk.step functions in it")
        from mlkernel.pipeline.graph import Graph

        graph = Graph(self.name, tracer.nodes, own)
        apply_overrides(graph, overrides)
        return graph

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Any:  # Pipeline, or a decorator making one
    """Make ``fn`` a pipeline: a function that calls steps and passes their outputs on."""
    from mlkernel.refs import validate_name

    def wrap(f: Callable[..., Any]) -> Pipeline:
        pipe_name = name or f.__name__
        validate_name(pipe_name, "pipeline name")
        return Pipeline(f, pipe_name)

    return wrap(fn) if fn is not None else wrap

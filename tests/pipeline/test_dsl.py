"""Building pipelines: the DAG, parameters, and the errors users meet first."""

from pathlib import Path

import pytest

import mlkernel as mlk
from mlkernel.errors import UsageError
from mlkernel.pipeline.params import apply_overrides, parse_assignments


@mlk.step
def load(n: int = 3) -> list[int]:
    return list(range(n))


@mlk.step(name="scale", retries=2, timeout=5, output="model:scaled")
def scale_values(xs: list[int], factor: float = 2.0) -> list[float]:
    return [x * factor for x in xs]


@mlk.step
def report(xs: list[int], ys: list[float]) -> mlk.Metrics:
    return mlk.Metrics(n=len(xs), top=max(ys))


@mlk.pipeline
def pipe(n: int = 4) -> None:
    xs = load(n)
    report(xs, scale_values(xs))


def test_a_step_outside_a_pipeline_is_the_plain_function() -> None:
    assert load(2) == [0, 1]
    assert scale_values([1], factor=3) == [3]
    assert report([1], [2.0]) == {"n": 1, "top": 2.0}


def test_tracing_builds_the_graph_in_dependency_order() -> None:
    graph = pipe.build()
    assert list(graph.nodes) == ["load", "scale", "report"]
    assert graph.nodes["report"].upstream == ["load", "scale"]
    assert graph.nodes["load"].args == {"n": 4}
    assert graph.nodes["scale"].params == {"factor": 2.0}
    options = graph.nodes["scale"].options
    assert (options.retries, options.timeout, options.output_kind, options.output_name) == (
        2, 5, "model", "scaled",
    )  # fmt: skip
    assert graph.levels() == {"load": 0, "scale": 1, "report": 2}
    drawing = graph.draw()
    assert "report  <- load, <- scale" in drawing
    assert "-> model:scaled" in drawing


def test_parameters_from_pipeline_steps_and_dotted_keys() -> None:
    graph = pipe.build({"n": 7, "factor": 0.5})
    assert graph.params == {"n": 7}
    assert graph.nodes["load"].args["n"] == 7
    assert graph.nodes["scale"].params["factor"] == 0.5
    apply_overrides(graph, {"scale.factor": 3})
    assert graph.nodes["scale"].params["factor"] == 3
    with pytest.raises(UsageError, match="no parameter 'lr'; parameters: factor, n"):
        pipe.build({"lr": 0.1})
    with pytest.raises(UsageError, match="no step 'train'"):
        pipe.build({"train.lr": 0.1})


def test_command_line_values_read_as_toml() -> None:
    assert parse_assignments(["lr=0.1", "name=churn", "layers=[1, 2]", "on=true"]) == {
        "lr": 0.1,
        "name": "churn",
        "layers": [1, 2],
        "on": True,
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_assignments(["lr"])


def test_mistakes_are_named() -> None:
    with pytest.raises(UsageError, match="needs argument 'ys'"):

        @mlk.pipeline
        def missing() -> None:
            report([1])  # type: ignore[call-arg]

        missing.build()
    with pytest.raises(UsageError, match="placeholder"):

        @mlk.pipeline
        def branching() -> None:
            if load():
                pass

        branching.build()
    with pytest.raises(UsageError, match="cannot be produced by a step"):
        mlk.step(name="x", output="env:x")(lambda: 1)
    with pytest.raises(UsageError, match="retries"):
        mlk.step(name="x", retries=-1)(lambda: 1)


def test_the_same_step_twice_gets_two_nodes() -> None:
    @mlk.pipeline
    def twice() -> None:
        load(load())  # type: ignore[arg-type]

    assert list(twice.build().nodes) == ["load", "load-2"]


def test_refs() -> None:
    assert str(mlk.Ref("dataset:train@3")) == "dataset:train@3"
    ref = mlk.Ref.file("data/input.csv")
    assert (ref.ref, ref.path) == ("file:input.csv", "data/input.csv")
    assert isinstance(Path(ref.path or ""), Path)


def test_dsl_values_survive_pickle() -> None:
    """Ray ships steps and references to its workers by pickle."""
    import pickle

    import mlkernel as mlk

    ref = mlk.Ref("dataset:train@3")
    again = pickle.loads(pickle.dumps(ref))
    assert again == ref and again.ref == "dataset:train@3"

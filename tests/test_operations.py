"""Every public operation is registered, authorizes its actor first, has a CLI command or a
reason, and is documented; the actor's name is what operations record (issue 12)."""

from __future__ import annotations

import ast
import getpass
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlkernel
from mlkernel import authz
from mlkernel.artifacts.catalog import CatalogService
from mlkernel.artifacts.service import ArtifactService
from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.data.service import DataService
from mlkernel.kernel import Kernel, exemptions_table, operations, operations_table
from mlkernel.models.service import ModelService
from mlkernel.monitor.service import MonitorService
from mlkernel.pipeline.service import PipelineService
from mlkernel.sched.service import SchedService
from mlkernel.tracking.run import Run
from mlkernel.tracking.service import RunService

SRC = Path(mlkernel.__file__).parent
DOCS = SRC.parent.parent / "docs"
SERVICES: list[type] = [
    Kernel,
    ArtifactService,
    CatalogService,
    RunService,
    DataService,
    MonitorService,
    ModelService,
    PipelineService,
    SchedService,
    Run,
]


def _unguarded(cls: type) -> list[str]:
    """Public methods of ``cls`` that are neither an operation nor exempt with a reason."""
    return [
        f"{cls.__name__}.{name}"
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and inspect.isfunction(value)
        and not hasattr(value, "__mlk_operation__")
        and not getattr(value, "__mlk_exempt__", "")
    ]


def test_every_public_service_method_is_an_operation_or_exempt() -> None:
    missing = [m for cls in SERVICES for m in _unguarded(cls)]
    assert missing == [], (
        "declare these with @operation(...) or @exempt('why') (mlkernel.authz): " + str(missing)
    )


def test_the_guard_catches_a_public_method_without_the_seam() -> None:
    class Planted:
        actor = Actor("x")

        @operation("planted.read", Action.READ, no_cli="a test")
        def read(self) -> None: ...

        @exempt("a test")
        def quick(self) -> None: ...

        def forgot(self) -> None: ...

        def _private(self) -> None: ...

    try:
        assert _unguarded(Planted) == ["Planted.forgot"]
    finally:
        authz.OPERATIONS.pop("planted.read")
        authz.EXEMPT.pop(Planted.quick.__qualname__)


def test_every_service_class_is_checked() -> None:
    """A ``...Service`` class built from a Context (or the Kernel) is a service: it is
    listed (the pipeline runner's parts, built from one too, are not public)."""
    services = set()
    for path in SRC.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Service"):
                for item in node.body:
                    init = isinstance(item, ast.FunctionDef) and item.name == "__init__"
                    args = ast.unparse(item.args) if init else ""  # type: ignore[union-attr]
                    if "Context" in args or "Kernel" in args:
                        services.add(node.name)
    assert services <= {cls.__name__ for cls in SERVICES}
    assert {
        "ArtifactService",
        "CatalogService",
        "RunService",
        "DataService",
        "MonitorService",
    } <= services


class _Called(Exception):
    pass


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Actor, Action, str, str]]:
    """Replace the seam by one that records the call and stops the operation there."""
    calls: list[tuple[Actor, Action, str, str]] = []

    def authorize(actor: Actor, action: Action, resource: str, operation: str = "") -> None:
        calls.append((actor, action, resource, operation))
        raise _Called

    monkeypatch.setattr(authz, "authorize", authorize)
    return calls


@pytest.fixture
def instances(sqlite_project: Kernel) -> Iterator[dict[str, Any]]:
    run = sqlite_project.start_run("seam")
    yield {
        "Kernel": sqlite_project,
        "ArtifactService": sqlite_project.artifacts,
        "CatalogService": sqlite_project.catalog,
        "RunService": sqlite_project.tracking,
        "DataService": sqlite_project.data,
        "MonitorService": sqlite_project.monitor,
        "ModelService": sqlite_project.models,
        "PipelineService": sqlite_project.pipelines,
        "SchedService": sqlite_project.sched,
        "Run": run,
    }
    run.end()


def test_each_operation_authorizes_its_actor_first(
    instances: dict[str, Any], recording: list[tuple[Actor, Action, str, str]]
) -> None:
    """Called with placeholder arguments, each operation reaches the seam before its body
    (which would fail on them otherwise), naming the actor, the action and the resource."""
    ops = operations()
    assert len(ops) >= 50
    for op in ops:
        owner, method = op.method.split(".")
        target = getattr(instances[owner], method)
        args = {p: f"res-{p}" for p, _ in op.inputs}
        recording.clear()
        with pytest.raises(_Called):
            target(**args)
        actor, action, resource, name = recording[0]
        assert (actor, action, name) == (instances["Kernel"].actor, op.action, op.name), op
        assert resource == ("" if op.resource is None else f"res-{op.resource}"), op


def test_the_actor_is_the_os_user_by_default(sqlite_project: Kernel) -> None:
    assert sqlite_project.actor == Actor(getpass.getuser())
    assert sqlite_project.actor.kind == "user" and sqlite_project.actor.roles == frozenset()


def test_a_view_for_another_actor_records_its_name(project: Kernel) -> None:
    alice = project.as_actor(Actor("alice"))
    assert (
        alice.context.meta is project.context.meta and alice.context.table is project.context.table
    )  # nothing reopened
    assert alice.actor.name == "alice" and project.actor.name != "alice"

    record = alice.log_artifact(b"weights", kind="model", name="m")
    assert record.created_by == "alice"
    assert project.resolve("model:m").created_by == "alice"
    mine = project.log_artifact(b"other", kind="model", name="m")
    assert mine.created_by == project.actor.name

    alice.alias_set("model:m@1", "prod")
    assert project.show("model:m").alias_history[-1].by == "alice"
    with alice.start_run("train") as run:
        run.log_params({"lr": 0.1})
    assert project.run_info(run.id).record.user == "alice"
    assert alice.data.actor.name == "alice" and project.data.actor.name != "alice"
    assert alice.monitor.actor.name == "alice" and project.monitor.actor.name != "alice"

    alice.close()  # a view closes nothing: the project still answers
    assert project.resolve("model:m@1").created_by == "alice"


def _commands() -> set[str]:
    from mlkernel.cli.main import build_parser

    names: set[str] = set()
    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            names.add(f"mlk {name}")
            for nested in sub._actions:
                if nested.__class__.__name__ == "_SubParsersAction":
                    names.update(f"mlk {name} {verb}" for verb in nested.choices)  # type: ignore[union-attr]
    return names


def test_each_operation_names_a_real_command_or_says_why_not() -> None:
    commands = _commands()
    cli_md = (DOCS / "cli.md").read_text()
    for op in operations():
        if op.cli is None:
            assert op.no_cli, f"{op.name}: say why it has no CLI command"
        else:
            assert op.cli in commands, f"{op.name}: {op.cli!r} is no command of mlk"
            assert op.cli in cli_md, f"{op.name}: {op.cli!r} is not in docs/cli.md"
        assert op.summary, f"{op.name}: give {op.method} a docstring"


def test_an_operation_must_have_a_command_or_a_reason() -> None:
    with pytest.raises(TypeError, match="exactly one of cli= and no_cli="):
        operation("nothing.said", Action.READ)


def _between(text: str, what: str) -> str:
    begin = f"<!-- {what} table: generated from the registry, do not edit by hand -->\n"
    return text[text.index(begin) + len(begin) : text.index(f"<!-- end of {what} table -->")]


def test_docs_list_every_operation_and_exemption() -> None:
    text = (DOCS / "operations.md").read_text()
    hint = "regenerate it: python -c 'from mlkernel.kernel import {0}; print({0}())'"
    assert _between(text, "operations") == operations_table(), hint.format("operations_table")
    assert _between(text, "exemptions") == exemptions_table(), hint.format("exemptions_table")
    assert "docs/operations.md" in (DOCS.parent / "README.md").read_text()


def test_operations_return_typed_results() -> None:
    """No operation hands a loose dictionary across the service boundary: results are
    records and dataclasses (issue 12). ``Any`` is left for the user's own values (a loaded
    object, an opened table)."""
    loose = [f"{op.name} -> {op.output}" for op in operations() if "dict[str, Any]" in op.output]
    assert loose == []
    values = {op.name for op in operations() if op.output == "Any"}
    assert values == {"artifacts.load", "data.head", "data.open"}

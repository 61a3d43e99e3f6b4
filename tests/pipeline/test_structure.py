"""The pipeline package's shape: its modules import each other without a cycle, counting
every import (module level, under ``if TYPE_CHECKING:`` and inside functions), and none
has grown past the size where STYLE.md says to split it (~600 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import mlkernel.pipeline

PACKAGE = "mlkernel.pipeline"
ROOT = Path(mlkernel.pipeline.__file__).parent
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """Module name (``dsl``, ``__init__``) -> file, for every module of the package."""
    return {path.stem: path for path in sorted(ROOT.glob("*.py"))}


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The package module ``mlkernel.pipeline.<name>[.<attr>]`` names, if any."""
    if name == PACKAGE:
        return "__init__"
    if not name.startswith(PACKAGE + "."):
        return None
    head = name[len(PACKAGE) + 1 :].split(".", maxsplit=1)[0]
    return head if head in modules else None


def imports_of(tree: ast.Module, module: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``tree`` imports anywhere in its body: at module level,
    under ``if TYPE_CHECKING:``, in functions and methods (``ast.walk`` visits them all)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import, from inside the package
                base = f"{PACKAGE}.{base}" if base else PACKAGE
            # `from mlkernel.pipeline import dsl` imports the module dsl; `... import Ref`
            # takes a name from the package's __init__.
            names = [
                f"{base}.{a.name}" if base == PACKAGE and a.name in modules else base
                for a in node.names
            ]
        else:
            continue
        found.update(t for t in (_target(n, modules) for n in names) if t is not None)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: imports_of(ast.parse(path.read_text(), str(path)), name, modules)
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found is not None:
                return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_count_type_checking_function_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from mlkernel.pipeline.graph import Graph\n"
        "if TYPE_CHECKING:\n"
        "    from mlkernel.pipeline.runner import Runner\n"
        "def f():\n"
        "    import mlkernel.pipeline.params\n"
        "    from . import loader\n"
        "    from .values import Ref\n"
        "    from mlkernel.pipeline import Ref\n"
        "    from mlkernel.errors import UsageError\n"
    )
    found = imports_of(ast.parse(source), "dsl", _modules())
    assert found == {"graph", "runner", "params", "loader", "values", "__init__"}


def test_the_pipeline_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"dsl", "graph", "params", "values", "runner"} <= set(graph)
    assert find_cycle(graph) is None


def test_the_dsl_shares_its_types_from_below() -> None:
    """graph.py and params.py take Ref, Output and StepOptions from values.py, which
    imports nothing of the package: the DSL builds graphs, not the other way round."""
    graph = import_graph()
    assert graph["values"] == set()
    assert "dsl" not in graph["graph"] | graph["params"]


def test_no_pipeline_module_is_too_long() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}

"""Guards on the shape of the code: light CLI, layers, public API, documented commands."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mlkernel

SRC = Path(mlkernel.__file__).parent
DOCS = SRC.parent.parent / "docs"

HEAVY = (
    "pyarrow",
    "polars",
    "numpy",
    "pandas",
    "sklearn",
    "scipy",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "rich",
    "psycopg2",
    "ray",
    "optuna",
    "psutil",
)

# Lower layers never import higher ones, not even for types under TYPE_CHECKING.
LAYERS = {
    "errors": 0,
    "refs": 0,
    "config": 0,
    "fsutil": 0,
    "digest": 0,
    "gclock": 0,
    "provenance": 0,
    "authz": 0,
    "settings": 0,
    "meta": 1,
    "artifacts": 1,
    "context": 1,  # what a service is built from: configuration, storage, actor
    "sched": 2,
    "security": 2,
    "tracking": 3,
    "data": 3,
    "monitor": 3,
    "models": 3,
    "serve": 3,
    "pipeline": 4,
    "kernel": 5,
    "cli": 6,
    "server": 6,
    "daemon": 6,
}
EXEMPT = {"__init__", "__main__", "testing"}
# sched depends on nothing but the OS and the foundations (DESIGN.md). authz is one: the
# scheduler's service declares its operations and names its actor with it (issue 12), and
# authz imports only the standard library.
ONLY = {"sched": {"errors", "refs", "config", "fsutil", "sched", "authz"}}


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys; from mlkernel.cli.main import build_parser; build_parser(); "
        "print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY))
    assert heavy == [], f"`import mlkernel.cli` loads {heavy}; import them inside functions"


def test_help_runs_without_heavy_imports() -> None:
    code = (
        "import sys\nfrom mlkernel.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "usage: mlk" in result.stdout
    heavy = sorted({m.split(".")[0] for m in result.stderr.split()} & set(HEAVY))
    assert heavy == []


def _imports(tree: ast.Module, package: str = "") -> set[str]:
    """The mlkernel packages a module imports, anywhere in it (TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    # Another package's ``settings`` module declares its mlkernel.toml section and belongs
    # to the foundations: config.py imports them all to check the whole file (they stay
    # light: tests/test_config_schema.py).
    return {
        "settings"
        if m.count(".") == 2 and m.endswith(".settings") and m.split(".")[1] != package
        else m.split(".")[1]
        for m in found
        if m.startswith("mlkernel.") and m.count(".") >= 1
    }


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_layers_point_down() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        package = _package(path)
        if package in EXEMPT:
            continue
        assert package in LAYERS, f"{path}: package {package!r} has no layer in this test"
        imported = _imports(ast.parse(path.read_text()), package)
        for target in sorted(imported - {package} - EXEMPT):
            if target not in LAYERS:
                continue
            if LAYERS[target] > LAYERS[package] or (
                package in ONLY and target not in ONLY[package]
            ):
                problems.append(f"{path.relative_to(SRC)} imports mlkernel.{target}")
    assert problems == []


def test_public_api() -> None:
    assert set(mlkernel.__all__) == {
        "Artifact",
        "Kernel",
        "MLKernelError",
        "Metrics",
        "Ref",
        "__version__",
        "init",
        "open",
        "pipeline",
        "step",
        "tune",
    }
    for name in mlkernel.__all__:
        assert getattr(mlkernel, name) is not None


def _commands() -> list[str]:
    from mlkernel.cli.main import build_parser

    parser = build_parser()
    names: list[str] = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
            if nested:
                names.extend(f"{name} {verb}" for verb in nested[0].choices)  # type: ignore[union-attr]
            else:
                names.append(name)
    return names


def test_command_table_is_complete() -> None:
    """`mlk COMMAND` loads only COMMANDS[COMMAND]'s module: the table must name them all."""
    from mlkernel.cli.main import COMMANDS, build_parser

    top = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(top) == set(COMMANDS)
    for command, module in COMMANDS.items():
        alone = build_parser(command)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        assert command in alone, f"mlkernel.cli.{module} does not register {command!r}"


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = [c for c in _commands() if f"mlk {c}" not in text]
    assert missing == [], f"add these commands to docs/cli.md: {missing}"


@pytest.mark.parametrize("section", ["project", "storage", "tracking"])
def test_every_setting_is_documented(section: str) -> None:
    from mlkernel.config import _SCHEMA

    text = (DOCS / "configuration.md").read_text()
    for key in _SCHEMA[section]:
        assert f"{section}.{key}" in text or f"`{key}`" in text, f"document {section}.{key}"


# Only the object store knows the object layout (DESIGN.md, "Storage is an interface").
STORE_PACKAGE = SRC / "artifacts"
STORE_INTERNALS = {"path", "root", "tmp"}  # LocalObjectStore's own, not the protocol's


def _layout_spellings(source: str) -> list[str]:
    """Places in ``source`` that build object paths instead of asking the object store:
    ``digest[:2]`` / ``digest[2:]``, an ``"objects"`` path segment, the local store's
    internals (``objects.path(...)``, ``store.root``, ``.tmp``), its gc lock by folder."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            lower, upper = node.slice.lower, node.slice.upper
            halves = (lower is None and _is(upper, 2)) or (_is(lower, 2) and upper is None)
            if halves and "digest" in ast.unparse(node.value).lower():
                found.append(f"{where}: {ast.unparse(node)} splits a digest as the layout does")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if _is(node.left, "objects") or _is(node.right, "objects"):
                found.append(f"{where}: {ast.unparse(node)} builds a path into objects/")
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if (called.endswith("join") or called.endswith("Path")) and any(
                _is(arg, "objects") for arg in node.args
            ):
                found.append(f"{where}: {ast.unparse(node)} builds a path into objects/")
            if called in {"gclock.shared", "gclock.exclusive", "shared", "exclusive"}:
                found.append(f"{where}: {called}() takes the gc lock by folder; use .writing()")
        elif isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value).split(".")[-1]
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if owner in {"objects", "store"} and (node.attr in STORE_INTERNALS or private):
                found.append(f"{where}: .{owner}.{node.attr} is the local store's internal")
    return found


def _is(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value == value


def test_only_the_object_store_knows_the_object_layout() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(STORE_PACKAGE) or path == SRC / "gclock.py":
            continue
        problems += [f"{path.relative_to(SRC)}: {p}" for p in _layout_spellings(path.read_text())]
    assert problems == [], "go through the ObjectStore protocol (mlkernel.artifacts.base)"


def test_the_layout_guard_catches_what_it_is_for() -> None:
    planted = (
        "import os\nfrom mlkernel import gclock\n"
        "def f(k, root, digest, record, store):\n"
        "    a = os.path.join(root, digest[:2], digest[2:])\n"
        "    b = k.config.state_dir / 'objects' / record.digest[:2]\n"
        "    c = k.context.objects.path(record.digest)\n"
        "    d = str(k.context.objects.root)\n"
        "    e = store.tmp / 'x'\n"
        "    with gclock.shared(root):\n"
        "        pass\n"
    )
    found = "\n".join(_layout_spellings(planted))
    for spelled in (
        "digest[:2]",
        "digest[2:]",
        "/ 'objects'",
        ".objects.path",
        ".objects.root",
        ".store.tmp",
        "gclock.shared",
    ):
        assert spelled in found, f"{spelled} not caught in:\n{found}"
    legitimate = (
        "def g(k, record, path):\n"
        "    short = record.digest[:12]\n"
        "    where = k.context.objects.location\n"
        "    mapped = k.context.objects.local_path_for_reading(record.digest)\n"
        "    parts = path.name[:2]\n"
        "    return k.context.objects.put_bytes(b'x'), k.context.objects.staging, self_path(path)\n"
    )
    assert _layout_spellings(legitimate) == []


# Where the storage handles (the metadata store, the object store, the in-memory table and
# the Context that carries them) may be touched: the services, and the storage packages
# themselves. The Kernel opens and closes them and nothing else (issue 12, DESIGN.md).
SERVICE_PACKAGES = {"artifacts", "tracking", "data", "monitor", "pipeline", "models", "serve"}
STORAGE_PACKAGES = {"meta", "context", "security"}
STORAGE = {"meta", "objects", "table"}
HOLDERS = {"k", "kernel", "ctx", "_ctx", "context", "_context", "project", "self"}
KERNEL_MAY = {"_open_context", "_wire", "models", "monitor", "pipelines", "close", "as_actor"}


def _storage_reaches(source: str, allowed_functions: frozenset[str] = frozenset()) -> list[str]:
    """Attribute reads in ``source`` that reach a storage handle: ``X.meta``, ``X.objects``,
    ``X.table`` on a kernel, a context or ``self``, and any ``.context``/``._ctx``, outside
    the functions named in ``allowed_functions``."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in allowed_functions:
            skip.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in skip:
            continue
        owner = ast.unparse(node.value).split(".")[-1]
        if node.attr in {"context", "_ctx"} or (node.attr in STORAGE and owner in HOLDERS):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_only_services_touch_the_storage_handles() -> None:
    """Entry points (cli/, the Kernel beyond opening and closing) and the packages below the
    services parse, call service operations and render; the storage is the services'."""
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        package = _package(path)
        if package in SERVICE_PACKAGES | STORAGE_PACKAGES or package == "testing":
            continue
        allowed = frozenset(KERNEL_MAY) if package == "kernel" else frozenset()
        problems += [
            f"{path.relative_to(SRC)}: {p}" for p in _storage_reaches(path.read_text(), allowed)
        ]
    assert problems == [], "call a service operation instead:\n" + "\n".join(problems)


def test_the_storage_guard_sees_each_handle() -> None:
    planted = (
        "def f(k, ctx, args):\n"
        "    a = k.meta.list_runs()\n"
        "    b = ctx.objects.put_bytes(b'x')\n"
        "    c = k.context.table.get(1)\n"
        "    d = self._ctx\n"
        "def close(k):\n"
        "    k.meta.close()\n"
    )
    found = "\n".join(_storage_reaches(planted, frozenset({"close"})))
    for reach in ("k.meta", "ctx.objects", "k.context", "self._ctx"):
        assert reach in found, f"{reach} not caught in:\n{found}"
    assert "line 7" not in found  # inside an allowed function
    legitimate = (
        "def g(k, render, args):\n"
        "    k.catalog.resolve(args.ref)\n"
        "    k.data.open(args.ref)\n"
        "    render.table(rows)\n"
        "    k.metadata_location\n"
    )
    assert _storage_reaches(legitimate) == []

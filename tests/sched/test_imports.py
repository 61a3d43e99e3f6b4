from __future__ import annotations

import subprocess
import sys


def test_importing_sched_is_cheap_and_has_no_side_effects() -> None:
    code = (
        "import sys, mlkernel.sched, mlkernel.cli.mode, mlkernel.cli.policy, mlkernel.cli.doctor\n"
        "heavy = [m for m in ('psutil', 'sqlite3', 'rich', 'numpy', 'mlkernel.sched.controller',"
        " 'mlkernel.sched.policy', 'mlkernel.sched.doctor') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sched_imports_nothing_from_higher_layers() -> None:
    import ast
    from pathlib import Path

    import mlkernel.sched

    for path in Path(mlkernel.sched.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                if n.startswith("mlkernel"):
                    # mlkernel.config: the schema types the [sched] section is declared
                    # with (sched/settings.py), a foundation like errors (DESIGN.md layers);
                    # mlkernel.authz: the service's operations and actor (standard library)
                    foundations = (
                        "mlkernel.sched",
                        "mlkernel.errors",
                        "mlkernel.fsutil",
                        "mlkernel.config",
                        "mlkernel.authz",
                    )
                    assert n == "mlkernel" or n.startswith(foundations), f"{path.name} imports {n}"

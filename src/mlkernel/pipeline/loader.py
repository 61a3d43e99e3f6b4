"""Finding a pipeline: a name declared in mlkernel.toml, ``path/to/file.py:function`` or
``module:function``.

A file is loaded like a script (its folder on ``sys.path``) under a private module name,
which the process and Ray workers reload from the same file; a module is imported by
name with the project folder on ``sys.path``, so steps from other packages work too.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from mlkernel.errors import ConfigError, MLKernelError, NotFoundError, UsageError
from mlkernel.pipeline.dsl import Pipeline
from mlkernel.pipeline.settings import RESERVED

__all__ = ["RESERVED", "declared", "load_pipeline"]


def declared(targets: Mapping[str, Any]) -> dict[str, str]:
    """Pipelines declared as ``name = "target"`` under [pipelines] (``targets``: its keys
    other than the settings, :attr:`PipelineSettings.targets`)."""
    found: dict[str, str] = {}
    for key, value in targets.items():
        if key in RESERVED:
            continue
        if not isinstance(value, str) or ":" not in value:
            raise ConfigError(
                f"mlkernel.toml: [pipelines] {key} = {value!r}; write "
                f'{key} = "path/to/file.py:function" or "module:function"'
            )
        found[key] = value
    return found


def _module_from_file(path: Path, root: Path) -> ModuleType:
    path = path.resolve()
    stamp = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        label = str(path.relative_to(root.resolve()).with_suffix(""))
    except ValueError:
        label = str(path.with_suffix(""))
    name = "mlk_pipeline_" + re.sub(r"\W", "_", label).strip("_")
    module = sys.modules.get(name)
    if (
        module is not None
        and getattr(module, "__mlk_file__", None) == str(path)
        and getattr(module, "__mlk_stamp__", None) == stamp
    ):
        return module  # unchanged since loaded (a long-lived process sees edits)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be loaded as Python; name a .py file")
    module = importlib.util.module_from_spec(spec)
    module.__mlk_file__ = str(path)  # type: ignore[attr-defined]
    module.__mlk_path__ = [folder]  # type: ignore[attr-defined]
    module.__mlk_stamp__ = stamp  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except MLKernelError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:  # the user's file: a syntax error, a missing import, ...
        sys.modules.pop(name, None)
        raise _load_error(str(path), exc) from None
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _load_error(what: str, exc: Exception) -> UsageError:
    """One line for a pipeline file or module that fails to load, naming where."""
    import traceback

    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or what}, line {exc.lineno}"
        return UsageError(f"{where}: {exc.msg}; fix the pipeline's code")
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return UsageError(
        f"loading {what} failed: {type(exc).__name__}: {exc}{at}; fix the pipeline's code"
    )


def load_pipeline(spec: str, root: Path, targets: Mapping[str, Any]) -> tuple[Pipeline, str]:
    """The pipeline ``spec`` names, and the target (``file.py:function``) it came from."""
    names = declared(targets)
    target = names.get(spec, spec)
    if ":" not in target:
        import difflib

        known = ", ".join(sorted(names)) or "none declared"
        close = difflib.get_close_matches(spec, list(names), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise NotFoundError(
            f"no pipeline named {spec!r} in mlkernel.toml ({known}); {hint}declare it under "
            "[pipelines] or write path/to/file.py:function or module:function"
        )
    where, _, attr = target.rpartition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if where.endswith(".py") or "/" in where:
        path = Path(where)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise NotFoundError(f"pipeline file {path} does not exist; check {target!r}")
        module = _module_from_file(path, root)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise NotFoundError(
                f"cannot import {where!r} for pipeline {spec!r} ({exc}); check the module "
                "name, or write path/to/file.py:function"
            ) from None
        except MLKernelError:
            raise
        except Exception as exc:
            raise _load_error(where, exc) from None
    found = getattr(module, attr, None)
    if found is None:
        raise NotFoundError(f"{where} has no {attr!r}; check the name after ':' in {target!r}")
    if not isinstance(found, Pipeline):
        raise UsageError(f"{target} is not a pipeline; decorate it with @mlk.pipeline")
    return found, target

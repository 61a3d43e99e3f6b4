"""The code digest of a step: its function's source and the project code it uses.

Starting from the step's function, every global name its code (and nested code) refers
to is looked up: a function or class defined in a project module adds its source (and,
for functions, what *they* use); a project module used as a module adds its whole file;
a plain constant (number, string, tuple of them) adds its value. Code outside the project
folder (the standard library, installed packages, mlkernel) is covered by the
environment digest instead.

Project code is labelled by its file's path in the project and its qualified name, never
by the name its module was imported under: the same function reached as
``pipelines/bc.py:bc`` (loaded from the file under a private module name) or as
``pipelines.bc:bc`` (imported as a module) has one digest, so one cache.
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["code_digest"]

_CONSTANTS = (int, float, str, bytes, bool, type(None))


def _names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


class _Digest:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hash = hashlib.sha256()
        self.seen: set[int] = set()
        self.excluded = tuple(
            str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
        )
        self._files: dict[str, bool] = {}

    def in_project(self, filename: str | None) -> bool:
        if not filename:
            return False
        known = self._files.get(filename)
        if known is None:
            path = str(Path(filename).resolve())
            known = (
                path.startswith(str(self.root) + "/")
                and "site-packages" not in path
                and not path.startswith(self.excluded)
            )
            self._files[filename] = known
        return known

    def where(self, filename: str | None) -> str:
        """A project file's path relative to the project folder (how it was imported
        does not matter); other files as they are."""
        if not filename:
            return "?"
        path = Path(filename).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def add_source(self, label: str, obj: Any) -> None:
        import inspect

        try:
            text = inspect.getsource(obj).encode()
        except (OSError, TypeError):
            code = getattr(obj, "__code__", None)
            import marshal

            text = marshal.dumps(code) if code is not None else repr(obj).encode()
        self.hash.update(f"\0{label}\0".encode() + text)

    def add_function(self, fn: types.FunctionType) -> None:
        if id(fn) in self.seen:
            return
        self.seen.add(id(fn))
        self.add_source(f"{self.where(fn.__code__.co_filename)}:{fn.__qualname__}", fn)
        for name in sorted(_names(fn.__code__)):
            if name in fn.__globals__:
                self.add_object(name, fn.__globals__[name])
        for cell in fn.__closure__ or ():
            try:
                self.add_object("<closure>", cell.cell_contents)
            except ValueError:  # an empty cell
                continue

    def add_object(self, name: str, obj: Any) -> None:
        inner = getattr(obj, "fn", None)  # a Step wraps its function
        if isinstance(inner, types.FunctionType):
            obj = inner
        if isinstance(obj, types.FunctionType):
            if self.in_project(obj.__code__.co_filename):
                self.add_function(obj)
        elif isinstance(obj, types.ModuleType):
            filename = getattr(obj, "__file__", None)
            if self.in_project(filename) and id(obj) not in self.seen:
                self.seen.add(id(obj))
                assert filename is not None
                self.hash.update(f"\0module {self.where(filename)}\0".encode())
                self.hash.update(Path(filename).read_bytes())
        elif isinstance(obj, type):
            module = sys.modules.get(obj.__module__)
            if (
                module is not None
                and self.in_project(getattr(module, "__file__", None))
                and id(obj) not in self.seen
            ):
                self.seen.add(id(obj))
                file = getattr(module, "__file__", None)
                self.add_source(f"{self.where(file)}:{obj.__qualname__}", obj)
        elif isinstance(obj, _CONSTANTS) or (
            isinstance(obj, tuple) and all(isinstance(v, _CONSTANTS) for v in obj)
        ):
            self.hash.update(f"\0const {name}\0{obj!r}".encode())


def code_digest(fn: Any, root: Path) -> str:
    """SHA-256 of ``fn``'s source and of the project code it refers to."""
    digest = _Digest(root.resolve())
    if isinstance(fn, types.FunctionType):
        digest.add_function(fn)
    else:
        digest.add_source(repr(fn), fn)
    return digest.hash.hexdigest()

"""The values a pipeline is built from: :class:`Ref` (an input), :class:`Output` (a step's
future output while the pipeline is traced) and :class:`StepOptions`.

They sit at the bottom of the pipeline package: the DSL (dsl.py), the traced graph
(graph.py), parameter overrides (params.py) and the runner all use them, and this module
imports nothing of the package, so the package's import graph has no cycle
(tests/pipeline/test_structure.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlkernel.errors import UsageError

__all__ = ["Output", "Ref", "StepOptions"]


class _Value:
    """Immutable, compared by value (plain classes: the worker avoids importing dataclasses)."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (Ray ships steps to its workers) would restore slots through
        # __setattr__, which refuses; rebuild through object.__setattr__ instead.
        return (_rebuild, (type(self), self._key()))


def _rebuild(cls: type[_Value], values: tuple[Any, ...]) -> _Value:
    obj = object.__new__(cls)
    for name, value in zip(cls.__slots__, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


class Ref(_Value):
    """An input of a pipeline: an artifact reference (``dataset:train@3``,
    ``model:churn@production``) or, with :meth:`file`, a file of the project folder that
    is hashed on every run (like a DVC dependency)."""

    __slots__ = ("path", "ref")
    ref: str
    path: str | None

    def __init__(self, ref: str, path: str | None = None) -> None:
        object.__setattr__(self, "ref", ref)
        object.__setattr__(self, "path", path)

    @classmethod
    def file(cls, path: str, name: str | None = None) -> Ref:
        stem = name or path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return cls(f"file:{stem}", path)

    def __str__(self) -> str:
        return self.path if self.path is not None else self.ref


class StepOptions(_Value):
    __slots__ = ("cache", "name", "output_kind", "output_name", "retries", "timeout")
    name: str
    cache: bool
    retries: int
    timeout: float | None
    output_kind: str
    output_name: str | None  # default: the step's name

    def __init__(
        self,
        name: str,
        cache: bool = True,
        retries: int = 0,
        timeout: float | None = None,
        output_kind: str = "step",
        output_name: str | None = None,
    ) -> None:
        init = object.__setattr__
        init(self, "name", name)
        init(self, "cache", cache)
        init(self, "retries", retries)
        init(self, "timeout", timeout)
        init(self, "output_kind", output_kind)
        init(self, "output_name", output_name)


class Output(_Value):
    """The future output of a step, while a pipeline is being built."""

    __slots__ = ("node",)
    node: str

    def __init__(self, node: str) -> None:
        object.__setattr__(self, "node", node)

    def __bool__(self) -> bool:
        raise UsageError(
            f"the output of step {self.node!r} is a placeholder while the pipeline is built; "
            "pass it to another step instead of testing or using it"
        )

    def __iter__(self) -> Iterator[Any]:
        raise UsageError(
            f"step {self.node!r} returns one value; return a tuple or dict and pass it whole"
        )

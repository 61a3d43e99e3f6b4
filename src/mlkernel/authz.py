"""Who is calling, and the one place that decides whether they may (issue 12).

Every public operation of a service is declared with :func:`operation`, which registers it
in :data:`OPERATIONS` (name, action, method, summary, input and output types, the CLI
command that calls it) and makes its first act a call to :func:`authorize` naming the
actor, the action and the resource. Methods that are not operations say why with
:func:`exempt`; ``tests/test_operations.py`` fails on a public service method that does
neither.

:func:`authorize` allows everything and records nothing for now: the security issue
fills it in (roles, policies, an audit trail) without touching any service.

A foundation module: it imports only the standard library.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

__all__ = [
    "EXEMPT",
    "OPERATIONS",
    "Action",
    "Actor",
    "Operation",
    "authorize",
    "exempt",
    "operation",
]


@dataclass(frozen=True)
class Actor:
    """Who calls: today the OS user (:meth:`current`) the Kernel or the scheduler runs for."""

    name: str
    kind: str = "user"  # "user" or "service" (a daemon, a scheduler, a server)
    roles: frozenset[str] = field(default_factory=frozenset)  # empty until access control

    def __str__(self) -> str:
        return self.name

    @classmethod
    def current(cls) -> Actor:
        """The OS user running this process (its uid where it has no passwd entry, as in
        some containers): who calls when nobody says otherwise."""
        try:
            return cls(getpass.getuser())
        except (KeyError, OSError):
            return cls(str(os.getuid()))


class Action(StrEnum):
    """What an operation does to its resource, as access control will see it."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    EXECUTE = "execute"
    ADMIN = "admin"


def authorize(actor: Actor, action: Action, resource: str, operation: str = "") -> None:
    """Raise if ``actor`` may not do ``action`` on ``resource`` through ``operation``.

    For now everything is allowed and nothing is recorded; the security issue fills this
    in. Tests replace it to see that each operation calls it first.
    """


@dataclass(frozen=True)
class Operation:
    """One public operation of the kernel: what the SDK, the CLI and routes call."""

    name: str  # "data.add"
    method: str  # "DataService.add"
    action: Action
    resource: str | None  # the parameter naming what it acts on; None: the project
    summary: str
    inputs: tuple[tuple[str, str], ...]  # (parameter, annotation) as written
    output: str
    cli: str | None  # "mlk data add", or None
    no_cli: str | None  # why there is no CLI command


OPERATIONS: dict[str, Operation] = {}
EXEMPT: dict[str, str] = {}  # "Run.log_metric" -> why it calls no authorize

F = TypeVar("F", bound=Callable[..., Any])


class _HasActor(Protocol):
    @property
    def actor(self) -> Actor: ...


def _summary(fn: Callable[..., Any]) -> str:
    doc = (fn.__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".") + "." if first else ""


def operation(
    name: str,
    action: Action,
    *,
    resource: str | None = None,
    cli: str | None = None,
    no_cli: str | None = None,
    summary: str | None = None,
) -> Callable[[F], F]:
    """Declare a public service method as the operation ``name``.

    ``resource`` names the parameter that says what the operation acts on (a reference,
    a dataset name, a run id); without it the resource is the project. ``cli`` is the
    command that calls it (``"data add"``); an operation without one says why in
    ``no_cli``. ``summary`` stands in for a method without a docstring. The method's owner must have an ``actor`` attribute.
    """
    if (cli is None) == (no_cli is None):
        raise TypeError(f"operation {name!r}: give exactly one of cli= and no_cli=")

    def wrap(fn: F) -> F:
        inner: Any = fn
        while hasattr(inner, "__wrapped__"):  # under another decorator
            inner = inner.__wrapped__
        code = inner.__code__
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        annotations = dict(inner.__annotations__)
        output = str(annotations.pop("return", "None"))
        inputs = tuple((p, str(annotations.get(p, "Any"))) for p in names[1:])
        qualname = fn.__qualname__
        if name in OPERATIONS:
            raise TypeError(f"operation {name!r} declared twice")
        OPERATIONS[name] = Operation(
            name,
            qualname,
            action,
            resource,
            summary or _summary(inner),
            inputs,
            output,
            None if cli is None else f"mlk {cli}",
            no_cli,
        )
        wrapped = _authorizing(fn, inner, name, action, resource, names)
        wrapped.__mlk_operation__ = name  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return wrap


def _authorizing(
    fn: Callable[..., Any],
    inner: Any,
    name: str,
    action: Action,
    resource: str | None,
    names: tuple[str, ...],
) -> Callable[..., Any]:
    # Kept small: resolve() is a hot path, this adds one call and a lookup or two.
    if resource is None:

        @functools.wraps(fn)
        def on_project(self: _HasActor, *args: Any, **kwargs: Any) -> Any:
            authorize(self.actor, action, "", name)
            return fn(self, *args, **kwargs)

        return on_project

    if resource not in names:
        raise TypeError(f"operation {name!r}: {inner.__qualname__} has no parameter {resource!r}")
    index = names.index(resource) - 1  # position in *args, after self
    positional = names[: inner.__code__.co_argcount]
    defaults = dict(zip(reversed(positional), reversed(inner.__defaults__ or ()), strict=False))
    defaults.update(inner.__kwdefaults__ or {})
    default = defaults.get(resource, "")

    @functools.wraps(fn)
    def on_resource(self: _HasActor, *args: Any, **kwargs: Any) -> Any:
        value = args[index] if len(args) > index else kwargs.get(resource, default)
        authorize(self.actor, action, value if type(value) is str else _name(value), name)
        return fn(self, *args, **kwargs)

    return on_resource


def _name(value: object) -> str:
    """A resource's name: a record's reference, else its text."""
    if value is None:
        return ""
    ref = getattr(value, "ref", None)
    return ref if isinstance(ref, str) else str(value)


def exempt(reason: str) -> Callable[[F], F]:
    """Mark a public service method that is not an operation, saying why (no overhead)."""

    def wrap(fn: F) -> F:
        EXEMPT[fn.__qualname__] = reason
        fn.__mlk_exempt__ = reason  # type: ignore[attr-defined]
        return fn

    return wrap

"""Checking a parameter value against the annotation of the function that takes it.

Values set from ``mlkernel.toml`` or ``-p KEY=VALUE`` are checked before any step runs,
so ``-p C=abc`` for ``C: float`` is one line ("C must be a float, got 'abc'") instead of
a traceback from deep inside the step. Understood: ``int``, ``float`` (an integer is
taken and made a float), ``bool``, ``str``, ``None``, unions and ``Optional``,
``Literal[...]``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and their bare forms.
Any other annotation (a class, ``Any``, a name that cannot be resolved) is not checked.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["check_value", "describe"]

_UNKNOWN = object()  # an annotation we do not check


def _hint(fn: Callable[..., Any], name: str) -> Any:
    """The resolved annotation of parameter ``name`` of ``fn``, else ``_UNKNOWN``."""
    raw = getattr(fn, "__annotations__", {}).get(name, _UNKNOWN)
    if not isinstance(raw, str):
        return raw
    try:  # postponed annotations (`from __future__ import annotations`)
        # What typing.get_type_hints does, per parameter: one unresolvable name (an import
        # under TYPE_CHECKING) leaves that parameter unchecked, not the others.
        return eval(raw, getattr(fn, "__globals__", {}), {})
    except Exception:
        return _UNKNOWN


def describe(tp: Any) -> str:
    """An annotation in words: ``a float``, ``one of 'a', 'b'``, ``a list of int``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if tp is type(None) or tp is None:
        return "None"
    if origin in (list, tuple, set, frozenset) and args:
        return f"a {origin.__name__} of {describe(args[0]).removeprefix('a ').removeprefix('an ')}"
    if origin is dict:
        return "a table (dict)"
    name = getattr(origin or tp, "__name__", str(tp))
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _match(tp: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``tp``, the value to use: an int made a float for float)."""
    if tp is _UNKNOWN or tp is Any or tp is object:
        return True, value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in args:
            ok, fitted = _match(arg, value)
            if ok:
                return True, fitted
        return False, value
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if tp is type(None) or tp is None:
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if tp in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        if not isinstance(value, list | tuple):
            return False, value
        item = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else _UNKNOWN
        fitted = []
        for v in value:
            ok, one = _match(item, v)
            if not ok:
                return False, value
            fitted.append(one)
        return True, type(value)(fitted)
    if tp is dict or origin is dict:
        return isinstance(value, dict), value
    return True, value  # a class or construct we do not check


def _shown(value: Any) -> str:
    """A value as it was written: TOML's ``true``, Python's repr otherwise."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def check_value(fn: Callable[..., Any], name: str, value: Any, owner: str) -> Any:
    """``value`` for parameter ``name`` of ``fn`` (``owner``: "step train"), made to fit
    its annotation where that loses nothing; a :class:`UsageError` when it does not fit."""
    from mlkernel.errors import UsageError

    tp = _hint(fn, name)
    ok, fitted = _match(tp, value)
    if ok:
        return fitted
    wanted = describe(tp)
    hint = ""
    if isinstance(value, int | float | bool) and _match(tp, str(value))[0]:
        hint = f"; quote it to pass text: -p '{name}=\"{value}\"'"
    raise UsageError(
        f"{name} must be {wanted}, got {_shown(value)} ({owner} declares "
        f"{name}: {_annotation_text(fn, name, tp)}){hint}"
    )


def _annotation_text(fn: Callable[..., Any], name: str, tp: Any) -> str:
    raw = getattr(fn, "__annotations__", {}).get(name)
    if isinstance(raw, str):
        return raw
    text = getattr(tp, "__name__", None)
    return text if text is not None and typing.get_origin(tp) is None else str(tp)

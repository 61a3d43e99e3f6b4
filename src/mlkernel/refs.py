"""References to artifacts: ``[kind:]name[@alias|@version]``.

Examples: ``dataset:train@3``, ``model:churn@production``, ``churn`` (latest of the only
kind that has that name). Names are validated here, once, for every entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mlkernel.errors import InvalidNameError

__all__ = [
    "KINDS",
    "MAX_NAME",
    "Ref",
    "parse_ref",
    "validate_alias",
    "validate_kind",
    "validate_name",
]

KINDS: tuple[str, ...] = ("dataset", "model", "code", "env", "step", "report", "profile", "file")
MAX_NAME = 200
LATEST = "latest"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_BAD_CHAR_RE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference. ``version`` and ``alias`` are never both set."""

    kind: str | None
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        text = f"{self.kind}:{self.name}" if self.kind else self.name
        if self.version is not None:
            return f"{text}@{self.version}"
        if self.alias is not None:
            return f"{text}@{self.alias}"
        return text


def _describe(char: str) -> str:
    if ord(char) < 32 or ord(char) == 127:
        return f"control character {ord(char):#04x}"
    return repr(char)


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can name an artifact, else raise :class:`InvalidNameError`."""
    if not name:
        raise InvalidNameError(f"{what} is empty; use letters, digits, '.', '_' or '-'")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"{what} is {len(name)} characters long; use at most {MAX_NAME}")
    if _NAME_RE.match(name):
        return name
    bad = _BAD_CHAR_RE.search(name)
    if bad is not None:
        if bad.group() in "/\\":
            problem = "contains a path separator"
        else:
            problem = f"contains {_describe(bad.group())}"
        raise InvalidNameError(
            f"{what} {name!r} {problem}; use only letters, digits, '.', '_' or '-'"
        )
    raise InvalidNameError(f"{what} {name!r} must start with a letter or digit")


def validate_kind(kind: str) -> str:
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidNameError(f"unknown kind {kind!r}; {hint}use one of: {', '.join(KINDS)}")
    return kind


def validate_alias(alias: str) -> str:
    validate_name(alias, "alias")
    if alias.isdigit():
        raise InvalidNameError(
            f"alias {alias!r} is a number and would read as a version; "
            "choose a name with a letter in it"
        )
    if alias == LATEST:
        raise InvalidNameError("alias 'latest' is implicit (the newest version) and cannot be set")
    return alias


@lru_cache(maxsize=4096)
def parse_ref(text: str) -> Ref:
    """Parse ``[kind:]name[@alias|@version]``; raise :class:`InvalidNameError` if malformed."""
    if not isinstance(text, str) or not text:
        raise InvalidNameError(
            "reference is empty; write [kind:]name[@alias|@version], e.g. model:churn@production"
        )
    kind: str | None = None
    rest = text
    if ":" in rest:
        kind, rest = rest.split(":", 1)
        validate_kind(kind)
    name, sep, selector = rest.partition("@")
    validate_name(name)
    if not sep:
        return Ref(kind, name)
    if not selector:
        raise InvalidNameError(
            f"reference {text!r} ends with '@'; add a version or an alias "
            f"after it, e.g. {name}@production"
        )
    if selector.isdigit():
        version = int(selector)
        if version < 1:
            raise InvalidNameError(f"reference {text!r}: versions start at 1")
        return Ref(kind, name, version=version)
    if selector == LATEST:
        return Ref(kind, name)
    validate_name(selector, "alias")
    return Ref(kind, name, alias=selector)

"""Project settings: ``mlkernel.toml``, validated into typed dataclasses.

Every section is declared once, as a :class:`Section` of :class:`Key` s (type, default,
accepted values, meaning). This module declares ``[project]``, ``[storage]`` and
``[tracking]``; each package declares its own section in a light ``settings`` module
(``mlkernel.monitor.settings``, ``mlkernel.pipeline.settings``,
``mlkernel.sched.settings``) that imports nothing heavy. :func:`load_config` checks the
whole file against all of them, so every mistake stops the same way, in one line::

    mlkernel.toml: [monitor.drift] drift_share must be a number above 0 and at most 1, got 'x'
    mlkernel.toml: [tracking] unknown key 'flush_rowz'; did you mean 'flush_rows'? accepted: ...

The packages' sections stay available in :attr:`ProjectConfig.sections`, validated;
each package turns its own into typed settings (``MonitorSettings``, ``PolicyConfig``,
``WatchSpec``, ``Trigger``). The table of docs/configuration.md is generated from the
same declarations (:func:`docs_table`).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkernel.errors import ConfigError, NotFoundError

__all__ = [
    "CONFIG_FILE",
    "STATE_DIR",
    "Key",
    "ProjectConfig",
    "Section",
    "check_section",
    "docs_table",
    "find_root",
    "load_config",
    "read_toml",
    "render_config",
    "schema",
]

CONFIG_FILE = "mlkernel.toml"
STATE_DIR = ".mlkernel"

DEFAULT_OBJECTS = f"{STATE_DIR}/objects"
DEFAULT_FLUSH_ROWS = 5000
DEFAULT_FLUSH_SECONDS = 2.0

#: Sections owned by capability packages: declared in their ``settings`` modules, checked
#: here with the rest, kept (validated) in :attr:`ProjectConfig.sections`.
OWNED_SECTIONS = ("watch", "pipelines", "triggers", "sched", "monitor", "serve", "security", "data")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    metadata: str = "sqlite"  # "sqlite" (.mlkernel/meta.db) or a SQLAlchemy URL
    objects: str = DEFAULT_OBJECTS
    gc_grace: float = 600.0  # gc leaves unreferenced objects younger than this (seconds)


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    flush_rows: int = DEFAULT_FLUSH_ROWS  # buffered metrics written in one batch at this many
    flush_seconds: float = (
        DEFAULT_FLUSH_SECONDS  # ... or when the oldest buffered metric is this old
    )
    verify_reads: bool = False  # re-hash objects when they are read


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    name: str
    root: Path
    storage: StorageConfig = field(default_factory=StorageConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sections: dict[str, Any] = field(default_factory=dict)  # owned sections, raw

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def metadata_url(self) -> str:
        if self.storage.metadata == "sqlite":
            return f"sqlite:///{self.state_dir / 'meta.db'}"
        return self.storage.metadata

    @property
    def objects_dir(self) -> Path:
        path = Path(self.storage.objects)
        return path if path.is_absolute() else self.root / path


# -- the schema ---------------------------------------------------------------------------

#: The value types a key may declare, as they read in messages and in the docs.
_TYPES: dict[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "table": "a table",
    "list": "a list",
    "any": "any value",
}


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a section: its type, default, accepted values and meaning.

    ``table`` makes the key a nested table checked against that section; with ``named``
    the key holds any number of such tables by name (``[sched.pools.prod]``), with
    ``array`` it is an array of tables (``[[sched.hold]]``). ``check`` is a rule a type
    cannot say: it returns what the key accepts (for the message) when ``value`` breaks
    it, else None.
    """

    name: str
    type: str
    doc: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the range excludes ``low`` itself
    table: Section | None = None
    named: bool = False
    array: bool = False
    check: Callable[[Any], str | None] | None = None
    expect: str = ""  # what ``check`` accepts, in words, for the docs

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"key {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True, slots=True)
class Section:
    """A table of mlkernel.toml: its keys and what it is for.

    ``other`` is the key every name that is not listed is checked against
    (``[pipelines]`` names pipelines, ``[pipelines.params.NAME]`` holds any parameter);
    without it an unlisted name is an error with a "did you mean". ``names`` limits the
    names of a named table (the pools). ``check`` validates rules between keys and raises
    :class:`ConfigError` saying what is wrong.
    """

    name: str  # as in a header: "monitor.drift", "sched.pools.<pool>", "watch"
    doc: str
    keys: tuple[Key, ...] = ()
    other: Key | None = None
    names: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], None] | None = None
    name_check: Callable[[str], str | None] | None = None  # a named table's name

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


def _accepts(key: Key) -> str:
    """What a key accepts, in words: "a number between 0 and 1", "one of a, b"."""
    if key.expect:
        return key.expect
    if key.choices:
        return "one of " + ", ".join(key.choices)
    if key.table is not None:
        return "an array of tables" if key.array else "a table"
    what = _TYPES[key.type]
    if key.low is not None and key.high is not None:
        above = f"above {key.low:g} and at most" if key.low_open else f"between {key.low:g} and"
        return f"{what} {above} {key.high:g}"
    if key.low is not None:
        return f"{what} {'above' if key.low_open else 'of at least'} {key.low:g}"
    return what


def _breaks(key: Key, value: Any) -> str | None:
    """What ``value`` should be when it breaks the key's type, choices, range or rule."""
    if key.choices:
        return None if isinstance(value, str) and value in key.choices else _accepts(key)
    kinds = {"string": str, "integer": int, "number": int | float, "table": dict, "list": list}
    if key.type == "boolean" and not isinstance(value, bool):
        return _accepts(key)
    if key.type in kinds and (isinstance(value, bool) or not isinstance(value, kinds[key.type])):
        return _accepts(key)
    if key.type in ("integer", "number"):
        low_bad = key.low is not None and (value <= key.low if key.low_open else value < key.low)
        if low_bad or (key.high is not None and value > key.high):
            return _accepts(key)
    return key.check(value) if key.check is not None else None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _label(header: str, index: int | None) -> str:
    return f"[{header}]" if index is None else f"[[{header}]] #{index + 1}"


def check_section(
    section: Section, table: Any, file: str, header: str, index: int | None = None
) -> None:
    """Check one table against ``section``; raise a one-line :class:`ConfigError`.

    ``header`` is the table's name as written (``monitor.drift``, ``sched.pools.prod``)
    and ``index`` its place in an array of tables.
    """
    where = f"{file}: {_label(header, index)}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    listed = [k.name for k in section.keys]
    for name, value in table.items():
        key = section.key(name) or section.other
        if key is None:
            raise ConfigError(
                f"{where} unknown key {name!r}; {_did_you_mean(name, listed)}"
                f"accepted: {', '.join(listed) or 'none'}"
            )
        if key.table is not None:
            _check_nested(key, value, file, f"{header}.{name}", where)
            continue
        wanted = _breaks(key, value)
        if wanted is not None:
            hint = _did_you_mean(name, listed) if key is section.other else ""
            hint = f"; {hint.strip()}" if hint else ""
            raise ConfigError(f"{where} {name} must be {wanted}, got {value!r}{hint}")
    for key in section.keys:
        if key.required and key.name not in table:
            example = '"..."' if key.type == "string" else "..."
            raise ConfigError(f"{where} missing {key.name!r}; add {key.name} = {example}")
    if section.check is not None:
        try:
            section.check(table)
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None


def _check_nested(key: Key, value: Any, file: str, header: str, where: str) -> None:
    assert key.table is not None
    name = header.rpartition(".")[2]
    if key.array:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where} {name} must be an array of tables, got {value!r}")
        for i, item in enumerate(value):
            check_section(key.table, item, file, header, i)
    elif not key.named:
        check_section(key.table, value, file, header)
    elif not isinstance(value, dict):
        raise ConfigError(f"{where} {name} must be a table of tables, got {value!r}")
    else:
        allowed = list(key.table.names)
        for item, table in value.items():
            if allowed and item not in allowed:
                raise ConfigError(
                    f"{file}: [{header}.{item}] is not a known name; "
                    f"{_did_you_mean(item, allowed)}accepted: {', '.join(allowed)}"
                )
            wrong = key.table.name_check(item) if key.table.name_check is not None else None
            if wrong is not None:
                raise ConfigError(f"{file}: [{header}.{item}] {wrong}; rename the table")
            check_section(key.table, table, file, f"{header}.{item}")


def _project_name(value: Any) -> str | None:
    from mlkernel.refs import validate_name

    try:
        validate_name(value, "project.name")
    except Exception:
        return "a name of letters, digits, '.', '_' and '-' (at most 200 characters)"
    return None


def _metadata_url(value: Any) -> str | None:
    ok = value == "sqlite" or value.startswith(("sqlite:", "postgresql:", "postgresql+"))
    return None if ok else '"sqlite" or a URL postgresql://user@host:port/db'


PROJECT = Section(
    "project",
    "the project itself",
    (
        Key(
            "name",
            "string",
            "the project's name: letters, digits, `.`, `_`, `-`; at most 200 characters. "
            "Projects sharing one PostgreSQL database are told apart by it",
            default="the folder's name",
            required=True,
            check=_project_name,
        ),
    ),
)
STORAGE = Section(
    "storage",
    "where metadata and objects live",
    (
        Key(
            "metadata",
            "string",
            '`"sqlite"` keeps the metadata in `.mlkernel/meta.db` (WAL mode, foreign keys on); '
            "a `postgresql://` URL puts it in a PostgreSQL database shared by a team (the "
            "schema is created and migrated on first open)",
            default="sqlite",
            check=_metadata_url,
        ),
        Key(
            "objects",
            "string",
            "where content-addressed objects live, relative to the project folder or absolute",
            default=DEFAULT_OBJECTS,
        ),
        Key(
            "gc_grace",
            "number",
            "`mlk gc` leaves unreferenced objects younger than this many seconds: they may be "
            "outputs a pipeline step has written and its runner has yet to register (see "
            '"Garbage collection" in tracking.md)',
            default=600,
            low=0,
        ),
    ),
)
TRACKING = Section(
    "tracking",
    "how runs record metrics",
    (
        Key(
            "flush_rows",
            "integer",
            "buffered metric values written in one transaction when this many are waiting",
            default=DEFAULT_FLUSH_ROWS,
            low=1,
        ),
        Key(
            "flush_seconds",
            "number",
            "... or when the oldest waiting value is this old (checked when a metric is logged)",
            default=DEFAULT_FLUSH_SECONDS,
            low=0,
            low_open=True,
        ),
        Key(
            "verify_reads",
            "boolean",
            "re-hash an object each time it is read (`k.load`, `k.path`); `mlk get` always "
            "verifies unless `--no-verify`",
            default=False,
        ),
    ),
)
_RESERVED = Section(
    "<reserved>",
    "reserved for a part of mlkernel not built yet; kept, not read",
    other=Key("<key>", "any", "not read yet"),
)


def schema() -> Section:
    """The whole file: every section, declared by the config and by each package.

    The package modules imported here are light declarations (tests/test_architecture.py
    checks that they import nothing heavy and nothing above the foundations).
    """
    from mlkernel.monitor.settings import MONITOR, WATCH
    from mlkernel.pipeline.settings import PIPELINES, TRIGGER
    from mlkernel.sched.settings import SCHED

    def table(section: Section, doc: str, **how: Any) -> Key:
        return Key(section.name, "table", doc, table=section, **how)

    return Section(
        "",
        "mlkernel.toml",
        (
            table(PROJECT, PROJECT.doc),
            table(STORAGE, STORAGE.doc),
            table(TRACKING, TRACKING.doc),
            table(WATCH, WATCH.doc, array=True),
            table(MONITOR, MONITOR.doc),
            table(PIPELINES, PIPELINES.doc),
            Key("triggers", "table", TRIGGER.doc, table=TRIGGER, named=True),
            table(SCHED, SCHED.doc),
            *(Key(name, "table", _RESERVED.doc, table=_RESERVED) for name in _RESERVED_NAMES),
        ),
    )


_RESERVED_NAMES = ("data", "serve", "security")

#: Kept for callers that list the core sections (their keys by name).
_SCHEMA: dict[str, dict[str, Key]] = {
    s.name: {k.name: k for k in s.keys} for s in (PROJECT, STORAGE, TRACKING)
}


def _check_file(path: Path, data: dict[str, Any]) -> None:
    root = schema()
    file = str(path)
    sections = [k.name for k in root.keys]
    for name, value in data.items():
        key = root.key(name)
        if key is None or key.table is None:
            raise ConfigError(
                f"{file}: unknown section [{name}]; {_did_you_mean(name, sections)}"
                f"accepted: {', '.join(sorted(sections))}"
            )
        if key.array:
            _check_nested(key, value, file, name, file + ":")
        elif key.named:
            if not isinstance(value, dict):
                raise ConfigError(f"{file}: [{name}] must hold tables like [{name}.NAME]")
            _check_nested(key, value, file, name, f"{file}: [{name}]")
        else:
            check_section(key.table, value, file, name)
    if "name" not in data.get("project", {}):
        raise ConfigError(f"{file}: [project] missing 'name'; add name = \"...\"")


def parse_config(path: Path, data: dict[str, Any]) -> ProjectConfig:
    _check_file(path, data)
    project = data["project"]
    return ProjectConfig(
        name=project["name"],
        root=path.parent,
        storage=StorageConfig(**data.get("storage", {})),
        tracking=TrackingConfig(**data.get("tracking", {})),
        sections={k: v for k, v in data.items() if k in OWNED_SECTIONS},
    )


# -- the docs table -------------------------------------------------------------------------


def _rows(section: Section) -> Iterator[tuple[str, Key]]:
    """(dotted key, key) for every key of ``section`` and of the tables inside it."""
    for key in section.keys:
        if key.table is not None:
            yield key.table.name, key
            yield from _rows(key.table)
        else:
            yield f"{section.name}.{key.name}", key
    if section.other is not None:
        yield f"{section.name}.{section.other.name}", section.other


def _type_cell(key: Key) -> str:
    if key.table is not None:
        return "array of tables" if key.array else ("tables" if key.named else "table")
    if key.choices:
        return " \\| ".join(f'`"{c}"`' for c in key.choices)
    return {"boolean": "true/false"}.get(key.type, key.type)


def _default_cell(key: Key) -> str:
    if key.default is None or key.table is not None:
        return "-"
    if isinstance(key.default, bool):
        return "true" if key.default else "false"
    if isinstance(key.default, str) and key.default != "the folder's name":
        return f'`"{key.default}"`'
    return str(key.default)


def docs_table() -> str:
    """The settings table of docs/configuration.md, generated from the schema."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key in schema().keys:
        if key.table is None or key.table is _RESERVED:
            continue
        for dotted, item in [(key.table.name, key), *_rows(key.table)]:
            meaning = item.doc
            if item.table is None and (item.low is not None or item.expect):
                meaning += f"; {_accepts(item)}"
            name = f"[[{dotted}]]" if item.array else f"[{dotted}]" if item.table else dotted
            cells = (f"`{name}`", _type_cell(item), _default_cell(item), meaning)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at ``path``; a file that is not UTF-8 or not TOML is a
    :class:`ConfigError` naming it (a missing one is :class:`FileNotFoundError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); fix the syntax at that line") from None


def load_config(root: Path) -> ProjectConfig:
    path = root / CONFIG_FILE
    try:
        data = read_toml(path)
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist; run `mlk init {root}`") from None
    return parse_config(path, data)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``mlkernel.toml``."""
    here = (start or Path.cwd()).resolve()
    if not here.is_dir():
        what = "is not a folder" if here.exists() else "does not exist"
        raise NotFoundError(f"{here} {what}; name a project folder (or a folder inside one)")
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    fix = "`mlk init` to create a project here" if start is None else f"`mlk init {here}`"
    raise NotFoundError(f"no {CONFIG_FILE} in {here} or any folder above it; run {fix}")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def render_config(name: str, metadata: str = "sqlite") -> str:
    return (
        "# mlkernel project settings; see docs/configuration.md\n"
        "[project]\n"
        f"name = {_toml_value(name)}\n\n"
        "[storage]\n"
        '# "sqlite" keeps metadata in .mlkernel/meta.db; a postgresql:// URL shares it\n'
        f"metadata = {_toml_value(metadata)}\n"
        f"objects = {_toml_value(DEFAULT_OBJECTS)}\n\n"
        "[tracking]\n"
        f"flush_rows = {DEFAULT_FLUSH_ROWS}\n"
        f"flush_seconds = {DEFAULT_FLUSH_SECONDS}\n"
    )

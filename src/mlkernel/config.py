"""Project settings: ``mlkernel.toml``, validated into typed dataclasses.

Every error names the file, the key and what is accepted. Sections that later
capabilities own (``watch``, ``pipelines``, ``sched``, ...) are kept as raw tables and
validated by their packages.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkernel.errors import ConfigError, NotFoundError

__all__ = [
    "CONFIG_FILE",
    "STATE_DIR",
    "ProjectConfig",
    "find_root",
    "load_config",
    "render_config",
]

CONFIG_FILE = "mlkernel.toml"
STATE_DIR = ".mlkernel"

DEFAULT_OBJECTS = f"{STATE_DIR}/objects"
DEFAULT_FLUSH_ROWS = 5000
DEFAULT_FLUSH_SECONDS = 2.0

#: Sections owned by capability packages; kept raw here and validated where they are used.
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


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "project": {"name": str},
    "storage": {"metadata": str, "objects": str, "gc_grace": (int, float)},
    "tracking": {"flush_rows": int, "flush_seconds": (int, float), "verify_reads": bool},
}


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}accepted: {', '.join(choices)}"


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_table(path: Path, section: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{section}] must be a table")
    keys = _SCHEMA[section]
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"{path}: unknown key '{section}.{key}'; {_suggest(key, list(keys))}")
        expected = keys[key]
        ok = isinstance(value, expected) and not (
            isinstance(value, bool)
            and expected is not bool
            and bool not in (expected if isinstance(expected, tuple) else (expected,))
        )
        if not ok:
            raise ConfigError(
                f"{path}: '{section}.{key}' must be {_type_name(expected)}, got {value!r}"
            )
    return table


def parse_config(path: Path, data: dict[str, Any]) -> ProjectConfig:
    from mlkernel.refs import validate_name

    accepted = sorted([*_SCHEMA, *OWNED_SECTIONS])
    for section in data:
        if section not in _SCHEMA and section not in OWNED_SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; {_suggest(section, accepted)}")
    project = _check_table(path, "project", data.get("project", {}))
    if "name" not in project:
        raise ConfigError(f"{path}: missing 'project.name'; add name = \"...\" under [project]")
    try:
        validate_name(project["name"], "project.name")
    except Exception as exc:
        raise ConfigError(f"{path}: {exc}") from None
    storage = StorageConfig(**_check_table(path, "storage", data.get("storage", {})))
    if storage.metadata != "sqlite" and not storage.metadata.startswith(
        ("sqlite:", "postgresql:", "postgresql+")
    ):
        raise ConfigError(
            f"{path}: 'storage.metadata' is {storage.metadata!r}; accepted: "
            '"sqlite" or a URL postgresql://user@host:port/db'
        )
    if storage.gc_grace < 0:
        raise ConfigError(
            f"{path}: 'storage.gc_grace' is {storage.gc_grace}; use 0 or more seconds"
        )
    tracking_raw = _check_table(path, "tracking", data.get("tracking", {}))
    tracking = TrackingConfig(**tracking_raw)
    if tracking.flush_rows < 1 or tracking.flush_seconds <= 0:
        raise ConfigError(
            f"{path}: 'tracking.flush_rows' and 'tracking.flush_seconds' must be positive"
        )
    sections = {k: v for k, v in data.items() if k in OWNED_SECTIONS}
    return ProjectConfig(
        name=project["name"],
        root=path.parent,
        storage=storage,
        tracking=tracking,
        sections=sections,
    )


def load_config(root: Path) -> ProjectConfig:
    path = root / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist; run `mlk init {root}`") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); fix the syntax at that line") from None
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

"""The ``[pipelines]`` and ``[triggers.*]`` sections of mlkernel.toml, declared (see
:mod:`mlkernel.config`). A light module: the cron grammar is checked by
:mod:`mlkernel.pipeline.cron` (no heavy import either) when a file is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlkernel.config import Key, Section

__all__ = ["EXECUTOR_NAMES", "PIPELINES", "RESERVED", "TRIGGER", "PipelineSettings"]

EXECUTOR_NAMES = ("inline", "process", "ray")

#: keys of [pipelines] that are settings, not pipeline names.
RESERVED = ("params", "executor", "workers", "ml_mode", "ray_address")


@dataclass(frozen=True)
class PipelineSettings:
    """``[pipelines]``, typed: how runs go by default, the declared pipelines and their
    parameters. The file was checked against :data:`PIPELINES` when it was opened."""

    executor: str | None = None
    workers: int | None = None
    ml_mode: bool = True
    ray_address: str | None = None
    #: name -> target as written (``mlkernel.pipeline.loader.declared`` checks them)
    targets: dict[str, Any] = field(default_factory=dict)
    #: ``[pipelines.params]``: pipeline -> its table of parameter values
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> PipelineSettings:
        section = sections.get("pipelines", {})
        if not isinstance(section, dict):
            section = {}
        return cls(
            executor=section.get("executor"),
            workers=section.get("workers"),
            ml_mode=bool(section.get("ml_mode", True)),
            ray_address=section.get("ray_address"),
            targets={k: v for k, v in section.items() if k not in RESERVED},
            params=section.get("params", {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The section as mlkernel.toml would hold it (unset keys left out)."""
        found: dict[str, Any] = dict(self.targets)
        for key in ("executor", "workers", "ray_address"):
            if getattr(self, key) is not None:
                found[key] = getattr(self, key)
        if not self.ml_mode:
            found["ml_mode"] = False
        if self.params:
            found["params"] = self.params
        return found


def _target(value: Any) -> str | None:
    if isinstance(value, str) and ":" in value:
        return None
    return 'a pipeline target "path/to/file.py:function" or "module:function"'


PARAMS = Section(
    "pipelines.params.<pipeline>",
    "parameters of one pipeline; a sub-table names a step",
    other=Key("<key>", "any", "a parameter (or a table of a step's parameters)"),
)
PIPELINES = Section(
    "pipelines",
    "declared pipelines and how they run",
    (
        Key("executor", "string", "where steps run", "process", choices=EXECUTOR_NAMES),
        Key("workers", "integer", "steps run at once (default: the CPUs, at most 4)", low=1),
        Key("ml_mode", "boolean", "run process steps in ML mode", True),
        Key(
            "ray_address", "string", 'the Ray cluster of `executor = "ray"` (default: a local one)'
        ),
        Key("params", "table", PARAMS.doc, table=PARAMS, named=True),
    ),
    other=Key(
        "<name>",
        "string",
        'a pipeline by name: `train = "pipelines/train.py:train"`',
        check=_target,
        expect='a pipeline target "path/to/file.py:function" or "module:function"',
    ),
)


def _cron(value: Any) -> str | None:
    from mlkernel.errors import ConfigError
    from mlkernel.pipeline.cron import Cron

    try:
        Cron.parse(value)
    except ConfigError as exc:
        return f"a cron expression ({exc})"
    return None


def _one_condition(table: Mapping[str, Any]) -> None:
    from mlkernel.errors import ConfigError

    given = [c for c in ("cron", "dataset", "drift") if c in table]
    if len(given) > 1:
        raise ConfigError(
            f"[triggers] a trigger has {' and '.join(given)}; give one condition per trigger"
        )


def _trigger_name(name: str) -> str | None:
    from mlkernel.refs import validate_name

    try:
        validate_name(name, "trigger name")
    except Exception as exc:
        return str(exc).split(";")[0]
    return None


TRIGGER = Section(
    "triggers.<name>",
    "a continuous-training trigger: runs a pipeline on a schedule, new data or drift (one condition; none = manual)",
    (
        Key("pipeline", "string", "the pipeline it runs", required=True),
        Key(
            "cron",
            "string",
            "fire on this schedule (`0 2 * * *`, `@hourly`)",
            check=_cron,
            expect="a cron expression",
        ),
        Key("dataset", "string", "fire when this dataset gets a new version"),
        Key("drift", "string", "fire when a drift report on this dataset finds drift"),
        Key("params", "table", "parameters for the run, e.g. `params = { lr = 0.1 }`"),
        Key(
            "executor",
            "string",
            "where its steps run (default: `[pipelines] executor`)",
            choices=EXECUTOR_NAMES,
        ),
    ),
    check=_one_condition,
    name_check=_trigger_name,
)

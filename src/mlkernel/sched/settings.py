"""The ``[sched]`` section of mlkernel.toml, declared (see :mod:`mlkernel.config`).

A light module: it imports only the config's schema types; the rules between keys
(window grammar, guarantees adding up to at most 100) are checked by
:meth:`mlkernel.sched.policy.PolicyConfig.from_dict`, imported when a file is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlkernel.config import Key, Section

__all__ = ["POOL_NAMES", "SCHED", "offpeak_text"]

POOL_NAMES = ("ml", "prod", "dev", "batch")
_MATCH_KEYS = (
    Key("name", "string", "the command name (comm) equals this"),
    Key(
        "exe",
        "string",
        "one of the names the process runs as (exe, argv[0], the script, -m MODULE)",
    ),
    Key("user", "string", "the process's user name equals this"),
    Key("cgroup", "string", "the process's cpu cgroup path starts with this"),
)

POOL = Section(
    "sched.pools.<pool>",
    "a pool's share of the machine: ml, prod, dev or batch",
    (
        Key(
            "guarantee",
            "number",
            "percent of the CPU it keeps under full contention",
            0,
            low=0,
            high=100,
        ),
        Key(
            "weight",
            "number",
            "its weight (cgroup v2 scale; v1 shares = weight * 10.24)",
            100,
            low=1,
            high=10000,
        ),
        Key(
            "maximum",
            "number",
            "hard cap in percent of the machine (CFS quota); none when absent",
            low=1,
            high=100,
        ),
    ),
    names=POOL_NAMES,
)
HOLD = Section(
    "sched.hold",
    "opt-in: processes mlkernel did not start, held back while ML mode is on (every key given must match)",
    _MATCH_KEYS,
)
RULE = Section(
    "sched.rules",
    "opt-in: processes matching are placed in a pool at every tick",
    (
        Key(
            "pool",
            "string",
            "the pool they go to (`ml` is entered by claims only)",
            required=True,
            choices=("prod", "dev", "batch"),
        ),
        *_MATCH_KEYS,
    ),
)


def _offpeak(value: Any) -> str | None:
    from mlkernel.errors import ConfigError
    from mlkernel.sched.policy import OffPeak

    try:
        OffPeak.parse(value)
    except ConfigError:
        return 'a daily window like "22:00-06:00"'
    return None


def _whole(table: Mapping[str, Any]) -> None:
    from mlkernel.sched.policy import PolicyConfig

    PolicyConfig.from_dict(table)


SCHED = Section(
    "sched",
    "pools, time windows, ML mode and off-peak hours",
    (
        Key(
            "policy",
            "string",
            '`"auto"` puts off-peak windows learned from the load history ahead of the static ones',
            "static",
            choices=("static", "auto"),
        ),
        Key(
            "ml_weight",
            "number",
            "the ml pool's weight while ML mode is on",
            10000,
            low=1,
            high=10000,
        ),
        Key(
            "held_weight",
            "number",
            "dev and batch weight while ML mode is on",
            1,
            low=1,
            high=10000,
        ),
        Key(
            "windows",
            "list",
            'time windows, first match wins: `"weekdays 08-20: prod 50 / dev 40"`, `"otherwise: batch 70"`, or tables with days, hours, weights',
            [],
        ),
        Key(
            "offpeak",
            "string",
            "the daily off-peak window (`HH:MM-HH:MM`, may wrap midnight): deferred work such as the watcher's drift analysis runs only then; every hour when absent",
            check=_offpeak,
            expect='a daily window like "22:00-06:00"',
        ),
        Key("parent", "string", "the cgroup (relative) the pool groups are made under", "mlkernel"),
        Key(
            "tick_seconds",
            "number",
            "seconds between the controller's policy ticks",
            60,
            low=1,
            high=3600,
        ),
        Key("pools", "table", POOL.doc, table=POOL, named=True),
        Key("hold", "table", HOLD.doc, table=HOLD, array=True),
        Key("rules", "table", RULE.doc, table=RULE, array=True),
    ),
    check=_whole,
)


def offpeak_text(sections: Mapping[str, Any]) -> str | None:
    """The project's off-peak window as written: ``[sched] offpeak``, or the older
    ``[monitor] offpeak`` it replaces (kept working; see docs/configuration.md)."""
    sched = sections.get("sched") or {}
    monitor = sections.get("monitor") or {}
    text = sched.get("offpeak") or monitor.get("offpeak")
    return None if text is None else str(text)

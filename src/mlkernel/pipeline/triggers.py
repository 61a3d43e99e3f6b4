"""Triggers for continuous training, declared in mlkernel.toml::

    [triggers.nightly]
    pipeline = "train"
    cron = "0 2 * * *"            # a schedule (local time)

    [triggers.new-data]
    pipeline = "train"
    dataset = "train"             # a new version of dataset:train

    [triggers.drifted]
    pipeline = "train"
    drift = "train"               # a drift report on dataset:train that found drift

    [triggers.by-hand]
    pipeline = "train"            # no condition: fired with `mlk triggers fire by-hand`

Optional keys: ``params`` (a table of parameter overrides) and ``executor``. Each
trigger's state (when it fired, what it saw last, its last run) is a ``trigger`` context
in the metadata database; a run it starts records the trigger in its own context.
``mlk triggers run-pending`` fires what is due; the daemon will call the same function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlkernel.errors import MLKernelError, NotFoundError

if TYPE_CHECKING:
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.pipeline.runner import RunResult


class Starter(Protocol):
    """What a trigger needs of the pipeline service: to start a run (the service passes
    itself, so triggers need not import it)."""

    def run(
        self,
        pipeline: Any,
        *,
        params: dict[str, Any] | None = ...,
        executor: str | None = ...,
        trigger: dict[str, Any] | None = ...,
        echo: Callable[[str], None] | None = ...,
    ) -> RunResult: ...


__all__ = [
    "FireResult",
    "Trigger",
    "TriggerInfo",
    "describe",
    "fire",
    "load_triggers",
    "run_pending",
]

CONDITIONS = ("cron", "dataset", "drift")
CONTEXT = "trigger"


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    pipeline: str
    type: str  # cron | dataset | drift | manual
    condition: str | None
    params: dict[str, Any] = field(default_factory=dict)
    executor: str | None = None


@dataclass(frozen=True)
class TriggerInfo:
    """A declared trigger as ``mlk triggers ls`` shows it: its condition, when it last
    fired and what that run did, and (a schedule) when it is next due."""

    name: str
    type: str
    condition: str | None
    pipeline: str
    last_fired: float | None
    last_run: int | None
    last_state: str | None
    next: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "condition": self.condition,
            "pipeline": self.pipeline,
            "last_fired": self.last_fired,
            "last_run": self.last_run,
            "last_state": self.last_state,
            "next": self.next,
        }


@dataclass(frozen=True)
class FireResult:
    """What a fired trigger did: why it fired, the run it started (None: its pipeline
    could not start, ``state`` is ``error``) and how that run ended."""

    trigger: str
    type: str
    reason: str
    run: int | None
    state: str
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "type": self.type,
            "reason": self.reason,
            "run": self.run,
            "state": self.state,
            "error": self.error,
        }


def load_triggers(ctx: Context) -> dict[str, Trigger]:
    """The ``[triggers.*]`` tables, typed. The file was checked against their schema
    (:data:`mlkernel.pipeline.settings.TRIGGER`) when the project was opened."""
    found: dict[str, Trigger] = {}
    for name, table in ctx.config.sections.get("triggers", {}).items():
        kind = next((c for c in CONDITIONS if c in table), "manual")
        found[name] = Trigger(
            name,
            table["pipeline"],
            kind,
            table.get(kind),
            table.get("params", {}),
            table.get("executor"),
        )
    return found


def _states(ctx: Context) -> dict[str, dict[str, Any]]:
    return {c["name"]: dict(c["properties"] or {}) for c in ctx.meta.contexts(CONTEXT)}


def _report_dataset(record: ArtifactRecord) -> str | None:
    """The dataset a drift report is about, from its properties (never from its name).

    Reports record ``dataset``; reports written before it did name their current
    version in ``current`` (``dataset:NAME@N``).
    """
    props = record.properties
    if "dataset_drift" not in props:
        return None
    name = props.get("dataset")
    if isinstance(name, str):
        return name
    current = props.get("current")
    if isinstance(current, str):
        from mlkernel.refs import parse_ref

        try:
            return parse_ref(current).name
        except MLKernelError:
            return None
    return None


def _drift_reports(ctx: Context, dataset: str, after: int) -> list[ArtifactRecord]:
    """Drift reports on ``dataset`` registered after artifact id ``after``, oldest first."""
    found = [
        v
        for r in ctx.table.latest("report")
        for v in ctx.table.versions("report", r.name)
        if v.id > after and _report_dataset(v) == dataset
    ]
    return sorted(found, key=lambda r: r.id)


def _check(
    ctx: Context, trigger: Trigger, state: dict[str, Any], now: float
) -> tuple[str | None, dict[str, Any]]:
    """(why it is due or None, the state to keep)."""
    new = dict(state)
    if trigger.type == "cron":
        from mlkernel.pipeline.cron import Cron

        assert trigger.condition is not None
        base = state.get("last_fired") or state.get("since")
        if base is None:
            new["since"] = now  # first seen: due from the next occurrence on
            return None, new
        due = Cron.parse(trigger.condition).next_after(float(base))
        if due <= now:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(due))
            return f"cron '{trigger.condition}' was due at {stamp}", new
        return None, new
    if trigger.type == "dataset":
        assert trigger.condition is not None
        versions = ctx.table.versions("dataset", trigger.condition)
        if not versions:
            return None, new
        latest = versions[-1]
        new["seen"] = latest.version
        if state.get("seen") != latest.version:
            before = state.get("seen")
            was = f" (last seen @{before})" if before is not None else ""
            return f"{latest.ref} is new{was}", new
        return None, new
    if trigger.type == "drift":
        assert trigger.condition is not None
        seen = int(state.get("seen", 0))
        fresh = _drift_reports(ctx, trigger.condition, seen)
        if fresh:
            new["seen"] = max(r.id for r in fresh)
        drifted = [r for r in fresh if r.properties.get("dataset_drift")]
        if drifted:
            r = drifted[-1]
            props = r.properties
            return (
                f"drift detected in {r.ref} ({props.get('current')} against "
                f"{props.get('reference')}: {', '.join(props.get('drifted', [])) or 'dataset'})",
                new,
            )
        return None, new
    return None, new


def describe(ctx: Context) -> list[TriggerInfo]:
    from mlkernel.pipeline.cron import Cron

    states = _states(ctx)
    now = time.time()
    rows = []
    for trigger in load_triggers(ctx).values():
        state = states.get(trigger.name, {})
        due = None
        if trigger.type == "cron":
            assert trigger.condition is not None
            base = state.get("last_fired") or state.get("since") or now
            due = Cron.parse(trigger.condition).next_after(float(base))
        rows.append(
            TriggerInfo(
                name=trigger.name,
                type=trigger.type,
                condition=trigger.condition,
                pipeline=trigger.pipeline,
                last_fired=state.get("last_fired"),
                last_run=state.get("last_run"),
                last_state=state.get("last_state"),
                next=due,
            )
        )
    return rows


def _run(
    ctx: Context, pipelines: Starter, trigger: Trigger, reason: str,
    state: dict[str, Any], now: float, echo: Callable[[str], None] | None,
) -> FireResult:  # fmt: skip
    fired = {"name": trigger.name, "type": trigger.type, "reason": reason, "at": now}
    if echo is not None:
        from mlkernel.pipeline.runner import SafeEcho

        echo = SafeEcho(echo)  # a failing echo must not lose the trigger's state
        echo(f"trigger {trigger.name} fired: {reason}")
    try:
        result = pipelines.run(
            trigger.pipeline,
            params=dict(trigger.params),
            executor=trigger.executor,
            trigger=fired,
            echo=echo,
        )
        outcome = FireResult(
            trigger.name, trigger.type, reason, result.id, result.state, result.error
        )
    except MLKernelError as exc:
        outcome = FireResult(trigger.name, trigger.type, reason, None, "error", str(exc))
    state = {
        **state,
        "last_fired": now,
        "last_run": outcome.run,
        "last_state": outcome.state,
        "last_reason": reason,
    }
    ctx.meta.put_context(CONTEXT, trigger.name, state)
    return outcome


def run_pending(
    ctx: Context,
    pipelines: Starter,
    *,
    now: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[FireResult]:
    """Fire every trigger that is due now (each run started by ``pipelines``); return
    what each fired run did."""
    now = time.time() if now is None else now
    states = _states(ctx)
    fired = []
    for trigger in load_triggers(ctx).values():
        state = states.get(trigger.name, {})
        reason, new = _check(ctx, trigger, state, now)
        if reason is not None:
            fired.append(_run(ctx, pipelines, trigger, reason, new, now, echo))
        elif new != state:
            ctx.meta.put_context(CONTEXT, trigger.name, new)
    return fired


def fire(
    ctx: Context,
    pipelines: Starter,
    name: str,
    *,
    echo: Callable[[str], None] | None = None,
) -> FireResult:
    """Fire one trigger now, whatever its condition (the ``manual`` way)."""
    triggers = load_triggers(ctx)
    trigger = triggers.get(name)
    if trigger is None:
        raise NotFoundError(
            f"no trigger {name!r} in mlkernel.toml ({', '.join(sorted(triggers)) or 'none'}); "
            "declare it under [triggers.NAME]"
        )
    import dataclasses

    state = _states(ctx).get(name, {})
    manual = dataclasses.replace(trigger, type="manual")
    return _run(ctx, pipelines, manual, "fired by hand", state, time.time(), echo)

"""The scheduler's operations, for one actor: ML mode, pools, policies, the doctor.

The scheduler is the machine's, not a project's: a :class:`SchedService` is built from the
actor who calls, the controller's runtime directory and (optionally) a ``[sched]`` table,
never from a project's context. ``mlk mode``, ``mlk policy`` and ``mlk doctor`` build one
(:meth:`SchedService.from_files` finds the table in ``--config`` or the nearest
mlkernel.toml), call one operation and render its typed result (:mod:`.results`); the
Kernel builds one for its project (``k.sched``, ``k.ml_mode()``).

    sched = SchedService.from_files(Actor.current(), start=Path("."))
    sched.policy_now()                  # the window and every pool's weight now
    sched.status()                      # the controller's status, or this machine's
    with sched.ml_mode() as claim:      # this process in ML mode for the block
        ...

Every call to the controller goes through :class:`~mlkernel.sched.client.Client`; every
answer comes back typed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.config import CONFIG_FILE, check_section, read_toml
from mlkernel.errors import ConfigError, NotFoundError, UsageError
from mlkernel.sched.results import (
    Claimed,
    ControllerUser,
    MachineStatus,
    OffpeakSuggestion,
    Placed,
    PolicyApplied,
    PolicyNow,
    PolicyPlan,
    PoolNow,
    Released,
    ReleasedAll,
    Stopped,
)
from mlkernel.sched.settings import SCHED

if TYPE_CHECKING:
    from mlkernel.config import ProjectConfig
    from mlkernel.sched.client import Client
    from mlkernel.sched.doctor import Diagnosis
    from mlkernel.sched.policy import PolicyConfig

__all__ = ["PolicySource", "SchedService", "sched_table"]


def sched_table(
    config_file: Path | None = None, start: Path | None = None
) -> tuple[Path | None, dict[str, Any]]:
    """The ``[sched]`` table of ``config_file``, or of the nearest mlkernel.toml at or above
    ``start`` (the current folder): ``(file, table)``, ``(None, {})`` when there is none.
    The table is checked against its schema, with the same messages as a project open."""
    if config_file is not None:
        if not config_file.exists():
            raise NotFoundError(f"config file {config_file} does not exist")
        path: Path | None = config_file
    else:
        here = (start or Path(".")).resolve()
        if not here.is_dir():
            what = "is not a folder" if here.exists() else "does not exist"
            raise NotFoundError(f"{here} {what}; name a project folder (or a folder inside one)")
        path = next(
            (d / CONFIG_FILE for d in (here, *here.parents) if (d / CONFIG_FILE).exists()), None
        )
    if path is None:
        return None, {}
    data = read_toml(path)
    table = data.get("sched", {})
    check_section(SCHED, table, str(path), "sched")
    return path, table


@dataclass(frozen=True)
class PolicySource:
    """A policy and where it came from (``path`` None: no file, or a project's table)."""

    path: Path | None
    table: Mapping[str, Any]
    config: PolicyConfig


class SchedService:
    """The machine's scheduler as ``actor`` uses it.

    ``runtime_dir`` names the controller (default: the machine's); ``config`` is the
    ``[sched]`` table a controller started by this service gets, and the policy that
    ``policy.*`` operations show and apply; ``label`` (e.g. ``project churn (/src/churn)``)
    tells ``mlk mode status`` whom this service's claims and placements are for.
    """

    def __init__(
        self,
        actor: Actor,
        *,
        runtime_dir: Path | None = None,
        config: Mapping[str, Any] | None = None,
        label: str | None = None,
        source: Path | None = None,
        config_error: ConfigError | None = None,
    ) -> None:
        self._actor = actor
        self._runtime_dir = runtime_dir
        self._table: Mapping[str, Any] = dict(config or {})
        self._label = label
        self._source = source  # the file the table came from, named in its errors
        self._config_error = config_error  # the table could not be read: policy.* raise it

    @classmethod
    @exempt("construction: reads the [sched] table a service is built with")
    def from_files(
        cls,
        actor: Actor,
        *,
        config_file: Path | None = None,
        start: Path | None = None,
        runtime_dir: Path | None = None,
    ) -> SchedService:
        """A service with the ``[sched]`` table of ``config_file``, else of the nearest
        mlkernel.toml at or above ``start``. A file that does not exist raises now; a
        table that fails its checks raises when a policy operation needs it (the doctor
        reports it as its failing check)."""
        try:
            path, table = sched_table(config_file, start)
        except ConfigError as exc:
            return cls(actor, runtime_dir=runtime_dir, config_error=exc)
        return cls(actor, runtime_dir=runtime_dir, config=table, source=path)

    @classmethod
    @exempt("construction: a project's [sched] table and name")
    def for_project(
        cls, actor: Actor, project: ProjectConfig, *, runtime_dir: Path | None = None
    ) -> SchedService:
        """A service for ``project``: its ``[sched]`` table; its claims name the project."""
        return cls(
            actor,
            runtime_dir=runtime_dir,
            config=project.sections.get("sched"),
            label=f"project {project.name} ({project.root})",
        )

    @property
    def actor(self) -> Actor:
        return self._actor

    @property
    def runtime_dir(self) -> Path:
        """The controller's runtime directory (the machine's unless one was given)."""
        from mlkernel.sched.journal import default_runtime_dir

        return self._runtime_dir if self._runtime_dir is not None else default_runtime_dir()

    def _client(self, *, autostart: bool = True) -> Client:
        """A connection to the controller; ``autostart`` starts one with this table."""
        from mlkernel.sched.client import Client

        table = self._table or None
        return Client(self._runtime_dir, autostart=autostart, config=table, label=self._label)

    # -- ML mode and pools ---------------------------------------------------------------

    @operation("mode.status", Action.READ, cli="mode status")
    def status(self) -> MachineStatus:
        """The scheduler on this machine: the controller's status, else this machine's
        backends (never starts a controller)."""
        try:
            client = self._client(autostart=False)
        except NotFoundError:
            from mlkernel.sched.backends import detect

            return MachineStatus.detected(detect())
        with client:
            return MachineStatus.from_answer(client.status())

    @operation("mode.claim", Action.EXECUTE, resource="pid", cli="mode ml")
    def claim(self, pid: int | None = None) -> Claimed:
        """Put ``pid`` (default: the calling process) in ML mode until it exits or is
        released; starts the machine's controller when none runs."""
        with self._client() as c:
            return Claimed.from_answer(c.enter(pid))

    @operation("mode.release", Action.EXECUTE, resource="pid", cli="mode ml")
    def release(self, pid: int | None = None) -> Released:
        """End the ML-mode claim of ``pid`` (default: the calling process)."""
        with self._client(autostart=False) as c:
            return Released.from_answer(c.call("leave", pid=pid))

    @operation("mode.release_all", Action.EXECUTE, cli="mode ml")
    def release_all(self) -> ReleasedAll:
        """End every ML-mode claim of the caller (root: every claim)."""
        with self._client(autostart=False) as c:
            answer = c.call("off")
        return ReleasedAll(tuple(int(p) for p in answer["left"]), int(answer["claims"]))

    @exempt("a context manager over claim and release, which authorize")
    @contextlib.contextmanager
    def ml_mode(self, pid: int | None = None) -> Iterator[Claimed]:
        """ML mode for ``pid`` (default: this process) while the block runs. The claim also
        ends by itself if the process dies (the controller watches it through a pidfd)."""
        claimed = self.claim(pid)
        try:
            yield claimed
        finally:
            self.release(claimed.pid)

    @operation("mode.place", Action.EXECUTE, resource="pid", cli="mode run")
    def place(self, pid: int | None, pool: str) -> Placed:
        """Move ``pid`` (None: the caller) into ``pool`` (prod, dev, batch) until it exits;
        not placed, with the reason, where the machine has no cgroup backend."""
        with self._client() as c:
            return Placed.from_answer(c.place(pid, pool))

    @operation("mode.stop", Action.ADMIN, cli="mode stop")
    def stop(self, force: bool = False) -> Stopped:
        """Stop the machine's controller, which restores every value it changed, unless
        something still uses it (``force``: anyway)."""
        from mlkernel.sched.client import stop_if_unused

        result = stop_if_unused(self._runtime_dir, force=force)
        users = tuple(ControllerUser.from_answer(u) for u in result.users)
        return Stopped(result.pid, result.stopped, users)

    # -- policies ------------------------------------------------------------------------

    def _policy(self) -> PolicySource:
        from mlkernel.sched.policy import PolicyConfig

        if self._config_error is not None:
            raise self._config_error
        try:
            config = PolicyConfig.from_dict(self._table)
        except ConfigError as exc:
            where = self._source
            raise ConfigError(f"{where}: {exc}" if where is not None else str(exc)) from None
        return PolicySource(self._source, self._table, config)

    @operation("policy.show", Action.READ, cli="policy show")
    def policy_now(self, at: datetime | None = None) -> PolicyNow:
        """The window active at ``at`` (default: now) and every pool's weight and share."""
        from mlkernel.sched.cgroups import POOLS, shares_for

        config = self._policy().config
        when = at if at is not None else datetime.now()
        label, weights = config.weights_at(when)
        total = sum(weights.values())
        pools = tuple(
            PoolNow(
                pool=p,
                weight=round(weights[p], 2),
                share=round(100 * weights[p] / total, 1),
                guarantee=config.pools[p].guarantee,
                maximum=config.pools[p].maximum,
                cpu_shares=shares_for(weights[p]),
            )
            for p in POOLS
        )
        return PolicyNow(when, label, pools)

    @operation("policy.plan", Action.READ, cli="policy plan")
    def plan(self, start: datetime | None = None, hours: int = 24) -> PolicyPlan:
        """The policy hour by hour for ``hours`` (1 to 336) from ``start`` (default: now)."""
        from mlkernel.sched.cgroups import POOLS
        from mlkernel.sched.policy import plan

        if not 1 <= hours <= 24 * 14:
            raise UsageError("--hours must be from 1 to 336")
        begin = start if start is not None else datetime.now()
        rows = plan(self._policy().config, begin, hours)
        return PolicyPlan(begin, hours, tuple(POOLS), tuple(rows))

    @operation("policy.apply", Action.ADMIN, cli="policy apply")
    def apply(self) -> PolicyApplied:
        """Load the ``[sched]`` table into the controller (starting one when none runs)
        and write the policy's weights for now."""
        table = self._policy().table  # checked here: the error names the file's key first
        with self._client() as c:
            return PolicyApplied.from_answer(c.policy_apply(table))

    @operation("policy.suggest", Action.READ, cli="policy suggest")
    def suggest(self, history: Path | None = None, min_days: int = 14) -> OffpeakSuggestion:
        """Off-peak windows learned from the load history (default: the file the controller
        keeps), once it holds ``min_days`` days."""
        from mlkernel.sched.history import HISTORY_NAME, History, suggest_offpeak
        from mlkernel.sched.journal import state_dir_for

        path = history if history is not None else state_dir_for(self._runtime_dir) / HISTORY_NAME
        if not path.exists():
            raise NotFoundError(
                f"no load history at {path}; the controller records it every minute while it "
                "runs (it starts with the first `mlk mode ml` or `mlk policy apply`), "
                "or pass --history FILE"
            )
        h = History(path)
        try:
            s = suggest_offpeak(h, min_days=min_days)
        finally:
            h.close()
        return OffpeakSuggestion(s.ok, s.reason, s.days, tuple(s.windows))

    # -- the doctor ----------------------------------------------------------------------

    @operation("doctor.run", Action.READ, cli="doctor")
    def doctor(self) -> Diagnosis:
        """Check this machine's scheduler backends and the scheduler's parts (config,
        controller, journal, history, pools), changing nothing."""
        from mlkernel.sched.doctor import diagnose

        error = None if self._config_error is None else str(self._config_error)
        table = None if error is not None else self._table
        return diagnose(table, self._runtime_dir, config_error=error)

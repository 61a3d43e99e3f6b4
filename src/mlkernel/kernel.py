"""The Kernel: the composition root of one open project.

It opens the storage once (the metadata store, the object store, the in-memory table),
builds a :class:`~mlkernel.context.Context` for an actor and the services on it, and hands
them out: ``k.artifacts``, ``k.catalog``, ``k.tracking``, ``k.data``, ``k.monitor``,
``k.pipelines``. ``k.as_actor(actor)`` gives the same project seen by another actor.

Every operation lives in one service and authorizes its caller there; the Kernel's own
methods (``k.resolve``, ``k.log_artifact``, ``k.start_run`` ...) are the SDK's short names
for them and add nothing. Only entry points (the SDK, the CLI, servers, the daemon) import
this module; services never see the Kernel.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlkernel.authz import OPERATIONS, Actor, Operation, exempt
from mlkernel.config import (
    CONFIG_FILE,
    STATE_DIR,
    ProjectConfig,
    find_root,
    load_config,
    render_config,
)
from mlkernel.context import Context, Shared
from mlkernel.errors import ConflictError, UsageError
from mlkernel.fsutil import write_atomic
from mlkernel.refs import Ref, validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.gc import GCReport
    from mlkernel.artifacts.results import ArtifactDetail, ProjectStatus
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord, ExecutionRecord, Lineage
    from mlkernel.models.service import ModelService
    from mlkernel.monitor.service import MonitorService
    from mlkernel.pipeline.runner import RunResult
    from mlkernel.pipeline.service import PipelineService
    from mlkernel.provenance import Environment
    from mlkernel.sched.results import Claimed
    from mlkernel.sched.service import SchedService
    from mlkernel.tracking.results import RunInfo
    from mlkernel.tracking.run import Run

__all__ = ["Kernel", "init", "open_project", "operations"]

STATE_SUBDIRS = ("objects", "cache", "logs", "keys", "backups")


def _open_context(config: ProjectConfig, actor: Actor) -> Context:
    """Open a project's storage for ``actor``."""
    from mlkernel.artifacts.store import LocalObjectStore
    from mlkernel.meta.changes import watcher_for
    from mlkernel.meta.store import MetaStore
    from mlkernel.meta.table import MetadataTable

    meta = MetaStore(config.metadata_url, config.name, config.root)
    try:
        table = MetadataTable(meta, watcher_for(meta.url))
    except BaseException:
        meta.close()
        raise
    return Context(
        config=config,
        actor=actor,
        meta=meta,
        objects=LocalObjectStore(config.objects_dir),
        table=table,
        host=socket.gethostname(),
        shared=Shared(config.root, config.state_dir / "cache"),
    )


class Kernel:
    """An open mlkernel project, seen by one actor."""

    def __init__(self, config: ProjectConfig, actor: Actor | None = None) -> None:
        self._owner = True  # this kernel opened the storage; views made by as_actor did not
        self._wire(_open_context(config, actor if actor is not None else Actor.current()))

    def _wire(self, ctx: Context) -> None:
        from mlkernel.artifacts.catalog import CatalogService
        from mlkernel.artifacts.service import ArtifactService
        from mlkernel.data.service import DataService
        from mlkernel.tracking.service import RunService

        self.context = ctx  # storage handles: for services and tests, never entry points
        self.config = ctx.config
        self.root = ctx.root
        self.actor = ctx.actor
        self.host = ctx.host
        self.artifacts = ArtifactService(ctx)
        self.catalog = CatalogService(ctx)
        # The hot path (microseconds, called per reference): k.resolve is the catalog's own
        # bound operation, without the extra frame of the method below.
        self.__dict__["resolve"] = self.catalog.resolve
        self.tracking = RunService(ctx, self.artifacts)
        self.data: DataService = DataService(ctx, self.artifacts, self.catalog)
        """Datasets: ingest, open in a layout, stream (see :mod:`mlkernel.data`)."""
        self.artifacts.datasets = self.data

    @cached_property
    def sched(self) -> SchedService:
        """The machine's scheduler, for this project's actor: ML mode, pools, policies."""
        from mlkernel.sched.service import SchedService

        return SchedService.for_project(self.actor, self.config)

    @cached_property
    def monitor(self) -> MonitorService:
        """Profiles, drift and drift reports of datasets (see :mod:`mlkernel.monitor`)."""
        from mlkernel.monitor.service import MonitorService

        return MonitorService(self.context, self.artifacts, self.catalog, self.tracking, self.data)

    @cached_property
    def models(self) -> ModelService:
        """The model registry: log, list, show and load model versions."""
        from mlkernel.models.service import ModelService

        return ModelService(self.context, self.artifacts, self.catalog, self.tracking, self.data)

    @cached_property
    def pipelines(self) -> PipelineService:
        """Pipelines: run, resume, inspect, cancel; triggers (see :mod:`mlkernel.pipeline`)."""
        from mlkernel.pipeline.service import PipelineService

        return PipelineService(self.context, self.artifacts, self.catalog, self.tracking)

    @exempt("composition: builds the services for another actor, who each authorize")
    def as_actor(self, actor: Actor) -> Kernel:
        """This project seen by ``actor``: the same storage, services that act for it.

        Cheap: nothing is reopened. Closing a view closes nothing; close the kernel that
        opened the project.
        """
        view = Kernel.__new__(Kernel)
        view._owner = False
        view._wire(self.context.for_actor(actor))
        return view

    # -- life cycle ------------------------------------------------------------------

    @exempt("life cycle: releases the storage this kernel opened")
    def close(self) -> None:
        if not self._owner:  # a view: the storage is its base kernel's
            return
        ctx = self.context
        ctx.shared.close()
        # The store's connections first: the table's watcher may close a descriptor of
        # the WAL index, which drops the locks of any connection still open here.
        ctx.meta.close()
        ctx.table.close()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def user(self) -> str:
        """The name of the actor this kernel works for (recorded as created_by, user)."""
        return self.actor.name

    @property
    def metadata_location(self) -> str:
        """Where the metadata lives, without a password: the SQLite file or the server."""
        return self.catalog.metadata_location

    # -- the SDK's short names for service operations -----------------------------------
    # Each delegates to the operation named in its docstring, which authorizes.

    @exempt("delegates to CatalogService.resolve")
    def resolve(self, ref: str | Ref, kind: str | None = None) -> ArtifactRecord:
        """``k.catalog.resolve``: the artifact a reference names."""
        return self.catalog.resolve(ref, kind)

    @exempt("delegates to CatalogService.ls")
    def ls(self, kind: str | None = None) -> list[ArtifactRecord]:
        """``k.catalog.ls``: the latest version of every artifact (of one ``kind``)."""
        return self.catalog.ls(kind)

    @exempt("delegates to CatalogService.versions")
    def versions(self, ref: str | ArtifactRecord) -> list[ArtifactRecord]:
        """``k.catalog.versions``: every version of an artifact."""
        return self.catalog.versions(ref)

    @exempt("delegates to CatalogService.aliases")
    def aliases(self) -> dict[tuple[str, str, str], int]:
        """``k.catalog.aliases``: (kind, name, alias) -> version."""
        return self.catalog.aliases()

    @exempt("delegates to CatalogService.show")
    def show(self, ref: str) -> ArtifactDetail:
        """``k.catalog.show``: one artifact version in detail."""
        return self.catalog.show(ref)

    @exempt("delegates to CatalogService.set_alias")
    def alias_set(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """``k.catalog.set_alias``: point ``alias`` at the version ``ref`` names."""
        return self.catalog.set_alias(ref, alias)

    @exempt("delegates to CatalogService.remove_alias")
    def alias_rm(self, ref: str, alias: str) -> int:
        """``k.catalog.remove_alias``."""
        return self.catalog.remove_alias(ref, alias)

    @exempt("delegates to CatalogService.rollback_alias")
    def alias_rollback(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """``k.catalog.rollback_alias``."""
        return self.catalog.rollback_alias(ref, alias)

    @exempt("delegates to CatalogService.lineage")
    def lineage(self, ref: str, direction: str = "up", depth: int = 100) -> Lineage:
        """``k.catalog.lineage``: what ``ref`` came from (or what came from it)."""
        return self.catalog.lineage(ref, direction, depth)

    @exempt("delegates to CatalogService.status")
    def status(self) -> ProjectStatus:
        """``k.catalog.status``: the project at a glance."""
        return self.catalog.status()

    @exempt("delegates to CatalogService.objects_note")
    def objects_note(self) -> str | None:
        """``k.catalog.objects_note``."""
        return self.catalog.objects_note()

    @exempt("delegates to ArtifactService.log")
    def log_artifact(
        self,
        path_or_object: Any,
        *,
        kind: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        execution_id: int | None = None,
        dedupe: bool = True,
    ) -> ArtifactRecord:
        """``k.artifacts.log``: store a file, folder, bytes or object as a new version."""
        return self.artifacts.log(
            path_or_object,
            kind=kind,
            name=name,
            properties=properties,
            execution_id=execution_id,
            dedupe=dedupe,
        )

    @exempt("delegates to ArtifactService.log_env")
    def env_artifact(self, env: Environment) -> ArtifactRecord:
        """``k.artifacts.log_env``."""
        return self.artifacts.log_env(env)

    @exempt("delegates to ArtifactService.path")
    def path(self, ref: str, *, verify: bool | None = None) -> Path:
        """``k.artifacts.path``: the read-only file holding an artifact's content."""
        return self.artifacts.path(ref, verify=verify)

    @exempt("delegates to ArtifactService.load")
    def load(self, ref: str, *, verify: bool | None = None) -> Any:
        """``k.artifacts.load``: an artifact's content as a Python value."""
        return self.artifacts.load(ref, verify=verify)

    @exempt("delegates to ArtifactService.require_object")
    def require_object(self, record: ArtifactRecord) -> None:
        """``k.artifacts.require_object``."""
        self.artifacts.require_object(record)

    @exempt("delegates to ArtifactService.export")
    def export(self, ref: str, dest: Path, *, verify: bool = True, force: bool = False) -> Path:
        """``k.artifacts.export``: copy an artifact's content to ``dest``."""
        return self.artifacts.export(ref, dest, verify=verify, force=force)

    @exempt("delegates to ArtifactService.verify")
    def verify(self) -> list[tuple[ArtifactRecord, str]]:
        """``k.artifacts.verify``: re-hash every object."""
        return self.artifacts.verify()

    @exempt("delegates to ArtifactService.gc")
    def gc(self, *, dry_run: bool = True, grace: float | None = None) -> GCReport:
        """``k.artifacts.gc``: delete objects no artifact references."""
        return self.artifacts.gc(dry_run=dry_run, grace=grace)

    @exempt("delegates to RunService.start")
    def start_run(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        inputs: list[str] | None = None,
        type_: str = "run",
    ) -> Run:
        """``k.tracking.start``: a tracked run (``with k.start_run("train") as run``)."""
        return self.tracking.start(name, params, inputs=inputs, type_=type_)

    @exempt("delegates to RunService.ls")
    def runs(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        include_internal: bool = False,
    ) -> list[ExecutionRecord]:
        """``k.tracking.ls``: runs, newest first."""
        return self.tracking.ls(
            limit=limit, state=state, name=name, include_internal=include_internal
        )

    @exempt("delegates to RunService.info")
    def run_info(self, run_id: int) -> RunInfo:
        """``k.tracking.info``: one run in detail."""
        return self.tracking.info(run_id)

    @exempt("delegates to RunService.metrics")
    def metrics(self, run_id: int, key: str | None = None) -> list[tuple[str, int, float, float]]:
        """``k.tracking.metrics``: a run's metric rows."""
        return self.tracking.metrics(run_id, key)

    @exempt("delegates to RunService.end")
    def end_run(self, run_id: int, state: str, reason: str | None = None) -> str:
        """``k.tracking.end``: end a running or lost run from outside."""
        return self.tracking.end(run_id, state, reason)

    @exempt("delegates to SchedService.ml_mode (mode.claim, mode.release), which authorize")
    def ml_mode(self, pid: int | None = None) -> AbstractContextManager[Claimed]:
        """Give ``pid`` (default: this process) the machine while the block runs.

        The claim goes to the machine's scheduler controller (started on demand), which
        raises the ``ml`` pool, holds back the pools mlkernel manages, and restores every
        change when the last claim ends or the process dies (see docs/scheduler.md).
        """
        return self.sched.ml_mode(pid)

    @exempt("delegates to PipelineService.run")
    def run_pipeline(self, pipeline: Any, **options: Any) -> RunResult:
        """``k.pipelines.run``: run a pipeline (a name declared in mlkernel.toml,
        ``file.py:function``, ``module:function`` or a ``@pipeline`` function)."""
        return self.pipelines.run(pipeline, **options)


def open_project(path: str | Path | None = None) -> Kernel:
    """Open the project at ``path`` (or the nearest one above the current folder)."""
    root = find_root(Path(path) if path is not None else None)
    return Kernel(load_config(root))


def init(
    path: str | Path | None = None, *, name: str | None = None, metadata_url: str | None = None
) -> Kernel:
    """Create a project: ``mlkernel.toml`` and ``.mlkernel/``; refuse to overwrite one."""
    from mlkernel.config import parse_config

    root = Path(path if path is not None else Path.cwd()).resolve()
    config_path = root / CONFIG_FILE
    if config_path.exists():
        raise ConflictError(f"{root} is already an mlkernel project; run `mlk status` there")
    name = name or root.name
    validate_name(name, "project name")
    text = render_config(name, metadata_url or "sqlite")
    import tomllib

    config = parse_config(config_path, tomllib.loads(text))
    created_root = not root.exists()
    state = root / STATE_DIR
    created_state = not state.exists()
    try:
        try:
            for sub in STATE_SUBDIRS:
                (state / sub).mkdir(parents=True, exist_ok=True)
            (state / ".gitignore").write_text("*\n")
        except OSError as exc:  # a read-only place, /proc, a file in the way
            raise UsageError(
                f"cannot create a project in {root}: {exc.strerror or type(exc).__name__} "
                f"({exc.filename}); choose a folder you can write to"
            ) from None
        kernel = Kernel(config)
    except BaseException:
        if created_state:
            shutil.rmtree(state, ignore_errors=True)
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        write_atomic(config_path, text.encode())
    except BaseException:
        kernel.close()
        raise
    return kernel


def operations() -> list[Operation]:
    """Every public operation of the kernel and its services, by name (authz.OPERATIONS
    once all the service modules are imported)."""
    import mlkernel.artifacts.catalog
    import mlkernel.artifacts.service
    import mlkernel.data.service
    import mlkernel.models.service
    import mlkernel.monitor.service
    import mlkernel.pipeline.service
    import mlkernel.sched.service
    import mlkernel.tracking.run
    import mlkernel.tracking.service  # noqa: F401

    return [OPERATIONS[name] for name in sorted(OPERATIONS)]


def operations_table() -> str:
    """The table of docs/operations.md, generated from the registry."""
    lines = [
        "| operation | action | method | CLI | inputs → output | summary |",
        "|---|---|---|---|---|---|",
    ]
    for op in operations():
        inputs = ", ".join(f"{p}: {t}" for p, t in op.inputs)
        cli = f"`{op.cli}`" if op.cli else f"none ({op.no_cli})"
        cells = (
            f"`{op.name}`",
            op.action.value,
            f"`{op.method}`",
            cli,
            f"`({inputs}) -> {op.output}`".replace("|", "\\|"),
            op.summary.replace("|", "\\|"),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def exemptions_table() -> str:
    """The public service methods that are not operations, and why (docs/operations.md)."""
    from mlkernel.authz import EXEMPT

    operations()  # imports every service module, so each has declared its exemptions
    lines = ["| method | why it calls no authorize |", "|---|---|"]
    lines += [f"| `{method}` | {why} |" for method, why in sorted(EXEMPT.items())]
    return "\n".join(lines) + "\n"

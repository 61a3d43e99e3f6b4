"""The Kernel: one open project, and the façade every entry point uses.

CLI commands, REST routes and SDK users all call these methods, so an operation behaves
the same everywhere and permission checks (later) have one place to live.
"""

from __future__ import annotations

import getpass
import os
import pickle
import shutil
import socket
from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlkernel.authz import OPERATIONS, Action, Actor, Operation, exempt, operation
from mlkernel.config import (
    CONFIG_FILE,
    STATE_DIR,
    ProjectConfig,
    find_root,
    load_config,
    render_config,
)
from mlkernel.errors import ConflictError, NotFoundError, UsageError
from mlkernel.fsutil import write_atomic
from mlkernel.gclock import registers
from mlkernel.refs import Ref, parse_ref, validate_alias, validate_kind, validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.base import ObjectStore
    from mlkernel.artifacts.gc import GCReport
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord, ExecutionRecord, Lineage
    from mlkernel.meta.store import MetaStore
    from mlkernel.meta.table import MetadataTable
    from mlkernel.monitor.service import MonitorService
    from mlkernel.pipeline.runner import RunResult
    from mlkernel.pipeline.service import PipelineService
    from mlkernel.tracking.provenance import Environment, ProvenanceProbe
    from mlkernel.tracking.run import Run

__all__ = ["Kernel", "init", "open_project", "operations"]

STATE_SUBDIRS = ("objects", "cache", "logs", "keys", "backups")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return str(os.getuid())


class Kernel:
    """An open mlkernel project."""

    def __init__(self, config: ProjectConfig, actor: Actor | None = None) -> None:
        from mlkernel.artifacts.store import LocalObjectStore
        from mlkernel.meta.changes import watcher_for
        from mlkernel.meta.store import MetaStore
        from mlkernel.meta.table import MetadataTable

        self.config = config
        self.root = config.root
        # Who calls: every operation authorizes this actor and records its name (created_by,
        # user). as_actor() gives views for other actors over the same storage.
        self.actor = actor if actor is not None else Actor(_user())
        self._base: Kernel | None = None  # the kernel that opened the storage, for a view
        self.host = socket.gethostname()
        self.meta: MetaStore = MetaStore(config.metadata_url, config.name, config.root)
        try:
            watcher = watcher_for(self.meta.url)
            self.table: MetadataTable = MetadataTable(self.meta, watcher)
        except BaseException:
            self.meta.close()
            raise
        self.objects: ObjectStore = LocalObjectStore(config.objects_dir)
        self._env_ids: dict[str, int] = {}
        self._data: DataService | None = None
        self._monitor: MonitorService | None = None
        self._provenance: ProvenanceProbe | None = None

    @property
    def user(self) -> str:
        """The name of the actor this kernel works for (recorded as created_by, user)."""
        return self.actor.name

    @operation(
        "kernel.as_actor",
        Action.ADMIN,
        resource="actor",
        no_cli="SDK: servers and daemons act for their callers",
    )
    def as_actor(self, actor: Actor) -> Kernel:
        """This project seen by ``actor``: the same storage, services that act for it.

        Cheap: nothing is reopened. The metadata store, the object store, the in-memory
        table, the provenance probe and the environment cache are shared; the services
        (``data``, ``monitor``, ``pipelines``) are built anew for the actor. Closing a
        view closes nothing; close the kernel that opened the project.
        """
        base = self._base or self
        view = Kernel.__new__(Kernel)
        view.__dict__.update(
            {k: v for k, v in base.__dict__.items() if k not in ("pipelines", "_provenance")}
        )
        view.actor = actor
        view._base = base
        view._data = None
        view._monitor = None
        view._provenance = None
        return view

    # -- life cycle ------------------------------------------------------------------

    @property
    def provenance(self) -> ProvenanceProbe:
        """The background worker that finds each run's environment and git commit."""
        if self._base is not None:
            return self._base.provenance
        if self._provenance is None:
            from mlkernel.tracking.provenance import ProvenanceProbe

            self._provenance = ProvenanceProbe(self.root, self.config.state_dir / "cache")
        return self._provenance

    @exempt("life cycle: releases the storage this kernel opened")
    def close(self) -> None:
        if self._base is not None:  # a view: the storage is its base kernel's
            return
        if self._provenance is not None:
            self._provenance.close()
        # The store's connections first: the table's watcher may close a descriptor of
        # the WAL index, which drops the locks of any connection still open here.
        self.meta.close()
        self.table.close()

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
    def data(self) -> DataService:
        """Datasets: ingest, open in a layout, stream (see :mod:`mlkernel.data`)."""
        if self._data is None:
            from mlkernel.data.service import DataService

            self._data = DataService(self)
        return self._data

    @property
    def monitor(self) -> MonitorService:
        """Profiles, drift and drift reports of datasets (see :mod:`mlkernel.monitor`)."""
        if self._monitor is None:
            from mlkernel.monitor.service import MonitorService

            self._monitor = MonitorService(self)
        return self._monitor

    # -- resolving -------------------------------------------------------------------

    @operation(
        "artifacts.resolve",
        Action.READ,
        resource="ref",
        no_cli="SDK: every command that takes a reference resolves it",
    )
    def resolve(self, ref: str | Ref, kind: str | None = None) -> ArtifactRecord:
        """The artifact a reference names, answered from memory."""
        return self.table.resolve(ref, kind)

    @operation("artifacts.ls", Action.READ, resource="kind", cli="ls")
    def ls(self, kind: str | None = None) -> list[ArtifactRecord]:
        """The latest version of every artifact (of one ``kind``)."""
        if kind is not None:
            validate_kind(kind)
        return self.table.latest(kind)

    @operation("artifacts.versions", Action.READ, resource="ref", cli="ls")
    def versions(self, ref: str | ArtifactRecord) -> list[ArtifactRecord]:
        """Every version of the artifact ``ref`` names (a reference or one of its records)."""
        record = self.resolve(ref) if isinstance(ref, str) else ref
        return self.table.versions(record.kind, record.name)

    @operation("aliases.ls", Action.READ, cli="ls")
    def aliases(self) -> dict[tuple[str, str, str], int]:
        """Every alias of the project: (kind, name, alias) -> version."""
        return self.table.all_aliases()

    @property
    def metadata_location(self) -> str:
        """Where the metadata lives, without a password: the SQLite file or the server."""
        return self.meta.display_url

    @operation("artifacts.show", Action.READ, resource="ref", cli="show")
    def show(self, ref: str) -> dict[str, Any]:
        """One artifact version: its record, aliases, versions, alias history and producer."""
        record = self.resolve(ref)
        info = record.to_dict()
        info["aliases"] = self.table.aliases_of(record.kind, record.name)
        info["versions"] = [v.version for v in self.table.versions(record.kind, record.name)]
        info["alias_history"] = self.meta.alias_history(record.kind, record.name)
        producer = record.execution_id
        if producer is not None:
            info["produced_by"] = self.meta.get_execution(producer).to_dict()
        return info

    # -- artifacts -------------------------------------------------------------------

    @operation(
        "artifacts.log",
        Action.WRITE,
        resource="name",
        no_cli="SDK: the CLI stores artifacts through `mlk data add` and pipeline runs",
    )
    @registers
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
        """Store a file, folder, bytes or any picklable object as a new artifact version.

        Outside a run, a one-off ``register`` execution is recorded so that every
        artifact knows what produced it. ``kind="dataset"`` ingests (see
        :meth:`_log_dataset`): a dataset is always a stored Arrow file.
        """
        if kind == "dataset":
            return self._log_dataset(path_or_object, name, properties, execution_id)
        props: dict[str, Any] = dict(properties or {})
        if isinstance(path_or_object, str | Path):
            path = Path(path_or_object)
            if not path.exists():
                raise NotFoundError(f"{path} does not exist; check the path")
            digest, size = self.objects.put_file(path)
            props.setdefault("source", str(path))
            props.setdefault("format", "tar" if path.is_dir() else "file")
            kind = kind or "file"
            name = name or path.stem
        elif isinstance(path_or_object, bytes | bytearray | memoryview):
            digest, size = self.objects.put_bytes(bytes(path_or_object))
            props.setdefault("format", "bytes")
            kind = kind or "file"
            if name is None:
                raise UsageError("name the artifact: log_artifact(data, name='...')")
        else:
            try:
                payload = pickle.dumps(path_or_object, protocol=5)
            except Exception as exc:
                raise UsageError(
                    f"cannot store {type(path_or_object).__name__}: not picklable "
                    f"({exc}); save it to a file and log the file"
                ) from None
            digest, size = self.objects.put_bytes(payload)
            cls = type(path_or_object)
            props.setdefault("format", "pickle")
            props.setdefault("python_type", f"{cls.__module__}.{cls.__qualname__}")
            kind = kind or "model"
            name = name or cls.__name__.lower()
        validate_kind(kind)
        validate_name(name)
        own_execution = execution_id is None
        if own_execution:
            execution_id = self.meta.insert_execution(
                f"register {kind}:{name}",
                "register",
                host=self.host,
                pid=os.getpid(),
                user=self.actor.name,
            )
        record, _new = self.meta.register_artifact(
            kind,
            name,
            digest=digest,
            uri=self.objects.uri(digest),
            size=size,
            properties=props,
            created_by=self.actor.name,
            execution_id=execution_id,
            dedupe=dedupe,
        )
        if own_execution:
            assert execution_id is not None
            env = self._environment()
            env_id = self.env_artifact(env).id if env is not None else None
            self.meta.finish_execution(execution_id, "completed", env_artifact_id=env_id)
        self.table.note_artifact(record)
        return record

    def _log_dataset(
        self,
        value: Any,
        name: str | None,
        properties: Mapping[str, Any] | None,
        execution_id: int | None,
    ) -> ArtifactRecord:
        """``log_artifact(..., kind="dataset")``: the ingest of ``k.data.add``.

        A path or an in-memory table (pandas, polars, pyarrow) is ingested, produced by the
        run when there is one; anything else is refused, naming ``k.data.add``, since the
        data commands could not read it. Identical content makes no new version, whatever
        ``dedupe`` says.
        """
        from mlkernel.data.tables import is_table

        if not isinstance(value, str | os.PathLike) and not is_table(value):
            raise UsageError(
                f"cannot log a {type(value).__name__} as a dataset: a dataset is ingested from "
                "a file or a pandas/polars/Arrow table (k.data.add(..., name=...)); log other "
                "objects with another kind, e.g. kind='file' or kind='model'"
            )
        result = self.data.add(
            value,
            name=name,
            progress=False,
            execution_id=execution_id,
            properties=properties,
        )
        return result.record

    def _environment(self) -> Environment | None:
        from mlkernel.tracking.provenance import environment

        try:
            return environment(self.config.state_dir / "cache")
        except Exception:
            return None

    @operation(
        "artifacts.log_env", Action.WRITE, no_cli="recorded by each run for its Python environment"
    )
    @registers
    def env_artifact(self, env: Environment) -> ArtifactRecord:
        """The ``env`` artifact for ``env``, stored once and reused while unchanged."""
        known = self._env_ids.get(env.digest)
        if known is not None:
            return self.table.get(known)
        found = self.meta.find_by_digest("env", env.digest)
        if found is None:
            digest, size = self.objects.put_bytes(env.payload)
            found, _ = self.meta.register_artifact(
                "env",
                "python",
                digest=digest,
                uri=self.objects.uri(digest),
                size=size,
                properties={"format": "json", "summary": env.summary},
                created_by=self.actor.name,
                execution_id=None,
                dedupe=True,
            )
        self.table.note_artifact(found)
        self._env_ids[env.digest] = found.id
        return found

    @operation(
        "artifacts.path",
        Action.READ,
        resource="ref",
        no_cli="SDK: `mlk get` copies the content instead",
    )
    def path(self, ref: str, *, verify: bool | None = None) -> Path:
        """The read-only file holding an artifact's content."""
        record = self.resolve(ref)
        self.require_object(record)
        check = verify if verify is not None else self.config.tracking.verify_reads
        return self.objects.local_path_for_reading(record.digest, verify=check)

    @operation(
        "artifacts.load", Action.READ, resource="ref", no_cli="SDK: the content as a Python value"
    )
    def load(self, ref: str, *, verify: bool | None = None) -> Any:
        """An artifact's content: the object for pickles, else the bytes."""
        record = self.resolve(ref)
        self.require_object(record)
        check = verify if verify is not None else self.config.tracking.verify_reads
        data = self.objects.read_bytes(record.digest, verify=check)
        if record.properties.get("format") == "pickle":
            return pickle.loads(data)
        return data

    @exempt("a check that operations make on a record they have already authorized")
    def require_object(self, record: ArtifactRecord) -> None:
        """Raise a one-line :class:`IntegrityError` if ``record``'s object is not here.

        Objects live in the folder (and on the machine) that wrote them; with a shared
        PostgreSQL database a teammate's folder sees every artifact but holds only the
        objects it wrote, and the error says so and where the object was written.
        """
        from mlkernel.errors import IntegrityError

        if self.objects.exists(record.digest):
            return
        if self.meta.is_sqlite:
            self.objects.open(record.digest).close()  # raises the store's IntegrityError
        raise IntegrityError(self._elsewhere(record))

    def _elsewhere(self, record: ArtifactRecord) -> str:
        where = ""
        if record.execution_id is not None:
            producer = self.meta.get_execution(record.execution_id)
            where = f"; it was written on host {producer.host} by {producer.user}"
        created_in = self.meta.project_root()
        if created_in and created_in != str(self.root):
            where += f" (the project was created in {created_in})"
        return (
            f"{record.ref}'s content (object {record.digest[:12]}) is not in this folder's "
            f"store {self.objects.location}: objects are local to the machine and folder that "
            f"wrote them, and only the metadata is shared through PostgreSQL{where}; copy "
            f".mlkernel/{record.uri} from there into this folder's .mlkernel/, or log the "
            "artifact again here"
        )

    @operation("artifacts.export", Action.READ, resource="ref", cli="get")
    def export(self, ref: str, dest: Path, *, verify: bool = True, force: bool = False) -> Path:
        """Copy an artifact's content to ``dest``; folders are unpacked.

        ``dest`` may be a folder to write into. An ingested dataset written to a name
        ending ``.csv``, ``.parquet``, ``.arrow``, ``.ndjson`` (...) is exported in that
        format (:meth:`DataService.export`); other names get the stored Arrow file. The
        content appears whole or not at all, and an existing ``dest`` is refused unless
        ``force``.
        """
        import tarfile

        from mlkernel.data.service import export_format, is_ingested
        from mlkernel.fsutil import atomic_output, output_error

        record = self.resolve(ref)
        dataset = is_ingested(record)
        if dest.is_dir():
            base = f"{record.name}.arrow" if dataset else None
            dest = dest / (base or Path(str(record.properties.get("source", record.name))).name)
        self.require_object(record)
        if dataset and export_format(dest) is not None:
            if verify:
                self.objects.verify(record.digest)
            return self.data.export(record, dest, force=force)
        with self.objects.open(record.digest, verify=verify) as handle:
            if record.properties.get("format") != "tar":
                with atomic_output(dest, overwrite=force) as tmp, tmp.open("wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)
                return dest
            from mlkernel.fsutil import is_stream

            if is_stream(dest):
                raise UsageError(
                    f"{record.ref} is a folder; name a folder to write it into, not {dest}"
                )
            if os.path.lexists(dest) and not force:
                raise ConflictError(
                    f"{dest} exists; pass --force to replace it, or choose another destination"
                )
            tmp = dest.with_name(f".{dest.name}.partial")
            try:
                if not dest.parent.is_dir():  # extracting would create it
                    os.listdir(dest.parent)  # raises the error that says why not
                shutil.rmtree(tmp, ignore_errors=True)
                with tarfile.open(fileobj=handle, mode="r:") as tar:
                    tar.extractall(tmp, filter="data")
                _replace_tree(tmp, dest)
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise output_error(dest, exc) from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return dest

    @operation("artifacts.verify", Action.READ, cli="verify")
    def verify(self) -> list[tuple[ArtifactRecord, str]]:
        """Re-hash every object an artifact references (its companions listed in
        ``properties["objects"]`` too); return (artifact, problem) pairs."""
        from mlkernel.errors import IntegrityError

        problems: list[tuple[ArtifactRecord, str]] = []
        checked: dict[str, str | None] = {}
        for latest in self.table.latest():
            for record in self.table.versions(latest.kind, latest.name):
                companions = record.properties.get("objects")  # e.g. a dataset's Parquet
                owned = [record.digest]
                if isinstance(companions, dict):
                    owned += [str(d) for d in companions.values()]
                for digest in owned:
                    if digest not in checked:
                        try:
                            if digest == record.digest:
                                self.require_object(record)  # names where a teammate's is
                            self.objects.verify(digest)
                            checked[digest] = None
                        except IntegrityError as exc:
                            checked[digest] = str(exc)
                    problem = checked[digest]
                    if problem is not None:
                        problems.append((record, problem))
        return problems

    # -- aliases ---------------------------------------------------------------------

    @operation("aliases.set", Action.WRITE, resource="ref", cli="alias set")
    def alias_set(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """Point ``alias`` at the version ``ref`` names; return it and the previous version."""
        validate_alias(alias)
        record = self.resolve(ref)
        before = self.meta.set_alias(
            record.kind, record.name, alias, record.version, self.actor.name
        )
        self.table.note_alias(record.kind, record.name, alias, record.version)
        return record, before

    @operation("aliases.rm", Action.DELETE, resource="ref", cli="alias rm")
    def alias_rm(self, ref: str, alias: str) -> int:
        """Remove ``alias`` from the artifact ``ref`` names; return the version it pointed at."""
        parsed = parse_ref(ref)
        record = self.resolve(Ref(parsed.kind, parsed.name))
        before = self.meta.remove_alias(record.kind, record.name, alias, self.actor.name)
        self.table.note_alias(record.kind, record.name, alias, None)
        return before

    @operation("aliases.rollback", Action.WRITE, resource="ref", cli="alias rollback")
    def alias_rollback(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """Move ``alias`` back to the version it pointed at before its last move."""
        parsed = parse_ref(ref)
        record = self.resolve(Ref(parsed.kind, parsed.name))
        moves = [
            h for h in self.meta.alias_history(record.kind, record.name) if h["alias"] == alias
        ]
        if not moves:
            raise NotFoundError(
                f"{record.kind}:{record.name} never had alias {alias!r}; "
                f"run `mlk show {record.kind}:{record.name}` to see its aliases"
            )
        previous = moves[-1]["from"]
        if previous is None:
            raise ConflictError(
                f"alias {alias!r} of {record.kind}:{record.name} has no earlier version to go "
                f"back to; remove it with `mlk alias rm {record.kind}:{record.name} {alias}`"
            )
        return self.alias_set(f"{record.kind}:{record.name}@{previous}", alias)

    # -- runs ------------------------------------------------------------------------

    @operation(
        "runs.start",
        Action.WRITE,
        resource="name",
        no_cli="SDK: `with k.start_run(...) as run`; `mlk run` runs pipelines",
    )
    def start_run(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        inputs: list[str] | None = None,
        type_: str = "run",
    ) -> Run:
        """A tracked execution; ``type_`` tells runs from mlkernel's own jobs (``profile``...)."""
        from mlkernel.tracking.run import Run, _check_key

        validate_name(name, "run name")
        for key in params or {}:
            _check_key(key)
        input_records = [self.resolve(ref) for ref in inputs or []]
        execution_id = self.meta.insert_execution(
            name,
            type_,
            host=self.host,
            pid=os.getpid(),
            user=self.actor.name,
            params=dict(params or {}),
        )
        for record in input_records:
            self.meta.add_event(execution_id, record.id, "in")
        return Run(self, execution_id, name)

    @operation(
        "runs.ls_all", Action.READ, no_cli="SDK: `mlk runs ls` lists through the pipeline service"
    )
    def runs(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        include_internal: bool = False,
    ) -> list[ExecutionRecord]:
        """Runs newest first, without the one-off ``register`` executions unless asked."""
        runs = self.meta.list_executions(limit=limit, state=state, name=name)
        if include_internal:
            return runs
        return [r for r in runs if r.type != "register"]

    @operation(
        "runs.info",
        Action.READ,
        resource="run_id",
        no_cli="SDK: `mlk runs show` shows through the pipeline service",
    )
    def run_info(self, run_id: int) -> dict[str, Any]:
        """One run: its record, parameters, metric summaries, inputs and outputs."""
        from mlkernel.tracking.values import metric_summary

        record = self.meta.get_execution(run_id)
        info = record.to_dict()
        info["params"] = self.meta.params(run_id)
        series: dict[str, list[float]] = {}
        for key, _step, value, _ts in self.meta.metrics(run_id):
            series.setdefault(key, []).append(value)
        info["metrics"] = {k: metric_summary(v) for k, v in series.items()}
        events = self.meta.events(run_id)
        info["inputs"] = [self.table.get(a).ref for a, d in events if d == "in"]
        info["outputs"] = [self.table.get(a).ref for a, d in events if d == "out"]
        if record.env_artifact_id is not None:
            info["environment"] = self.table.get(record.env_artifact_id).ref
        return info

    @operation(
        "runs.metrics",
        Action.READ,
        resource="run_id",
        no_cli="SDK: a run's metric series as values",
    )
    def metrics(self, run_id: int, key: str | None = None) -> list[tuple[str, int, float, float]]:
        """The metric rows (key, step, value, timestamp) of a run, of one ``key``."""
        self.meta.get_execution(run_id)
        return self.meta.metrics(run_id, key)

    @operation("runs.end", Action.WRITE, resource="run_id", cli="runs fail")
    def end_run(self, run_id: int, state: str, reason: str | None = None) -> str:
        """End a running or lost run as ``cancelled`` or ``failed`` (see
        :mod:`mlkernel.tracking.ending`); the outcome in words."""
        from mlkernel.tracking.ending import end_run

        return end_run(self, run_id, state, reason)

    # -- scheduling ------------------------------------------------------------------

    @operation(
        "mode.claim",
        Action.EXECUTE,
        no_cli="SDK: `with k.ml_mode():` claims the machine for this process",
    )
    def ml_mode(self, pid: int | None = None) -> AbstractContextManager[dict[str, Any]]:
        """Give ``pid`` (default: this process) the machine while the block runs.

        The claim goes to the machine's scheduler controller (started on demand), which
        raises the ``ml`` pool, holds back the pools mlkernel manages, and restores every
        change when the last claim ends or the process dies (see docs/scheduler.md).
        """
        from mlkernel.sched.client import ml_mode

        label = f"project {self.config.name} ({self.root})"
        return ml_mode(pid, config=self.config.sections.get("sched"), label=label)

    # -- lineage ---------------------------------------------------------------------

    @operation("artifacts.lineage", Action.READ, resource="ref", cli="lineage")
    def lineage(self, ref: str, direction: str = "up", depth: int = 100) -> Lineage:
        """The artifacts and runs upstream (or downstream) of ``ref``, ``depth`` levels deep."""
        from mlkernel.meta.records import Lineage

        if direction not in ("up", "down"):
            raise UsageError(f"direction must be 'up' or 'down', not {direction!r}")
        root = self.resolve(ref)
        edges = self.meta.lineage_edges(root.id, direction, depth)
        ids = {root.id} | {e.child_id for e in edges} | {e.parent_id for e in edges}
        artifacts = {i: self.table.get(i) for i in ids}
        exec_ids = {e.execution_id for e in edges}
        if root.execution_id is not None:
            exec_ids.add(root.execution_id)
        return Lineage(
            root=root,
            direction=direction,
            edges=edges,
            artifacts=artifacts,
            executions=self.meta.executions(exec_ids),
        )

    # -- housekeeping ----------------------------------------------------------------

    @operation("artifacts.gc", Action.DELETE, cli="gc")
    def gc(self, *, dry_run: bool = True, grace: float | None = None) -> GCReport:
        """Delete objects (and cached copies) no artifact references, leaving those younger
        than ``grace`` seconds (``storage.gc_grace``): they may belong to a registration
        in flight. Safe beside writers in other processes (:mod:`mlkernel.gclock`)."""
        wait = self.config.storage.gc_grace if grace is None else grace
        if wait < 0:
            raise UsageError(f"grace is {wait} seconds; use 0 or more")
        return self.objects.gc(
            self.meta.referenced_digests,
            dry_run=dry_run,
            grace=wait,
            caches=[self.config.state_dir / "cache" / "data"],
        )

    @operation("project.status", Action.READ, cli="status")
    def status(self) -> dict[str, Any]:
        """The project at a glance: metadata, counts, latest artifacts, aliases, storage."""
        counts = self.meta.counts()
        objects, stored = self.objects.usage()
        latest = [r.to_dict() for r in self.table.latest() if r.kind != "env"]
        aliases = [
            {"ref": f"{k}:{n}@{v}", "alias": a}
            for (k, n, a), v in sorted(self.table.all_aliases().items())
        ]
        return {
            "project": self.name,
            "root": str(self.root),
            "metadata": self.meta.display_url,
            "backend": "sqlite" if self.meta.is_sqlite else "postgresql",
            "artifacts": counts["kinds"],
            "latest": latest,
            "aliases": aliases,
            "runs": counts["runs"],
            "metrics": counts["metrics"],
            "storage": {
                "objects": objects,
                "bytes": stored,
                "path": self.objects.location,
                "shared": False,
                "note": self.objects_note(),
            },
        }

    @exempt("a sentence about where objects live, from the configuration only")
    def objects_note(self) -> str | None:
        """What a team sharing a PostgreSQL database must know: objects are not shared."""
        if self.meta.is_sqlite:
            return None
        return (
            f"objects (artifact contents) are local to this machine and folder "
            f"({self.objects.location}); teammates on the same PostgreSQL database see every "
            "artifact's metadata but can read only the objects their own folder wrote "
            "(mlkernel has no shared object store yet)"
        )

    # -- pipelines -------------------------------------------------------------------

    @cached_property
    def pipelines(self) -> PipelineService:
        """Pipelines: run, resume, inspect, cancel; triggers (see :mod:`mlkernel.pipeline`)."""
        from mlkernel.pipeline.service import PipelineService

        return PipelineService(self)

    @exempt("delegates to PipelineService.run, which authorizes")
    def run_pipeline(self, pipeline: Any, **options: Any) -> RunResult:
        """Run a pipeline (a name declared in mlkernel.toml, ``file.py:function``,
        ``module:function`` or a ``@pipeline`` function); see ``PipelineService.run``."""
        return self.pipelines.run(pipeline, **options)


def _replace_tree(new: Path, dest: Path) -> None:
    """Put the folder ``new`` at ``dest``, moving aside (then removing) what was there."""
    if not os.path.lexists(dest):
        new.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    dest.rename(old)
    try:
        new.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


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
    import mlkernel.data.service
    import mlkernel.monitor.service
    import mlkernel.pipeline.service
    import mlkernel.tracking.run  # noqa: F401

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

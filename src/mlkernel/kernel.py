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
from mlkernel.refs import Ref, parse_ref, validate_alias, validate_kind, validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.store import GCReport, ObjectStore
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord, ExecutionRecord, Lineage
    from mlkernel.meta.store import MetaStore
    from mlkernel.meta.table import MetadataTable
    from mlkernel.monitor.service import MonitorService
    from mlkernel.pipeline.runner import RunResult
    from mlkernel.pipeline.service import PipelineService
    from mlkernel.tracking.provenance import Environment, ProvenanceProbe
    from mlkernel.tracking.run import Run

__all__ = ["Kernel", "init", "open_project"]

STATE_SUBDIRS = ("objects", "cache", "logs", "keys", "backups")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return str(os.getuid())


class Kernel:
    """An open mlkernel project."""

    def __init__(self, config: ProjectConfig) -> None:
        from mlkernel.artifacts.store import ObjectStore
        from mlkernel.meta.changes import watcher_for
        from mlkernel.meta.store import MetaStore
        from mlkernel.meta.table import MetadataTable

        self.config = config
        self.root = config.root
        self.user = _user()
        self.host = socket.gethostname()
        self.meta: MetaStore = MetaStore(config.metadata_url, config.name, config.root)
        try:
            watcher = watcher_for(self.meta.url)
            self.table: MetadataTable = MetadataTable(self.meta, watcher)
        except BaseException:
            self.meta.close()
            raise
        self.objects: ObjectStore = ObjectStore(config.objects_dir)
        self._env_ids: dict[str, int] = {}
        self._data: DataService | None = None
        self._monitor: MonitorService | None = None
        self._provenance: ProvenanceProbe | None = None

    # -- life cycle ------------------------------------------------------------------

    @property
    def provenance(self) -> ProvenanceProbe:
        """The background worker that finds each run's environment and git commit."""
        if self._provenance is None:
            from mlkernel.tracking.provenance import ProvenanceProbe

            self._provenance = ProvenanceProbe(self.root, self.config.state_dir / "cache")
        return self._provenance

    def close(self) -> None:
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

    def resolve(self, ref: str | Ref, kind: str | None = None) -> ArtifactRecord:
        """The artifact a reference names, answered from memory."""
        return self.table.resolve(ref, kind)

    def ls(self, kind: str | None = None) -> list[ArtifactRecord]:
        if kind is not None:
            validate_kind(kind)
        return self.table.latest(kind)

    def versions(self, ref: str) -> list[ArtifactRecord]:
        record = self.resolve(ref)
        return self.table.versions(record.kind, record.name)

    def show(self, ref: str) -> dict[str, Any]:
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
        artifact knows what produced it.
        """
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
                user=self.user,
            )
        record, _new = self.meta.register_artifact(
            kind,
            name,
            digest=digest,
            uri=self.objects.uri(digest),
            size=size,
            properties=props,
            created_by=self.user,
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

    def _environment(self) -> Environment | None:
        from mlkernel.tracking.provenance import environment

        try:
            return environment(self.config.state_dir / "cache")
        except Exception:
            return None

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
                created_by=self.user,
                execution_id=None,
                dedupe=True,
            )
        self.table.note_artifact(found)
        self._env_ids[env.digest] = found.id
        return found

    def path(self, ref: str, *, verify: bool | None = None) -> Path:
        """The read-only file holding an artifact's content."""
        record = self.resolve(ref)
        if verify if verify is not None else self.config.tracking.verify_reads:
            self.objects.verify(record.digest)
        path = self.objects.path(record.digest)
        if not path.exists():
            self.objects.open(record.digest).close()  # raises the IntegrityError
        return path

    def load(self, ref: str, *, verify: bool | None = None) -> Any:
        """An artifact's content: the object for pickles, else the bytes."""
        record = self.resolve(ref)
        check = verify if verify is not None else self.config.tracking.verify_reads
        data = self.objects.read_bytes(record.digest, verify=check)
        if record.properties.get("format") == "pickle":
            return pickle.loads(data)
        return data

    def export(self, ref: str, dest: Path, *, verify: bool = True) -> Path:
        """Copy an artifact's content to ``dest`` (atomically); folders are unpacked."""
        import tarfile

        record = self.resolve(ref)
        if dest.exists() and dest.is_dir():
            dest = dest / Path(str(record.properties.get("source", record.name))).name
        with self.objects.open(record.digest, verify=verify) as handle:
            if record.properties.get("format") == "tar":
                if dest.exists():
                    raise ConflictError(f"{dest} exists; choose another destination")
                tmp = dest.with_name(f".{dest.name}.partial")
                shutil.rmtree(tmp, ignore_errors=True)
                with tarfile.open(fileobj=handle, mode="r:") as tar:
                    tar.extractall(tmp, filter="data")
                tmp.rename(dest)
            else:
                write_atomic(dest, handle.read())
        return dest

    def verify(self) -> list[tuple[ArtifactRecord, str]]:
        """Re-hash every object an artifact references; return (artifact, problem) pairs."""
        from mlkernel.errors import IntegrityError

        problems: list[tuple[ArtifactRecord, str]] = []
        checked: dict[str, str | None] = {}
        for latest in self.table.latest():
            for record in self.table.versions(latest.kind, latest.name):
                if record.digest not in checked:
                    try:
                        self.objects.verify(record.digest)
                        checked[record.digest] = None
                    except IntegrityError as exc:
                        checked[record.digest] = str(exc)
                problem = checked[record.digest]
                if problem is not None:
                    problems.append((record, problem))
        return problems

    # -- aliases ---------------------------------------------------------------------

    def alias_set(self, ref: str, alias: str) -> tuple[ArtifactRecord, int | None]:
        """Point ``alias`` at the version ``ref`` names; return it and the previous version."""
        validate_alias(alias)
        record = self.resolve(ref)
        before = self.meta.set_alias(record.kind, record.name, alias, record.version, self.user)
        self.table.note_alias(record.kind, record.name, alias, record.version)
        return record, before

    def alias_rm(self, ref: str, alias: str) -> int:
        parsed = parse_ref(ref)
        record = self.resolve(Ref(parsed.kind, parsed.name))
        before = self.meta.remove_alias(record.kind, record.name, alias, self.user)
        self.table.note_alias(record.kind, record.name, alias, None)
        return before

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
            name, type_, host=self.host, pid=os.getpid(), user=self.user, params=dict(params or {})
        )
        for record in input_records:
            self.meta.add_event(execution_id, record.id, "in")
        return Run(self, execution_id, name)

    def runs(
        self,
        *,
        limit: int = 50,
        state: str | None = None,
        name: str | None = None,
        include_internal: bool = False,
    ) -> list[ExecutionRecord]:
        runs = self.meta.list_executions(limit=limit, state=state, name=name)
        if include_internal:
            return runs
        return [r for r in runs if r.type != "register"]

    def run_info(self, run_id: int) -> dict[str, Any]:
        record = self.meta.get_execution(run_id)
        info = record.to_dict()
        info["params"] = self.meta.params(run_id)
        series: dict[str, list[tuple[int, float]]] = {}
        for key, step, value, _ts in self.meta.metrics(run_id):
            series.setdefault(key, []).append((step, value))
        info["metrics"] = {
            k: {
                "last": v[-1][1],
                "steps": len(v),
                "min": min(x for _, x in v),
                "max": max(x for _, x in v),
            }
            for k, v in series.items()
        }
        events = self.meta.events(run_id)
        info["inputs"] = [self.table.get(a).ref for a, d in events if d == "in"]
        info["outputs"] = [self.table.get(a).ref for a, d in events if d == "out"]
        if record.env_artifact_id is not None:
            info["environment"] = self.table.get(record.env_artifact_id).ref
        return info

    def metrics(self, run_id: int, key: str | None = None) -> list[tuple[str, int, float, float]]:
        self.meta.get_execution(run_id)
        return self.meta.metrics(run_id, key)

    # -- scheduling ------------------------------------------------------------------

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

    def lineage(self, ref: str, direction: str = "up", depth: int = 100) -> Lineage:
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

    def gc(self, *, dry_run: bool = True) -> GCReport:
        return self.objects.gc(self.meta.referenced_digests(), dry_run=dry_run)

    def status(self) -> dict[str, Any]:
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
            "storage": {"objects": objects, "bytes": stored, "path": str(self.objects.root)},
        }

    # -- pipelines -------------------------------------------------------------------

    @cached_property
    def pipelines(self) -> PipelineService:
        """Pipelines: run, resume, inspect, cancel; triggers (see :mod:`mlkernel.pipeline`)."""
        from mlkernel.pipeline.service import PipelineService

        return PipelineService(self)

    def run_pipeline(self, pipeline: Any, **options: Any) -> RunResult:
        """Run a pipeline (a name declared in mlkernel.toml, ``file.py:function``,
        ``module:function`` or a ``@pipeline`` function); see ``PipelineService.run``."""
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
        for sub in STATE_SUBDIRS:
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / ".gitignore").write_text("*\n")
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

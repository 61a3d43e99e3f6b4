"""The artifact service behind ``k.artifacts``: store content, read it back, check it, collect
what nothing references.

The one place that registers an artifact (:meth:`ArtifactService.register`: the object's
address, who made it, the in-memory table), whoever stores it: a logged file or object, an
ingested dataset, a pipeline step's output, a run's environment.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.errors import ConflictError, NotFoundError, UsageError
from mlkernel.refs import validate_kind, validate_name

if TYPE_CHECKING:
    from mlkernel.artifacts.gc import GCReport
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.provenance import Environment

__all__ = ["ArtifactService", "Datasets"]


class Datasets(Protocol):
    """What the artifact service asks of the dataset service (which sits above it): to
    ingest a value logged as a dataset, and to export a dataset in a file's format."""

    def ingest(
        self,
        value: Any,
        *,
        name: str | None,
        properties: Mapping[str, Any] | None,
        execution_id: int | None,
    ) -> ArtifactRecord: ...

    def export_as(self, record: ArtifactRecord, dest: Path, *, force: bool) -> Path | None:
        """Write ``record`` to ``dest`` in the format its name asks for; None: not a dataset
        or not a data format, so the stored file is copied."""
        ...


class ArtifactService:
    """Artifact contents of one project. Reached as ``k.artifacts``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.datasets: Datasets | None = None  # set by the composition root

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    # -- registering -----------------------------------------------------------------

    @operation(
        "artifacts.register",
        Action.WRITE,
        resource="name",
        no_cli="services: every artifact a command stores goes through it",
    )
    def register(
        self,
        kind: str,
        name: str,
        *,
        digest: str,
        size: int,
        properties: Mapping[str, Any],
        execution_id: int | None,
        dedupe: bool = True,
    ) -> tuple[ArtifactRecord, bool]:
        """Record the stored object ``digest`` as a new version of ``kind:name``, made by
        this actor in ``execution_id``; (record, whether it is new). With ``dedupe``, the
        latest version with the same digest is returned instead of a new one."""
        ctx = self._ctx
        record, new = ctx.meta.register_artifact(
            kind,
            name,
            digest=digest,
            uri=ctx.objects.uri(digest),
            size=size,
            properties=dict(properties),
            created_by=ctx.actor.name,
            execution_id=execution_id,
            dedupe=dedupe,
        )
        ctx.table.note_artifact(record)
        return record, new

    @operation(
        "artifacts.log",
        Action.WRITE,
        resource="name",
        no_cli="SDK: the CLI stores artifacts through `mlk data add` and pipeline runs",
    )
    def log(
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
        artifact knows what produced it. ``kind="dataset"`` ingests: a dataset is always a
        stored Arrow file, made from a path or a pandas/polars/Arrow table.
        """
        if kind == "dataset":
            return self._log_dataset(path_or_object, name, properties, execution_id)
        with self._ctx.objects.writing():  # gc keeps the object until it is registered
            return self._log(path_or_object, kind, name, properties, execution_id, dedupe)

    def _log(
        self,
        path_or_object: Any,
        kind: str | None,
        name: str | None,
        properties: Mapping[str, Any] | None,
        execution_id: int | None,
        dedupe: bool,
    ) -> ArtifactRecord:
        objects = self._ctx.objects
        props: dict[str, Any] = dict(properties or {})
        if isinstance(path_or_object, str | Path):
            path = Path(path_or_object)
            if not path.exists():
                raise NotFoundError(f"{path} does not exist; check the path")
            digest, size = objects.put_file(path)
            props.setdefault("source", str(path))
            props.setdefault("format", "tar" if path.is_dir() else "file")
            kind = kind or "file"
            name = name or path.stem
        elif isinstance(path_or_object, bytes | bytearray | memoryview):
            digest, size = objects.put_bytes(bytes(path_or_object))
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
            digest, size = objects.put_bytes(payload)
            cls = type(path_or_object)
            props.setdefault("format", "pickle")
            props.setdefault("python_type", f"{cls.__module__}.{cls.__qualname__}")
            kind = kind or "model"
            name = name or cls.__name__.lower()
        validate_kind(kind)
        validate_name(name)
        own = self._begin(f"register {kind}:{name}") if execution_id is None else None
        record, _new = self.register(
            kind,
            name,
            digest=digest,
            size=size,
            properties=props,
            execution_id=own if own is not None else execution_id,
            dedupe=dedupe,
        )
        if own is not None:
            self._finish(own)
        return record

    def _begin(self, title: str) -> int:
        """The one-off ``register kind:name`` execution that produces an artifact logged
        outside any run (so that every artifact knows what made it)."""
        ctx = self._ctx
        return ctx.meta.insert_execution(
            title, "register", host=ctx.host, pid=os.getpid(), user=ctx.actor.name
        )

    def _finish(self, execution_id: int) -> None:
        """Complete a :meth:`_begin` execution, with the environment it ran in."""
        env = self.environment()
        env_id = self.log_env(env).id if env is not None else None
        self._ctx.meta.finish_execution(execution_id, "completed", env_artifact_id=env_id)

    def _log_dataset(
        self,
        value: Any,
        name: str | None,
        properties: Mapping[str, Any] | None,
        execution_id: int | None,
    ) -> ArtifactRecord:
        if self.datasets is None:
            raise UsageError("datasets are not available here; use k.data.add(...)")
        return self.datasets.ingest(
            value, name=name, properties=properties, execution_id=execution_id
        )

    @exempt("reads the Python environment, not the project")
    def environment(self) -> Environment | None:
        """This process's Python environment, or None when it cannot be described."""
        from mlkernel.provenance import environment

        try:
            return environment(self._ctx.cache_dir)
        except Exception:
            return None

    @operation(
        "artifacts.log_env", Action.WRITE, no_cli="recorded by each run for its Python environment"
    )
    def log_env(self, env: Environment) -> ArtifactRecord:
        """The ``env`` artifact for ``env``, stored once and reused while unchanged."""
        ctx = self._ctx
        known = ctx.shared.env_ids.get(env.digest)
        if known is not None:
            return ctx.table.get(known)
        found = ctx.meta.find_by_digest("env", env.digest)
        if found is None:
            with ctx.objects.writing():
                digest, size = ctx.objects.put_bytes(env.payload)
                found, _ = self.register(
                    "env",
                    "python",
                    digest=digest,
                    size=size,
                    properties={"format": "json", "summary": env.summary},
                    execution_id=None,
                )
        ctx.table.note_artifact(found)
        ctx.shared.env_ids[env.digest] = found.id
        return found

    # -- reading ---------------------------------------------------------------------

    def _resolve(self, ref: str | ArtifactRecord) -> ArtifactRecord:
        return self._ctx.table.resolve(ref) if isinstance(ref, str) else ref

    def _verify_reads(self, verify: bool | None) -> bool:
        return verify if verify is not None else self._ctx.config.tracking.verify_reads

    @operation(
        "artifacts.path",
        Action.READ,
        resource="ref",
        no_cli="SDK: `mlk get` copies the content instead",
    )
    def path(self, ref: str | ArtifactRecord, *, verify: bool | None = None) -> Path:
        """The read-only local file holding an artifact's content (it may be memory-mapped)."""
        record = self._resolve(ref)
        self.require_object(record)
        return self._ctx.objects.local_path_for_reading(
            record.digest, verify=self._verify_reads(verify)
        )

    @operation(
        "artifacts.load", Action.READ, resource="ref", no_cli="SDK: the content as a Python value"
    )
    def load(self, ref: str | ArtifactRecord, *, verify: bool | None = None) -> Any:
        """An artifact's content: the object for pickles, else the bytes."""
        record = self._resolve(ref)
        self.require_object(record)
        data = self._ctx.objects.read_bytes(record.digest, verify=self._verify_reads(verify))
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

        ctx = self._ctx
        if ctx.objects.exists(record.digest):
            return
        if ctx.meta.is_sqlite:
            ctx.objects.open(record.digest).close()  # raises the store's IntegrityError
        raise IntegrityError(self._elsewhere(record))

    def _elsewhere(self, record: ArtifactRecord) -> str:
        ctx = self._ctx
        where = ""
        if record.execution_id is not None:
            producer = ctx.meta.get_execution(record.execution_id)
            where = f"; it was written on host {producer.host} by {producer.user}"
        created_in = ctx.meta.project_root()
        if created_in and created_in != str(ctx.root):
            where += f" (the project was created in {created_in})"
        return (
            f"{record.ref}'s content (object {record.digest[:12]}) is not in this folder's "
            f"store {ctx.objects.location}: objects are local to the machine and folder that "
            f"wrote them, and only the metadata is shared through PostgreSQL{where}; copy "
            f".mlkernel/{record.uri} from there into this folder's .mlkernel/, or log the "
            "artifact again here"
        )

    @operation("artifacts.export", Action.READ, resource="ref", cli="get")
    def export(
        self, ref: str | ArtifactRecord, dest: Path, *, verify: bool = True, force: bool = False
    ) -> Path:
        """Copy an artifact's content to ``dest``; folders are unpacked.

        ``dest`` may be a folder to write into. An ingested dataset written to a name
        ending ``.csv``, ``.parquet``, ``.arrow``, ``.ndjson`` (...) is exported in that
        format (:meth:`DataService.export`); other names get the stored Arrow file. The
        content appears whole or not at all, and an existing ``dest`` is refused unless
        ``force``.
        """
        import tarfile

        from mlkernel.fsutil import atomic_output, is_stream, output_error

        objects = self._ctx.objects
        record = self._resolve(ref)
        dataset = record.ingested
        if dest.is_dir():
            base = f"{record.name}.arrow" if dataset else None
            dest = dest / (base or Path(str(record.properties.get("source", record.name))).name)
        self.require_object(record)
        if dataset and self.datasets is not None:
            if verify:
                objects.verify(record.digest)
            written = self.datasets.export_as(record, dest, force=force)
            if written is not None:
                return written
        with objects.open(record.digest, verify=verify) as handle:
            if record.properties.get("format") != "tar":
                with atomic_output(dest, overwrite=force) as tmp, tmp.open("wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)
                return dest
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

    # -- checking and collecting -------------------------------------------------------

    @operation("artifacts.verify", Action.READ, cli="verify")
    def verify(self) -> list[tuple[ArtifactRecord, str]]:
        """Re-hash every object an artifact references (its companions listed in
        ``properties["objects"]`` too); return (artifact, problem) pairs."""
        from mlkernel.errors import IntegrityError

        table, objects = self._ctx.table, self._ctx.objects
        problems: list[tuple[ArtifactRecord, str]] = []
        checked: dict[str, str | None] = {}
        for latest in table.latest():
            for record in table.versions(latest.kind, latest.name):
                companions = record.properties.get("objects")  # e.g. a dataset's Parquet
                owned = [record.digest]
                if isinstance(companions, dict):
                    owned += [str(d) for d in companions.values()]
                for digest in owned:
                    if digest not in checked:
                        try:
                            if digest == record.digest:
                                self.require_object(record)  # names where a teammate's is
                            objects.verify(digest)
                            checked[digest] = None
                        except IntegrityError as exc:
                            checked[digest] = str(exc)
                    problem = checked[digest]
                    if problem is not None:
                        problems.append((record, problem))
        return problems

    @operation("artifacts.gc", Action.DELETE, cli="gc")
    def gc(self, *, dry_run: bool = True, grace: float | None = None) -> GCReport:
        """Delete objects (and cached copies) no artifact references, leaving those younger
        than ``grace`` seconds (``storage.gc_grace``): they may belong to a registration
        in flight. Safe beside writers in other processes (:mod:`mlkernel.gclock`)."""
        ctx = self._ctx
        wait = ctx.config.storage.gc_grace if grace is None else grace
        if wait < 0:
            raise UsageError(f"grace is {wait} seconds; use 0 or more")
        return ctx.objects.gc(
            ctx.meta.referenced_digests,
            dry_run=dry_run,
            grace=wait,
            caches=[ctx.cache_dir / "data"],
        )


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

"""Running one step from a task spec: load inputs, call the function, store the output.

Shared by every executor: the ``process`` worker runs it in a fresh interpreter, the
``inline`` executor in the caller, the ``ray`` executor in a Ray worker. It touches only
the object store, never the metadata database: the parent records what happened.
Keep the imports light; the process worker pays for each of them on every step.

A task spec is JSON::

    {"step": "train", "target": {"module": "pipelines.train", "qualname": "train",
     "file": null, "sys_path": ["/project"]}, "objects": "/project/.mlkernel/objects",
     "cache": "/project/.mlkernel/cache", "args": {"data": {"artifact": {...}, "as": "value"},
     "lr": {"value": 0.1}}, "output": "model:churn"}

and the result::

    {"ok": true, "output": {"digest": "...", "size": 12, "format": "pickle",
     "python_type": "builtins.dict"} | null, "metrics": {"auc": 0.9} | null,
     "wall_s": 0.01, "max_rss_kb": 41000, "error": null}

A ``dataset:`` output's description also holds the version's properties (rows, schema, ...).
``objects`` is the object store's location; the worker opens the store there
(:class:`mlkernel.artifacts.store.LocalObjectStore`), which alone knows its layout.
"""

from __future__ import annotations

import os
import pickle
import sys
import time

# Not `from typing import TYPE_CHECKING`: every pipeline step's process imports this
# module, and typing costs ~10 ms of it. mypy reads a module-level TYPE_CHECKING too.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from mlkernel.artifacts.store import LocalObjectStore

__all__ = ["Artifact", "OutputError", "encode_output", "import_target", "load_args", "run_spec"]


class Artifact:
    """An input artifact handed to a step as a handle (datasets, files; or when the
    parameter is annotated ``mlk.Artifact``): its reference, digest, properties and file."""

    def __init__(
        self, info: dict[str, Any], objects: str | Path, cache: str | Path | None = None
    ) -> None:
        self.ref: str = info["ref"]
        self.kind: str = info["kind"]
        self.name: str = info["name"]
        self.version: int = int(info["version"])
        self.digest: str = info["digest"]
        self.properties: dict[str, Any] = dict(info.get("properties") or {})
        self._objects = objects
        self._cache = cache

    @property
    def path(self) -> Path:
        """The read-only file holding the content (a dataset's Arrow IPC file)."""
        return _store(self._objects).local_path_for_reading(self.digest)

    def read_bytes(self) -> bytes:
        return _store(self._objects).read_bytes(self.digest)

    def load(self) -> Any:
        """The stored object for pickles, else the bytes."""
        data = self.read_bytes()
        return pickle.loads(data) if self.properties.get("format") == "pickle" else data

    def open(self, *, layout: str = "columns", columns: list[str] | None = None) -> Any:
        """A dataset as a memory-mapped Arrow table (``columns``) or row matrix (``rows``)."""
        from mlkernel.data import layout as layouts
        from mlkernel.errors import UsageError

        if self.kind != "dataset":
            raise UsageError(f"{self.ref} is a {self.kind}; only datasets open in a layout")
        objects = self.properties.get("objects")
        if not isinstance(objects, dict) or objects.get("ipc") != self.digest:
            raise UsageError(
                f"{self.ref} was stored as a plain object, not ingested, so it cannot be "
                f"opened; ingest the data with `mlk data add FILE --name {self.name}`"
            )
        table = layouts.map_table(self.path)
        if layout == "rows":
            from pathlib import Path

            base = Path(self._cache) if self._cache else Path(self._objects).parent / "cache"
            return layouts.rows_matrix(base / "data", self.digest, table, "float64", columns)
        return layouts.select(table, columns, None, self.ref)

    def __repr__(self) -> str:
        return f"<Artifact {self.ref}>"

    def __reduce__(self) -> Any:  # handles travel to Ray workers
        info = {
            "ref": self.ref,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "properties": self.properties,
        }
        return (Artifact, (info, self._objects, self._cache))


def _store(objects: str | Path) -> LocalObjectStore:
    """The object store at ``objects`` (its location, as the task spec gives it)."""
    from pathlib import Path

    from mlkernel.artifacts.store import LocalObjectStore

    return LocalObjectStore(Path(objects))


def import_target(target: dict[str, Any]) -> Any:
    """The step object a spec names: ``module`` + ``qualname``, loaded from ``file`` if set."""
    import importlib

    for entry in reversed(target.get("sys_path") or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name = target["module"]
    module = sys.modules.get(module_name)
    if module is None:
        if target.get("file"):
            import importlib.util

            spec = importlib.util.spec_from_file_location(module_name, target["file"])
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {target['file']}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    obj: Any = module
    for part in target["qualname"].split("."):
        obj = getattr(obj, part)
    return obj


def load_args(args: dict[str, Any], objects: str, cache: str | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    for name, arg in args.items():
        if "value" in arg:
            loaded[name] = arg["value"]
        elif "object" in arg:
            loaded[name] = pickle.loads(_store(objects).read_bytes(arg["object"]))
        elif "artifact" in arg:
            handle = Artifact(arg["artifact"], objects, cache)
            loaded[name] = handle.load() if arg.get("as") == "value" else handle
        else:
            loaded[name] = None
    return loaded


class OutputError(Exception):
    """A step's return value cannot be stored as its output; the message names the step
    and the fix, so it is the step's whole error (no type, no location)."""


def encode_output(
    value: Any, objects: str, *, step: str = "?", output: str | None = None
) -> tuple[dict[str, Any] | None, Any]:
    """Store a step's return value; return (output description, metrics or None).

    ``output`` is the artifact it becomes (``"dataset:train"``); a dataset's value is
    converted to an Arrow table and stored as the version's Arrow IPC file, as an ingest
    stores it (:func:`mlkernel.data.tables.write_version`), the others as they are.
    """
    from mlkernel.pipeline.dsl import Metrics

    metrics = None
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[1], Metrics)
        and not isinstance(value[0], Metrics)
    ):
        value, metrics = value
    elif isinstance(value, Metrics):
        metrics = value
    if metrics is not None:
        metrics = {str(k): float(v) for k, v in metrics.items()}
    if value is None:
        return None, metrics
    if output is not None and output.startswith("dataset:"):
        return _dataset_output(value, objects, step, output), metrics
    from pathlib import Path, PurePath

    store = _store(objects)
    if isinstance(value, PurePath):
        digest, size = store.put_file(Path(value))
        is_dir = Path(value).is_dir()
        fmt: dict[str, Any] = {"format": "tar" if is_dir else "file", "source": value.name}
    elif isinstance(value, bytes | bytearray):
        digest, size = store.put_bytes(bytes(value))
        fmt = {"format": "bytes"}
    else:
        cls = type(value)
        digest, size = store.put_bytes(pickle.dumps(value, protocol=5))
        fmt = {"format": "pickle", "python_type": f"{cls.__module__}.{cls.__qualname__}"}
    return {"digest": digest, "size": size, **fmt}, metrics


def _dataset_output(value: Any, objects: str, step: str, output: str) -> dict[str, Any]:
    # Only here, for dataset outputs, do pyarrow (and the data layer) load in the worker.
    from mlkernel.data.tables import write_version
    from mlkernel.errors import UsageError

    try:
        return write_version(value, _store(objects), f"step {step}", output)
    except UsageError as exc:
        raise OutputError(str(exc)) from None


def _where(tb: Any) -> str:
    import traceback

    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {os.path.basename(last.filename)}:{last.lineno})"


def run_spec(spec: dict[str, Any], fn: Any = None) -> dict[str, Any]:
    """Run the step a spec describes (``fn``: the step or function, if already at hand)."""
    started = time.perf_counter()
    objects = spec["objects"]
    cache = spec.get("cache")
    try:
        target = fn if fn is not None else import_target(spec["target"])
        func = getattr(target, "fn", target)
        kwargs = load_args(spec["args"], objects, cache)
        value = func(**kwargs)
        output, metrics = encode_output(
            value, objects, step=spec["step"], output=spec.get("output")
        )
        result: dict[str, Any] = {"ok": True, "output": output, "metrics": metrics, "error": None}
    except OutputError as exc:
        print(f"mlk: {exc}", file=sys.stderr)
        result = {"ok": False, "output": None, "metrics": None, "error": str(exc)[:500]}
    except Exception as exc:
        import traceback

        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        result = {"ok": False, "output": None, "metrics": None}
        result["error"] = message + _where(exc.__traceback__)
    result["wall_s"] = round(time.perf_counter() - started, 6)
    import resource

    result["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["pid"] = os.getpid()
    return result

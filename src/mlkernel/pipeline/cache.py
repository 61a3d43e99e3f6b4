"""A step's inputs and cache key, and the earlier execution a run may reuse for it.

The cache key is the SHA-256 of the step's code digest, its parameters, its inputs'
digests, its output's name and the environment digest. A completed execution with that
key whose output still exists is reused (the loop records a ``cached`` execution for it);
``--resume`` names the executions to reuse outright. Nothing here writes an execution.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.errors import MLKernelError
from mlkernel.pipeline.values import Output, Ref

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.pipeline.graph import Node

__all__ = ["CACHE_VERSION", "Hit", "Prepared", "StepCache"]

CACHE_VERSION = 1

#: (the execution to reuse, its output artifact or None)
Hit = tuple[int, int | None]


@dataclass(slots=True)
class Prepared:
    """A step ready to run: its arguments for the worker, and what its execution records."""

    args: dict[str, Any]
    params: dict[str, Any]
    inputs: list[int]
    cache_key: str
    code_digest: str


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _wants_handle(fn: Any, param: str) -> bool:
    """Whether ``param`` is annotated ``Artifact`` (a handle rather than the value)."""
    annotation = getattr(fn, "__annotations__", {}).get(param)
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(text).split(".")[-1].split("[")[0] == "Artifact"


def _as_value(fn: Any, param: str, value: Output | Ref, record: ArtifactRecord) -> bool:
    """Whether the step gets the artifact's value (else a handle): an upstream output
    unless it is a dataset, a reference if it holds a pickle; never for ``Artifact``."""
    if _wants_handle(fn, param):
        return False
    if isinstance(value, Output):
        return record.kind != "dataset"
    return record.properties.get("format") == "pickle"


def _artifact_arg(record: ArtifactRecord, as_value: bool) -> dict[str, Any]:
    info = {
        "ref": record.ref,
        "kind": record.kind,
        "name": record.name,
        "version": record.version,
        "digest": record.digest,
        "properties": record.properties,
    }
    return {"artifact": info, "as": "value" if as_value else "handle"}


class StepCache:
    """Prepares each step once per run and finds the execution it may reuse: ``catalog``
    resolves the references steps read, ``artifacts`` stores the project files they read."""

    def __init__(
        self,
        ctx: Context,
        artifacts: ArtifactService,
        catalog: CatalogService,
        env_digest: str,
        *,
        reuse: dict[str, int],
        force: bool,
    ) -> None:
        self.ctx = ctx
        self.artifacts = artifacts
        self.catalog = catalog
        self.env_digest = env_digest
        self.reuse = reuse  # step name -> execution to reuse (--resume)
        self.force = force
        self._prepared: dict[str, Prepared] = {}
        self._codes: dict[int, str] = {}

    # -- inputs ----------------------------------------------------------------------

    def _file_input(self, ref: Ref) -> ArtifactRecord:
        from mlkernel.digest import of_file
        from mlkernel.errors import NotFoundError

        assert ref.path is not None
        path = Path(ref.path)
        path = path if path.is_absolute() else self.ctx.root / path
        if not path.is_file():
            raise NotFoundError(f"pipeline input {ref.path} does not exist; check the path")
        name = ref.ref.partition(":")[2]
        versions = self.ctx.table.versions("file", name)
        if versions and versions[-1].digest == of_file(path):
            return versions[-1]
        return self.artifacts.log(path, kind="file", name=name)

    def _input(
        self, value: Output | Ref, outputs: dict[str, ArtifactRecord | None]
    ) -> ArtifactRecord | None:
        """The artifact an argument names: an upstream output (None if it had none), a
        reference, or a project file."""
        if isinstance(value, Output):
            return outputs.get(value.node)
        return (
            self._file_input(value) if value.path is not None else self.catalog.resolve(value.ref)
        )

    def _code(self, node: Node) -> str:
        from mlkernel.pipeline.code import code_digest

        fn = node.step.fn
        found = self._codes.get(id(fn))
        if found is None:
            found = self._codes[id(fn)] = code_digest(fn, self.ctx.root)
        return found

    def _put(self, value: Any) -> str:
        """A value JSON cannot hold, pickled into the object store; its digest."""
        import pickle

        digest, _ = self.ctx.objects.put_bytes(pickle.dumps(value, protocol=5))
        return digest

    # -- the key ---------------------------------------------------------------------

    def prepare(self, node: Node, outputs: dict[str, ArtifactRecord | None]) -> Prepared:
        """``node``'s arguments and cache key, given the upstream ``outputs`` so far."""
        found = self._prepared.get(node.name)
        if found is not None:
            return found
        fn = node.step.fn
        args: dict[str, Any] = {}
        params: dict[str, Any] = {}
        digests: dict[str, str | None] = {}
        inputs: list[int] = []
        for pname, value in {**node.args, **node.params}.items():
            if isinstance(value, Output | Ref):
                record = self._input(value, outputs)
                if record is None:
                    args[pname], digests[pname] = {"none": True}, None
                    continue
                args[pname] = _artifact_arg(record, _as_value(fn, pname, value, record))
                digests[pname] = record.digest
                inputs.append(record.id)
            elif _jsonable(value):
                args[pname] = {"value": value}
                params[pname] = value
            else:
                digests[pname] = self._put(value)
                args[pname] = {"object": digests[pname]}
        code = self._code(node)
        prepared = Prepared(args, params, inputs, self._key(node, code, params, digests), code)
        self._prepared[node.name] = prepared
        return prepared

    def _key(
        self, node: Node, code: str, params: dict[str, Any], digests: dict[str, str | None]
    ) -> str:
        extra = node.step.cache_extra() if hasattr(node.step, "cache_extra") else None
        blob = json.dumps(
            {
                "v": CACHE_VERSION,
                "code": code,
                "params": params,
                "inputs": digests,
                "env": self.env_digest,
                "output": node.step.output,
                "extra": extra,
            },
            sort_keys=True,
            default=repr,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    # -- lookups ---------------------------------------------------------------------

    def lookup(self, node: Node, prepared: Prepared) -> Hit | None:
        """The execution to reuse for ``node`` (and its output), or None to run it."""
        reused = self.reuse.get(node.name)
        if reused is not None:
            previous = self.ctx.meta.get_execution(reused)
            return reused, (previous.resources or {}).get("output")
        if self.force or not node.options.cache:
            return None
        found = self.ctx.meta.find_cached(prepared.cache_key)
        if found is None:
            return None
        output_id = (found.resources or {}).get("output")
        if output_id is not None and not self._output_exists(int(output_id)):
            return None  # collected since: run it again
        return found.id, output_id

    def _output_exists(self, artifact_id: int) -> bool:
        try:
            record = self.catalog.get(artifact_id)
        except MLKernelError:
            return False
        return self.ctx.objects.exists(record.digest)

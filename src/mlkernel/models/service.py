"""The model registry behind ``k.models``: model versions with their flavor, input signature,
the metrics of the run that made them, and lineage (issue 13).

A model version is an artifact of kind ``model`` whose content is the folder its flavor
wrote (stored as one object); its properties record the flavor, the library versions, the
signature and whether loading it is unsafe (the generic ``python`` flavor unpickles).
Loading unpacks the folder once into ``.mlkernel/cache/models/DIGEST`` and goes through the
flavor, never through pickle unless the version says ``python``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.authz import Action, Actor, operation
from mlkernel.errors import UsageError

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.results import AliasChange
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.models.base import LoadedModel
    from mlkernel.models.signature import Signature
    from mlkernel.tracking.service import RunService

__all__ = ["ModelDetail", "ModelService", "ModelSummary"]


@dataclass(frozen=True)
class ModelSummary:
    """The latest version of one model."""

    record: ArtifactRecord
    flavor: str  # "sklearn", ..., "python"; "pickle" for a model logged as a plain object
    unsafe: bool  # loading it unpickles arbitrary code
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.record.ref,
            "name": self.record.name,
            "version": self.record.version,
            "flavor": self.flavor,
            "unsafe": self.unsafe,
            "aliases": dict(self.aliases),
            "created_at": self.record.created_at,
            "created_by": self.record.created_by,
        }


@dataclass(frozen=True)
class ModelDetail:
    """One model version: flavor, signature, libraries, the metrics and inputs of the run
    that made it, its aliases and sibling versions."""

    record: ArtifactRecord
    flavor: str
    unsafe: bool
    signature: Signature | None
    libraries: dict[str, str]
    model_class: str | None
    metrics: dict[str, float]  # the producing run's metrics, last values
    inputs: list[str]  # what the producing run read (training data, steps)
    run: str | None  # the producing run's name and id
    aliases: dict[str, int]
    versions: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.record.ref,
            "flavor": self.flavor,
            "unsafe": self.unsafe,
            "signature": self.signature.to_dict() if self.signature is not None else None,
            "libraries": dict(self.libraries),
            "model_class": self.model_class,
            "metrics": dict(self.metrics),
            "inputs": list(self.inputs),
            "run": self.run,
            "aliases": dict(self.aliases),
            "versions": list(self.versions),
            "digest": self.record.digest,
            "size": self.record.size,
            "created_at": self.record.created_at,
            "created_by": self.record.created_by,
        }


def _flavor_of(record: ArtifactRecord) -> tuple[str, bool]:
    props = record.properties
    flavor = props.get("flavor")
    if isinstance(flavor, str):
        return flavor, bool(props.get("unsafe", flavor == "python"))
    return "pickle", props.get("format") == "pickle"  # logged as a plain object


class ModelService:
    """Model versions of one project. Reached as ``k.models``."""

    def __init__(
        self,
        ctx: Context,
        artifacts: ArtifactService,
        catalog: CatalogService,
        runs: RunService,
        data: DataService,
    ) -> None:
        self._ctx = ctx
        self._artifacts = artifacts
        self._catalog = catalog
        self._runs = runs
        self._data = data

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    @operation(
        "models.log",
        Action.WRITE,
        resource="name",
        no_cli="SDK: k.models.log(model, name=...); pipelines and runs log their models",
    )
    def log(
        self,
        model: Any,
        *,
        name: str,
        flavor: str | None = None,
        signature: Signature | None = None,
        example: Any = None,
        training: str | None = None,
        execution_id: int | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> ArtifactRecord:
        """Store ``model`` as a new version of ``model:NAME`` with its flavor (detected, or
        named: ``flavor="python"`` pickles, unsafely) and its input signature: given, or
        inferred from ``example`` (a table of inputs) or from ``training`` (a dataset
        reference: the columns the model was fitted on, or all of them). ``execution_id``:
        the run that made it (its metrics and inputs are the version's)."""
        from mlkernel.models.flavors import save

        trained_on = None if training is None else self._data.resolve(training).ref
        if trained_on is not None and signature is None:
            example = self._data.head(trained_on, 0)  # the schema: no rows needed
        if signature is None and example is not None:
            signature = self._infer(model, example)
        base = self._ctx.cache_dir / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="model-", dir=base))
        try:
            props = save(model, folder / "model", flavor)
            props["format"] = "tar"
            if signature is not None:
                props["signature"] = signature.to_dict()
            if trained_on is not None:
                props["training"] = trained_on
            props.update(properties or {})
            return self._artifacts.log(
                folder / "model",
                kind="model",
                name=name,
                properties=props,
                execution_id=execution_id,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _infer(model: Any, example: Any) -> Signature:
        from mlkernel.models.signature import infer_signature

        names = getattr(model, "feature_names_in_", None)
        if names is not None and hasattr(example, "select"):  # keep the fitted columns
            wanted = [str(n) for n in names]
            present = set(getattr(example, "column_names", None) or example.columns)
            missing = [n for n in wanted if n not in present]
            if missing:
                raise UsageError(
                    f"the model was fitted on columns the data lacks: {', '.join(missing)}; "
                    "name the dataset it was trained on"
                )
            example = example.select(wanted)
        return infer_signature(example, model=model)

    def _model(self, ref: str) -> ArtifactRecord:
        record = self._catalog.resolve(ref, "model")
        if record.kind != "model":
            raise UsageError(
                f"{record.ref} is a {record.kind}, not a model; `mlk models ls` lists the models"
            )
        return record

    @operation("models.ls", Action.READ, cli="models ls")
    def ls(self) -> list[ModelSummary]:
        """The latest version of every model, with its flavor and aliases."""
        out = []
        for record in self._catalog.ls("model"):
            flavor, unsafe = _flavor_of(record)
            aliases = self._ctx.table.aliases_of(record.kind, record.name)
            out.append(ModelSummary(record, flavor, unsafe, aliases))
        return out

    @operation("models.show", Action.READ, resource="ref", cli="models show")
    def show(self, ref: str) -> ModelDetail:
        """One model version (``churn``, ``churn@production``, ``churn@3``) in detail."""
        from mlkernel.models.signature import Signature

        record = self._model(ref)
        flavor, unsafe = _flavor_of(record)
        props = record.properties
        metrics: dict[str, float] = {}
        inputs: list[str] = []
        run = None
        producer = record.execution_id
        info = self._runs.info(producer) if producer is not None else None
        if info is not None and info.record.type != "register":  # made by a run, not logged
            metrics = {key: m.last for key, m in info.metrics.items()}
            inputs = [r for r in info.inputs if not r.startswith("env:")]
            run = f"{info.record.name} #{info.record.id}"
        raw = props.get("signature")
        libraries = props.get("libraries")
        return ModelDetail(
            record=record,
            flavor=flavor,
            unsafe=unsafe,
            signature=Signature.from_dict(raw) if isinstance(raw, dict) else None,
            libraries=dict(libraries) if isinstance(libraries, dict) else {},
            model_class=props.get("model_class") or props.get("python_type"),
            metrics=metrics,
            inputs=inputs,
            run=run,
            aliases=self._ctx.table.aliases_of(record.kind, record.name),
            versions=[v.version for v in self._catalog.versions(record)],
        )

    @operation("models.history", Action.READ, resource="name", cli="models history")
    def history(self, name: str) -> list[AliasChange]:
        """Every move of every alias of model ``name`` (who, when, from, to), oldest first."""
        record = self._model(name)
        return self._catalog.alias_history(f"model:{record.name}")

    @operation(
        "models.load", Action.READ, resource="ref", no_cli="SDK: the model, ready to predict"
    )
    def load(self, ref: str) -> LoadedModel:
        """A model version, loaded through its flavor (checked against its digest once)."""
        from mlkernel.models.flavors import load

        record = self._model(ref)
        props = record.properties
        if not isinstance(props.get("flavor"), str):
            raise UsageError(
                f"{record.ref} was logged as a plain object, not through k.models.log; "
                "load it with k.load(...)"
            )
        folder = self._ctx.cache_dir / "models" / record.digest
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
            try:
                self._artifacts.export(record, staging / "m", verify=True)
                try:
                    (staging / "m").rename(folder)
                except OSError:  # another process unpacked it first
                    if not folder.is_dir():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return load(folder, props)

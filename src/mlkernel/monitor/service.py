"""The monitor service behind ``k.monitor``: profiles and drift reports as artifacts.

A profile is computed once per dataset version, in one bounded-memory pass over its
memory-mapped Arrow file, and stored as a ``profile`` artifact (JSON) produced by a
``profile`` execution that read the dataset. Drift between two versions is computed from
their stored profiles, so comparing against a large reference costs no second pass. A
report is stored as two ``report`` artifacts (HTML and JSON) whose execution read both
profiles and both datasets, so `mlk lineage --down dataset:train@3` finds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.monitor.drift import DatasetDrift, DriftOptions
    from mlkernel.monitor.profile import DatasetProfile
    from mlkernel.monitor.report import ReportChange

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.monitor.names import drift_report_names, drift_run_name

__all__ = ["DriftReport", "MonitorService"]


@dataclass(frozen=True, slots=True)
class DriftReport:
    reference: ArtifactRecord
    current: ArtifactRecord
    result: DatasetDrift
    html: ArtifactRecord
    json: ArtifactRecord
    seconds: float
    path: Path  # the HTML page as a file a browser opens (a copy of the stored object)
    document: dict[str, Any] = field(default_factory=dict)  # the JSON report's content

    def to_dict(self) -> dict[str, Any]:
        """The result with, per column, what the HTML shows: missing values, categories."""
        out = {
            "dataset": self.current.name,
            "reference": self.reference.ref,
            "current": self.current.ref,
            "report": self.html.ref,
            "report_json": self.json.ref,
            "path": str(self.path),
            "seconds": round(self.seconds, 4),
            **self.result.to_dict(),
        }
        sides = {c["column"]: c for c in self.document.get("columns", [])}
        for column in out["columns"]:
            side = sides.get(column["column"])
            if side is not None:
                column["missing_share"] = {
                    "reference": side["reference"]["missing_share"],
                    "current": side["current"]["missing_share"],
                }
                column["categories"] = side["categories"]
                if "outliers_iqr_share" in side["reference"]:
                    column["outliers_iqr_share"] = {
                        "reference": side["reference"]["outliers_iqr_share"],
                        "current": side["current"].get("outliers_iqr_share"),
                    }
        out["changes"] = self.document.get("changes", [])
        return out

    def changes(self) -> list[ReportChange]:
        """Every change the report shows, for a terminal: see :func:`report_changes`."""
        from mlkernel.monitor.report import report_changes

        return report_changes(self.document)


class MonitorService:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    @property
    def actor(self) -> Actor:
        """Who calls: the kernel's actor (:meth:`Kernel.as_actor`)."""
        return self._kernel.actor

    @exempt("the project's drift settings, from the configuration only")
    def drift_options(self) -> DriftOptions:
        """``[monitor.drift]`` of mlkernel.toml (methods, thresholds, per-column overrides)."""
        from mlkernel.monitor.drift import DriftOptions
        from mlkernel.monitor.settings import MonitorSettings

        settings = MonitorSettings.from_sections(self._kernel.config.sections)
        return DriftOptions.from_mapping(settings.drift or {})

    # -- profiles --------------------------------------------------------------------

    @operation(
        "monitor.stored_profile",
        Action.READ,
        resource="ref",
        no_cli="SDK: building block of `mlk data profile`",
    )
    def stored_profile(self, ref: str | ArtifactRecord) -> ArtifactRecord | None:
        """The profile artifact of a dataset version, if one was computed."""
        dataset = self._dataset(ref)
        for record in self._kernel.table.versions("profile", dataset.name)[::-1]:
            if record.properties.get("dataset_digest") == dataset.digest:
                return record
        return None

    @operation("monitor.profile_record", Action.WRITE, resource="ref", cli="data profile")
    def profile_record(self, ref: str | ArtifactRecord, *, force: bool = False) -> ArtifactRecord:
        """Profile a dataset version (once) and return the stored ``profile`` artifact."""
        dataset = self._dataset(ref)
        if not force:
            found = self.stored_profile(dataset)
            if found is not None:
                return found
        from mlkernel.monitor.profile import build_profile

        started = time.perf_counter()
        run_name = drift_run_name("profile", dataset.name)
        with self._kernel.start_run(run_name, type_="profile", inputs=[dataset.ref]) as run:
            profile = build_profile(_stream(self._kernel.data.ipc_path(dataset)))
            seconds = time.perf_counter() - started
            rows = int(dataset.properties.get("rows", 0)) or _rows(profile)
            run.log_metrics(
                {"rows": rows, "seconds": seconds, "rows_per_s": rows / max(seconds, 1e-9)}
            )
            return run.log_artifact(
                profile.to_json().encode(),
                kind="profile",
                name=dataset.name,
                properties={
                    "format": "json",
                    "dataset": dataset.ref,
                    "dataset_digest": dataset.digest,
                    "rows": rows,
                    "columns": len(profile.columns),
                },
                dedupe=False,
            )

    @operation("monitor.profile", Action.WRITE, resource="ref", cli="data profile")
    def profile(self, ref: str | ArtifactRecord, *, force: bool = False) -> DatasetProfile:
        """The profile of a dataset version: stored once, loaded afterwards."""
        from mlkernel.monitor.profile import DatasetProfile

        record = self.profile_record(ref, force=force)
        return DatasetProfile.from_json(self._kernel.objects.read_bytes(record.digest))

    # -- drift -----------------------------------------------------------------------

    @operation("monitor.drift", Action.WRITE, resource="current", cli="data drift")
    def drift(
        self,
        reference: str | ArtifactRecord,
        current: str | ArtifactRecord,
        options: DriftOptions | None = None,
    ) -> DatasetDrift:
        """Drift of ``current`` against ``reference``, from their stored profiles."""
        from mlkernel.monitor.drift import compute_drift

        return compute_drift(
            self.profile(reference), self.profile(current), options or self.drift_options()
        )

    @operation("monitor.report", Action.WRITE, resource="current", cli="data drift")
    def report(
        self,
        reference: str | ArtifactRecord,
        current: str | ArtifactRecord,
        *,
        options: DriftOptions | None = None,
        html: Path | None = None,
    ) -> DriftReport:
        """Compute drift, store the HTML and JSON report with lineage to both versions."""
        from mlkernel.fsutil import write_atomic
        from mlkernel.monitor.profile import DatasetProfile
        from mlkernel.monitor.report import build_report

        started = time.perf_counter()
        ref_ds, cur_ds = self._dataset(reference), self._dataset(current)
        ref_prof, cur_prof = self.profile_record(ref_ds), self.profile_record(cur_ds)
        load = self._kernel.objects.read_bytes
        ref_p = DatasetProfile.from_json(load(ref_prof.digest))
        cur_p = DatasetProfile.from_json(load(cur_prof.digest))
        opts = options or self.drift_options()
        report = build_report(
            ref_p,
            cur_p,
            options=opts,
            title=f"Data drift: {cur_ds.ref} against {ref_ds.ref}",
            reference_name=ref_ds.ref,
            current_name=cur_ds.ref,
        )
        document = report.to_dict()
        page = report.to_html()
        names = drift_report_names(cur_ds.name)
        inputs = [ref_ds.ref, cur_ds.ref, ref_prof.ref, cur_prof.ref]
        run_name = drift_run_name("drift", cur_ds.name)
        with self._kernel.start_run(run_name, type_="drift", inputs=inputs) as run:
            result = report.result
            run.log_metrics(
                {
                    "drifted_columns": len(result.drifted),
                    "drift_share": result.share_drifted,
                    "dataset_drift": float(result.dataset_drift),
                }
            )
            props = {
                "dataset": cur_ds.name,  # what triggers match: never parse the report name
                "reference": ref_ds.ref,
                "current": cur_ds.ref,
                "dataset_drift": bool(result.dataset_drift),
                "drifted": [c.column for c in result.drifted],
            }
            html_record = run.log_artifact(
                page.encode(),
                kind="report",
                name=names["html"],
                properties={**props, "format": "html"},
            )
            json_record = run.log_artifact(
                report.to_json().encode(),
                kind="report",
                name=names["json"],
                properties={**props, "format": "json"},
            )
        if html is None:
            folder = self._kernel.config.state_dir / "reports"
            folder.mkdir(parents=True, exist_ok=True)
            html = folder / f"{html_record.name}-{html_record.version}.html"
        try:
            write_atomic(html, page.encode())
        except OSError as exc:  # the report is stored; only the copy asked for failed
            from mlkernel.fsutil import output_error

            raise output_error(html, exc) from None
        return DriftReport(
            ref_ds,
            cur_ds,
            report.result,
            html_record,
            json_record,
            time.perf_counter() - started,
            html,
            document,
        )

    # -- helpers ---------------------------------------------------------------------

    def _dataset(self, ref: str | ArtifactRecord) -> ArtifactRecord:
        # The data service refuses, in one line, a ref that is no ingested dataset.
        return self._kernel.data.resolve(ref)


def _stream(path: Path) -> Iterator[Any]:
    """The record batches of an Arrow IPC file, read (not mapped) one at a time.

    Reading instead of memory-mapping keeps the resident set bounded by one batch: pages
    of a mapped file count towards RSS until the kernel reclaims them.
    """
    import pyarrow as pa

    with pa.OSFile(str(path), "rb") as source:
        try:
            reader = pa.ipc.open_file(source)
        except pa.ArrowInvalid as exc:
            from mlkernel.data.layout import damaged

            raise damaged(path, exc) from None
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def _rows(profile: DatasetProfile) -> int:
    counts = [col.count for col in profile.columns.values()]
    return int(max(counts)) if counts else 0

"""The monitor service behind ``k.monitor``: profiles and drift reports as artifacts.

Built from the project's :class:`~mlkernel.context.Context` and the services it uses
(artifacts, catalog, runs, datasets), never from the Kernel.

A profile is computed once per dataset version, in one bounded-memory pass over its
memory-mapped Arrow file, and stored as a ``profile`` artifact (JSON) produced by a
``profile`` execution that read the dataset. Drift between two versions is computed from
their stored profiles, so comparing against a large reference costs no second pass. A
report is stored as two ``report`` artifacts (HTML and JSON) whose execution read both
profiles and both datasets, so `mlk lineage --down dataset:train@3` finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.monitor.drift import DatasetDrift, DriftOptions
    from mlkernel.monitor.profile import DatasetProfile
    from mlkernel.monitor.report import ReportChange
    from mlkernel.monitor.watch import Watcher, WatchEvent, WatchSpec
    from mlkernel.sched.policy import OffPeak
    from mlkernel.tracking.service import RunService

from mlkernel.authz import Action, Actor, exempt, operation
from mlkernel.errors import NotFoundError
from mlkernel.monitor.names import drift_report_names, drift_run_name

__all__ = ["CategoryChange", "ColumnSides", "DriftReport", "MonitorService", "Shares"]


@dataclass(frozen=True, slots=True)
class Shares:
    """One share (of missing values, of outliers) in the reference and the current version."""

    reference: float | None
    current: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "current": self.current}


@dataclass(frozen=True, slots=True)
class CategoryChange:
    """Categories of a column only in the current version (new) or only in the reference
    (missing), the first 50 of each; ``exact`` when both versions' categories are known."""

    new: tuple[str, ...]
    new_count: int
    missing: tuple[str, ...]
    missing_count: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": list(self.new),
            "new_count": self.new_count,
            "missing": list(self.missing),
            "missing_count": self.missing_count,
            "exact": self.exact,
        }


@dataclass(frozen=True, slots=True)
class ColumnSides:
    """What a report shows of one column besides its drift test: both versions' share of
    missing values, the categories that came or went, the share of IQR outliers."""

    column: str
    missing_share: Shares
    categories: CategoryChange | None
    outliers_iqr_share: Shares | None  # None: not a numeric column

    @classmethod
    def from_report(cls, column: Mapping[str, Any]) -> ColumnSides:
        """From one entry of a report document's ``columns`` (:meth:`Report.to_dict`)."""
        ref, cur, cats = column["reference"], column["current"], column["categories"]
        outliers = None
        if "outliers_iqr_share" in ref:
            outliers = Shares(ref["outliers_iqr_share"], cur.get("outliers_iqr_share"))
        return cls(
            column["column"],
            Shares(ref["missing_share"], cur["missing_share"]),
            None
            if cats is None
            else CategoryChange(
                tuple(cats["new"]),
                cats["new_count"],
                tuple(cats["missing"]),
                cats["missing_count"],
                cats["exact"],
            ),
            outliers,
        )

    def to_dict(self) -> dict[str, Any]:
        """The keys a drift report's JSON adds to the column's drift result."""
        out: dict[str, Any] = {
            "missing_share": self.missing_share.to_dict(),
            "categories": None if self.categories is None else self.categories.to_dict(),
        }
        if self.outliers_iqr_share is not None:
            out["outliers_iqr_share"] = self.outliers_iqr_share.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class DriftReport:
    reference: ArtifactRecord
    current: ArtifactRecord
    result: DatasetDrift
    html: ArtifactRecord
    json: ArtifactRecord
    seconds: float
    path: Path  # the HTML page as a file a browser opens (a copy of the stored object)
    sides: tuple[ColumnSides, ...] = ()  # per column: what the HTML shows besides the test
    changes: tuple[ReportChange, ...] = ()  # every change the report lists, one line each

    def to_dict(self) -> dict[str, Any]:
        """The result with, per column, what the HTML shows: missing values, categories."""
        out: dict[str, Any] = {
            "dataset": self.current.name,
            "reference": self.reference.ref,
            "current": self.current.ref,
            "report": self.html.ref,
            "report_json": self.json.ref,
            "path": str(self.path),
            "seconds": round(self.seconds, 4),
            **self.result.to_dict(),
        }
        sides = {side.column: side for side in self.sides}
        for column in out["columns"]:
            side = sides.get(column["column"])
            if side is not None:
                column.update(side.to_dict())
        out["changes"] = [change.to_dict() for change in self.changes]
        return out

    def side(self, column: str) -> ColumnSides | None:
        """What the report shows of ``column`` besides its test (None: not in both versions)."""
        return next((side for side in self.sides if side.column == column), None)


class MonitorService:
    """Profiles, drift and drift reports of datasets, and the watcher. Reached as
    ``k.monitor``."""

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

    @exempt("the project's drift settings, from the configuration only")
    def drift_options(self) -> DriftOptions:
        """``[monitor.drift]`` of mlkernel.toml (methods, thresholds, per-column overrides)."""
        from mlkernel.monitor.drift import DriftOptions
        from mlkernel.monitor.settings import MonitorSettings

        settings = MonitorSettings.from_sections(self._ctx.config.sections)
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
        try:
            profiles = self._catalog.versions(f"profile:{dataset.name}")
        except NotFoundError:  # this dataset was never profiled
            return None
        for record in profiles[::-1]:
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
        with self._runs.start(run_name, type_="profile", inputs=[dataset.ref]) as run:
            profile = build_profile(_stream(self._data.ipc_path(dataset)))
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
        return self._load_profile(self.profile_record(ref, force=force))

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
        from mlkernel.monitor.report import build_report, report_changes

        started = time.perf_counter()
        ref_ds, cur_ds = self._dataset(reference), self._dataset(current)
        ref_prof, cur_prof = self.profile_record(ref_ds), self.profile_record(cur_ds)
        ref_p, cur_p = self._load_profile(ref_prof), self._load_profile(cur_prof)
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
        with self._runs.start(run_name, type_="drift", inputs=inputs) as run:
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
            folder = self._ctx.state_dir / "reports"
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
            tuple(ColumnSides.from_report(c) for c in document["columns"]),
            tuple(report_changes(document)),
        )

    # -- the watcher -----------------------------------------------------------------

    @operation("monitor.watch", Action.WRITE, cli="data watch")
    def watcher(
        self,
        specs: list[WatchSpec] | None = None,
        *,
        poll: float = 1.0,
        offpeak: OffPeak | None = None,
        summary_every: float | None = None,
        notify: Callable[[WatchEvent], None] | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> Watcher:
        """A watcher of the ``[[watch]]`` globs (or ``specs``): it ingests new files, then
        profiles and compares each new version, acting for this actor."""
        from mlkernel.monitor.watch import Watcher

        return Watcher(
            self._ctx,
            monitor=self,
            data=self._data,
            runs=self._runs,
            catalog=self._catalog,
            artifacts=self._artifacts,
            specs=specs,
            poll=poll,
            offpeak=offpeak,
            summary_every=summary_every,
            notify=notify,
            clock=clock,
        )

    # -- helpers ---------------------------------------------------------------------

    def _dataset(self, ref: str | ArtifactRecord) -> ArtifactRecord:
        # The data service refuses, in one line, a ref that is no ingested dataset.
        return self._data.resolve(ref)

    def _load_profile(self, record: ArtifactRecord) -> DatasetProfile:
        from mlkernel.monitor.profile import DatasetProfile

        return DatasetProfile.from_json(self._artifacts.load(record))


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

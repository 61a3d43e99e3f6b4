"""The dataset watcher: notice new files, ingest, profile, compare, report.

``mlk data watch`` runs :meth:`Watcher.run` in the foreground; the daemon will host the
same object later. Each ``[[watch]]`` entry of mlkernel.toml names a glob (relative to
the project) and the dataset its files become versions of::

    [[watch]]
    path = "incoming/*.csv"
    dataset = "train"
    baseline = "dataset:train@1"     # optional: also compare every version with this one
    debounce = 2.0                   # fallback: seconds a file must stay unchanged
    quarantine = "incoming/failed"   # optional: where files that cannot be ingested go

    [sched]
    offpeak = "22:00-06:00"          # optional: profile and compare only in this window

    [monitor]
    summary_every = 86400            # seconds between summaries (default: daily)

Whether now is off-peak is the scheduler's answer (:meth:`PolicyConfig.is_offpeak`);
the older ``[monitor] offpeak`` still sets the same window.

A file is read once its writer is done with it: inotify's close-after-write or
rename-into-the-folder, no process holding it open for writing, and, for files no event
was seen for, size and modification time unchanged for ``debounce`` seconds (see
:mod:`mlkernel.monitor._fsevents`). What the watcher did with each file is a row of
``watched_file`` in the metadata, so a restart does only what is new; a file that fails
is recorded (and quarantined if configured) and the watcher goes on. Each processed
version leaves a ``watch`` execution in the metadata (input: the new version; outputs:
its drift reports; metrics: drift found), which is what triggers fire from.

A watcher is built by ``k.monitor.watcher(...)`` (:meth:`MonitorService.watcher`) from the
project's context and the services it calls; it never sees the Kernel.
"""

from __future__ import annotations

import glob
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.errors import ConfigError, MLKernelError, NotFoundError
from mlkernel.monitor.settings import MonitorSettings
from mlkernel.sched.policy import OffPeak, PolicyConfig

if TYPE_CHECKING:
    from mlkernel.artifacts.catalog import CatalogService
    from mlkernel.artifacts.service import ArtifactService
    from mlkernel.context import Context
    from mlkernel.data.service import DataService
    from mlkernel.meta.records import ArtifactRecord
    from mlkernel.meta.watch import WatchedFile
    from mlkernel.monitor.service import MonitorService
    from mlkernel.tracking.service import RunService

__all__ = [
    "Comparison",
    "OffPeak",
    "WatchEvent",
    "WatchSpec",
    "WatchSummary",
    "Watcher",
    "describe_comparison",
    "load_specs",
]


@dataclass(frozen=True, slots=True)
class WatchSpec:
    path: str
    dataset: str
    baseline: str | None = None
    debounce: float = 2.0
    quarantine: str | None = None  # a folder (relative to the project) for files that fail


_SPEC_KEYS: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "dataset": str,
    "baseline": str,
    "debounce": (int, float),
    "quarantine": str,
}


def load_specs(sections: Mapping[str, Any], source: str = "mlkernel.toml") -> list[WatchSpec]:
    """Validate the ``[[watch]]`` entries of the config."""
    from mlkernel.refs import validate_name

    entries = sections.get("watch", [])
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: [[watch]] must be an array of tables")
    specs = []
    for i, entry in enumerate(entries):
        where = f"{source}: watch[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with path and dataset")
        for key, value in entry.items():
            expected = _SPEC_KEYS.get(key)
            if expected is None:
                raise ConfigError(
                    f"{where}: unknown key '{key}'; accepted: {', '.join(_SPEC_KEYS)}"
                )
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' has the wrong type ({value!r})")
        for key in ("path", "dataset"):
            if key not in entry:
                raise ConfigError(f"{where}: missing '{key}'")
        try:
            validate_name(entry["dataset"], "watch.dataset")
        except Exception as exc:
            raise ConfigError(f"{where}: {exc}") from None
        specs.append(WatchSpec(**entry))
    return specs


@dataclass(frozen=True, slots=True)
class Comparison:
    """One drift report the watcher made for a new version: against which version, where
    the report is, and what it found."""

    against: str  # the reference version, e.g. dataset:train@1
    report: str  # the HTML report's reference
    path: str  # the HTML page as a file
    dataset_drift: bool
    drifted: tuple[str, ...]  # the drifted columns
    columns: int  # the columns tested
    drift_share: float  # the share of drifted columns that makes the dataset drift
    changes: tuple[str, ...] = ()  # the other changes the report lists, one line each

    def to_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "report": self.report,
            "path": self.path,
            "dataset_drift": self.dataset_drift,
            "drifted": list(self.drifted),
            "columns": self.columns,
            "drift_share": self.drift_share,
            "changes": list(self.changes),
        }


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What the watcher did with one new file."""

    path: Path
    version: str | None
    created: bool
    reports: tuple[Comparison, ...] = ()
    error: str | None = None
    deferred: bool = False
    quarantined: Path | None = None
    notes: tuple[str, ...] = ()  # what the analysis left out, and why
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "version": self.version,
            "created": self.created,
            "reports": [r.to_dict() for r in self.reports],
            "error": self.error,
            "deferred": self.deferred,
            "quarantined": None if self.quarantined is None else str(self.quarantined),
            "notes": list(self.notes),
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """Every change the watcher saw from ``since`` to ``until`` (epoch seconds)."""

    since: float
    until: float
    changes: tuple[WatchEvent, ...]

    @property
    def files(self) -> int:
        return len(self.changes)

    @property
    def new_versions(self) -> int:
        return sum(1 for e in self.changes if e.created)

    @property
    def drifted(self) -> int:
        """Files whose new version drifted against at least one version it was compared with."""
        return sum(1 for e in self.changes if any(r.dataset_drift for r in e.reports))

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "files": self.files,
            "new_versions": self.new_versions,
            "drifted": self.drifted,
            "changes": [e.to_dict() for e in self.changes],
        }


def describe_comparison(report: Comparison) -> str:
    """One line for one comparison: the dataset verdict, then the drifted columns.

    A column can drift while the dataset does not (fewer than ``drift_share`` of the
    columns drifted); the line says both, never "no drift" next to a drifted column.
    """
    drifted, tested = report.drifted, report.columns
    names = f": {', '.join(drifted)}" if drifted else ""
    if report.dataset_drift:
        return f"DRIFT: {len(drifted)} of {tested} columns drifted{names}"
    if drifted:
        share = report.drift_share
        below = f" (below the share {share:g} that makes the dataset drift)" if share else ""
        return f"no dataset drift, but {len(drifted)} of {tested} columns drifted{names}{below}"
    return f"no drift in any of the {tested} columns tested" if tested else "no drift"


class Watcher:
    """Listens for (inotify) and polls for new files of the ``[[watch]]`` globs.

    What it did with each file is kept in the metadata (``watched_file``: path, size,
    modification time, digest, version, state), so a restarted watcher, or another one
    on the same project, does only what is new.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        monitor: MonitorService,
        data: DataService,
        runs: RunService,
        catalog: CatalogService,
        artifacts: ArtifactService,
        specs: list[WatchSpec] | None = None,
        poll: float = 1.0,
        offpeak: OffPeak | None = None,
        summary_every: float | None = None,
        notify: Callable[[WatchEvent], None] | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        from mlkernel.monitor._fsevents import FileNotes
        from mlkernel.sched.settings import offpeak_text

        self._ctx = ctx
        self._root = ctx.root
        self._monitor = monitor
        self._data = data
        self._runs = runs
        self._catalog = catalog
        self._artifacts = artifacts
        sections = ctx.config.sections
        self.specs = specs if specs is not None else load_specs(sections)
        # Off-peak is the scheduler's notion: the watcher asks its policy (see _in_window).
        text = offpeak_text(sections)
        if offpeak is None and text:
            offpeak = OffPeak.parse(text)
        self.policy = replace(PolicyConfig.from_dict(sections.get("sched")), offpeak=offpeak)
        settings = MonitorSettings.from_sections(sections)
        self.summary_every = float(summary_every or settings.summary_every)
        self.poll = poll
        self._notify = notify or (lambda _event: None)
        self._clock = clock
        self._memory: dict[str, WatchedFile] = ctx.meta.watched_files()
        self._pending: dict[Path, tuple[int, int, float]] = {}  # (size, mtime, since)
        self._deferred: list[tuple[WatchSpec, ArtifactRecord]] = []
        self.events: list[WatchEvent] = []
        self._last_summary = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._notes = FileNotes(self._wake)
        self._check_baselines()
        self._resume()

    def _check_baselines(self) -> None:
        """Refuse, before any file is read, a baseline that does not exist and never will.

        A baseline that is a later version (or an alias) of the watched dataset itself may
        appear once files arrive; until then each analysis leaves it out with a note.
        """
        from mlkernel.refs import parse_ref

        for i, spec in enumerate(self.specs):
            if not spec.baseline:
                continue
            where = f"mlkernel.toml: watch[{i}] baseline '{spec.baseline}'"
            try:
                ref = parse_ref(spec.baseline)
            except MLKernelError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if ref.kind not in (None, "dataset"):
                raise ConfigError(
                    f"{where} is not a dataset version; write e.g. "
                    f'baseline = "dataset:{spec.dataset}@1"'
                )
            try:
                self._catalog.resolve(spec.baseline, kind="dataset")
                continue
            except NotFoundError:
                pass
            if ref.name == spec.dataset:
                numbers = [v.version for v in self._versions(ref.name)]
                if ref.version is None or ref.version > max(numbers, default=0):
                    continue  # a version still to come: left out of the analyses until it is
            raise ConfigError(
                f"{where} does not exist; fix the baseline of watch[{i}] in mlkernel.toml "
                f"(`mlk ls dataset` lists the datasets) or add that version first"
            )

    def _versions(self, dataset: str) -> list[ArtifactRecord]:
        """Every version of ``dataset``, oldest first; none before its first file."""
        try:
            return self._catalog.versions(f"dataset:{dataset}")
        except NotFoundError:
            return []

    def _resume(self) -> None:
        """Queue the analyses a previous watcher left undone (off-peak wait, or a stop).

        An analysis that failed was reported and recorded (the row's error): it is not
        redone on every start; `mlk data drift` runs it by hand once the cause is fixed.
        """
        by_dataset = {spec.dataset: spec for spec in self.specs}
        for row in self._ctx.meta.unanalysed_watched_files():
            spec = by_dataset.get(row.dataset)
            if spec is None or row.artifact_id is None or row.error:
                continue
            try:
                record = self._catalog.get(row.artifact_id)
            except MLKernelError:
                continue  # the version was deleted since
            self._deferred.append((spec, record))

    # -- one pass --------------------------------------------------------------------

    def scan(self, now: float | None = None) -> list[WatchEvent]:
        """Look once at every glob; ingest and analyse files that are complete and new."""
        now = time.monotonic() if now is None else now
        done: list[WatchEvent] = []
        for spec in self.specs:
            pattern = str(self._root / spec.path)
            for name in sorted(glob.glob(pattern, recursive=True)):
                event = self._consider(spec, Path(name), now)
                if event is not None:
                    done.append(event)
        if self._deferred and self._in_window():
            deferred, self._deferred = self._deferred, []
            for spec, record in deferred:
                event = WatchEvent(Path(str(record.properties.get("source", ""))), record.ref, True)
                event = self._analyse_safely(spec, record, event)
                if event.error:
                    self._record_analysis_error(record, event.error)
                done.append(self._emit(event))
        return done

    def _key(self, path: Path) -> str:
        """The path as remembered: relative to the project, so a moved project still knows."""
        try:
            return path.relative_to(self._root).as_posix()
        except ValueError:
            return str(path)

    def _consider(self, spec: WatchSpec, path: Path, now: float) -> WatchEvent | None:
        try:
            st = path.stat()
        except OSError:
            return None  # gone since the glob, a broken link or a link loop: nothing to read
        if not stat.S_ISREG(st.st_mode):
            return None  # a directory (or a device) matching the glob
        size, mtime = st.st_size, st.st_mtime_ns / 1e9
        known = self._memory.get(self._key(path))
        if known is not None and known.size == size and known.mtime == mtime:
            unreadable_before = known.state == "failed" and not known.digest
            if not (unreadable_before and os.access(path, os.R_OK)):
                self._pending.pop(path, None)
                return None  # handled before (a file that could not be read is retried)
        if not self._complete(spec, path, (size, st.st_mtime_ns), now):
            return None
        self._pending.pop(path, None)
        self._notes.forget(path)
        return self._process(spec, path, size, mtime, known)

    def _complete(self, spec: WatchSpec, path: Path, key: tuple[int, int], now: float) -> bool:
        """Whether the writer is done with ``path`` (see :mod:`mlkernel.monitor._fsevents`)."""
        from mlkernel.monitor._fsevents import COMPLETE, WRITING, open_for_writing

        note = self._notes.get(path) if self._notes.active else None
        if note == COMPLETE:  # closed after writing, or renamed into the folder
            return open_for_writing(path) is not True
        pending = self._pending.get(path)
        if pending is None or pending[:2] != key:
            self._pending[path] = (*key, now)  # new or still changing: wait
            return False
        if now - pending[2] < spec.debounce:
            return False
        writer = open_for_writing(path)
        if writer is True:
            return False  # stable, but some process still holds it open for writing
        # inotify saw writes and no close, and a writer could hide among processes we
        # cannot inspect: wait for the close rather than read a paused writer's half file
        return not (note == WRITING and writer is None)

    @property
    def offpeak(self) -> OffPeak | None:
        return self.policy.offpeak

    def _in_window(self) -> bool:
        return self.policy.is_offpeak(self._clock())

    def _process(
        self, spec: WatchSpec, path: Path, size: int, mtime: float, known: WatchedFile | None
    ) -> WatchEvent | None:
        from mlkernel.digest import of_file

        key = self._key(path)
        try:
            digest = of_file(path)
        except FileNotFoundError:
            return None  # removed between the event and the read: nothing to do
        except OSError as exc:
            return self._failed(spec, path, size, mtime, "", f"cannot be read ({_os_error(exc)})")
        same = known is not None and known.digest == digest
        if same and known is not None and known.state == "failed" and spec.quarantine:
            # the same bad bytes again (a new file, same name): they go where bad files go
            error = (known.error or "failed").split(" (moved to ")[0]
            return self._failed(spec, path, size, mtime, digest, error)
        if same and known is not None:
            # the same bytes as when it was handled (touched, copied over): nothing new,
            # and a file that failed stays failed until its content changes
            self._remember(
                known.path,
                size=size,
                mtime=mtime,
                digest=digest,
                dataset=known.dataset,
                state=known.state,
                artifact_id=known.artifact_id,
                error=known.error,
            )
            return None
        try:
            result = self._data.add(path, name=spec.dataset, progress=False)
        except MLKernelError as exc:
            return self._failed(spec, path, size, mtime, digest, str(exc))
        except FileNotFoundError:
            if not path.exists():
                return None  # removed while it was read
            return self._failed(spec, path, size, mtime, digest, "a file it names is missing")
        except (OSError, ValueError, UnicodeError) as exc:  # a reader's own error on bad bytes
            return self._failed(spec, path, size, mtime, digest, _os_error(exc))
        except Exception as exc:  # any other failure too: one file must not stop every watch
            why = f"internal error ({type(exc).__name__}: {_os_error(exc)}); please report it"
            return self._failed(spec, path, size, mtime, digest, why)
        row = {
            "size": size,
            "mtime": mtime,
            "digest": digest,
            "dataset": spec.dataset,
            "state": "ingested" if result.created else "unchanged",
            "artifact_id": result.record.id,
        }
        self._remember(key, **row)
        event = WatchEvent(path, result.record.ref, result.created)
        if not result.created:
            return self._emit(event)  # identical content: nothing new to analyse
        if not self._in_window():
            self._deferred.append((spec, result.record))
            return self._emit(replace(event, deferred=True))
        event = self._analyse_safely(spec, result.record, event)
        if event.error:
            self._remember(key, **row, error=event.error)  # kept, so it is not redone
        return self._emit(event)

    def _record_analysis_error(self, record: ArtifactRecord, error: str) -> None:
        """Keep a deferred analysis's failure on its file's row, so it is not redone."""
        for row in list(self._memory.values()):
            if row.artifact_id == record.id and row.state == "ingested":
                self._remember(
                    row.path,
                    size=row.size,
                    mtime=row.mtime,
                    digest=row.digest,
                    dataset=row.dataset,
                    state=row.state,
                    artifact_id=row.artifact_id,
                    error=error,
                )

    def _remember(self, path: str, **values: Any) -> None:
        self._memory[path] = self._ctx.meta.record_watched_file(path, **values)

    def _failed(
        self, spec: WatchSpec, path: Path, size: int, mtime: float, digest: str, error: str
    ) -> WatchEvent:
        """Report, record and (if configured) quarantine a file that cannot be ingested."""
        moved: Path | None = None
        if spec.quarantine:
            moved = self._quarantine(path, spec.quarantine)
        note = f" (moved to {self._key(moved)})" if moved is not None else ""
        values = {"size": size, "mtime": mtime, "digest": digest, "dataset": spec.dataset}
        self._remember(self._key(path), state="failed", error=error + note, **values)
        if moved is not None:  # so a quarantine inside the glob is not read again
            self._remember(self._key(moved), state="failed", error=error, **values)
        return self._emit(WatchEvent(path, None, False, error=error, quarantined=moved))

    def _quarantine(self, path: Path, folder: str) -> Path | None:
        target_dir = self._root / folder
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / path.name
            n = 1
            while target.exists():
                n += 1
                target = target_dir / f"{path.stem}-{n}{path.suffix}"
            os.replace(path, target)
        except OSError:
            return None  # it stays where it is, recorded as failed
        return target

    def _analyse_safely(
        self, spec: WatchSpec, record: ArtifactRecord, event: WatchEvent
    ) -> WatchEvent:
        """``event`` with what :meth:`_analyse` found, its failure reported instead of raised
        (with the comparisons and notes made before it)."""
        reports: list[Comparison] = []
        notes: list[str] = []
        error = None
        try:
            self._analyse(spec, record, reports, notes)
        except (MLKernelError, OSError, ValueError) as exc:
            error = f"ingested as {record.ref}, but the drift analysis failed: {exc}"
        return replace(event, reports=tuple(reports), notes=tuple(notes), error=error)

    def _analyse(
        self,
        spec: WatchSpec,
        record: ArtifactRecord,
        reports: list[Comparison],
        notes: list[str],
    ) -> None:
        """Profile the new version and compare it with the previous one and the baseline,
        appending to ``reports`` and ``notes`` as it goes."""
        from mlkernel.monitor.names import drift_run_name

        against: list[str] = []
        previous = [v for v in self._versions(record.name) if v.version < record.version]
        if previous:
            against.append(previous[-1].ref)
        missing_baseline = None
        if spec.baseline:
            try:
                base = self._catalog.resolve(spec.baseline, kind="dataset").ref
            except NotFoundError:  # a version still to come (checked at start)
                missing_baseline = spec.baseline
                notes.append(
                    f"baseline {spec.baseline} does not exist yet; "
                    "compared with the previous version only"
                )
            else:
                if base != record.ref and base not in against:
                    against.append(base)
        self._monitor.profile_record(record)
        run_name = drift_run_name("watch", record.name)
        with self._runs.start(run_name, type_="watch", inputs=[record.ref]) as run:
            drifted_any = False
            for reference in against:
                report = self._monitor.report(reference, record)
                self._ctx.meta.add_event(run.id, report.html.id, "out")
                result = report.result
                drifted_any = drifted_any or result.dataset_drift
                reports.append(
                    Comparison(
                        against=reference,
                        report=report.html.ref,
                        path=str(report.path),
                        dataset_drift=result.dataset_drift,
                        drifted=tuple(c.column for c in result.drifted),
                        columns=len(result.tested),
                        drift_share=result.drift_share,
                        changes=tuple(c.text for c in report.changes),
                    )
                )
            if missing_baseline is not None:
                run.log_params({"baseline_missing": missing_baseline})
            run.log_metrics({"dataset_drift": float(drifted_any), "comparisons": len(against)})

    def _emit(self, event: WatchEvent) -> WatchEvent:
        self.events.append(event)
        self._notify(event)
        return event

    # -- summaries -------------------------------------------------------------------

    def summary(self, since: float = 0.0) -> WatchSummary:
        """Every change since ``since`` (epoch seconds), with links to its reports."""
        changes = tuple(e for e in self.events if e.at >= since)
        return WatchSummary(since, time.time(), changes)

    def write_summary(self, since: float) -> ArtifactRecord:
        """Store :meth:`summary` as the next version of the ``watch-summary`` report."""
        import json

        summary = self.summary(since)
        return self._artifacts.log(
            json.dumps(summary.to_dict(), indent=2, default=str).encode(),
            kind="report",
            name="watch-summary",
            properties={"format": "json", "files": summary.files, "drifted": summary.drifted},
            dedupe=False,
        )

    # -- the loop --------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self, *, max_seconds: float | None = None) -> None:
        """Watch until :meth:`stop` (or Ctrl-C, or ``max_seconds``)."""
        observer = self._start_inotify()
        started = time.monotonic()
        summary_since = time.time()
        try:
            while not self._stop.is_set():
                self.scan()
                if time.monotonic() - self._last_summary >= self.summary_every:
                    self.write_summary(summary_since)
                    summary_since = time.time()
                    self._last_summary = time.monotonic()
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    break
                self._wake.wait(self.poll)
                self._wake.clear()
        finally:
            if observer is not None:
                import logging

                # watchdog logs an error when a read races the stop ("queue_events() called
                # when the thread is inactive"); with no logging set up Python printed it
                # to the user. Nothing is lost: the watcher is done with the observer.
                logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
                observer.stop()
                observer.join(timeout=5)

    def _start_inotify(self) -> Any:
        """Feed close and move events to the scans; None (fallback rule only) if impossible."""
        from mlkernel.monitor._fsevents import start_observer

        folders = set()
        for spec in self.specs:
            pattern = self._root / spec.path
            folder = pattern.parent
            while any(ch in str(folder) for ch in "*?["):
                folder = folder.parent
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        return start_observer(folders, self._notes)


def _os_error(exc: BaseException) -> str:
    """An OS or reader error as one line, e.g. 'Truncated compressed stream'."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

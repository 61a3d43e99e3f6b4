"""The dataset watcher: notice new files, ingest, profile, compare, report.

``mlk data watch`` runs :meth:`Watcher.run` in the foreground; the daemon will host the
same object later. Each ``[[watch]]`` entry of mlkernel.toml names a glob (relative to
the project) and the dataset its files become versions of::

    [[watch]]
    path = "incoming/*.csv"
    dataset = "train"
    baseline = "dataset:train@1"     # optional: also compare every version with this one
    debounce = 2.0                   # seconds a file must stay unchanged before ingest

    [monitor]
    offpeak = "22:00-06:00"          # optional: profile and compare only in this window
    summary_every = 86400            # seconds between summaries (default: daily)

Change notification comes from inotify through watchdog when it is installed and works,
and from polling (``poll`` seconds) otherwise; either way a file is ingested only once its
size and modification time have stayed the same for ``debounce`` seconds, so a
half-written file is never read. Each processed version leaves a ``watch`` execution in
the metadata (input: the new version; outputs: its drift reports; metrics: drift found),
which is what triggers fire from.
"""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkernel.errors import ConfigError

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel
    from mlkernel.meta.records import ArtifactRecord

__all__ = ["OffPeak", "WatchEvent", "WatchSpec", "Watcher", "load_specs"]

DEFAULT_SUMMARY_EVERY = 86_400.0


@dataclass(frozen=True, slots=True)
class WatchSpec:
    path: str
    dataset: str
    baseline: str | None = None
    debounce: float = 2.0


@dataclass(frozen=True, slots=True)
class OffPeak:
    """A daily window ``HH:MM-HH:MM``; it may wrap midnight."""

    start: int  # minutes after midnight
    end: int

    @classmethod
    def parse(cls, text: str) -> OffPeak:
        try:
            a, b = text.split("-")
            return cls(_minutes(a), _minutes(b))
        except ValueError:
            raise ConfigError(
                f'monitor.offpeak is {text!r}; write a daily window like "22:00-06:00"'
            ) from None

    def contains(self, when: datetime) -> bool:
        now = when.hour * 60 + when.minute
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


_SPEC_KEYS: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "dataset": str,
    "baseline": str,
    "debounce": (int, float),
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


@dataclass(slots=True)
class WatchEvent:
    """What the watcher did with one new file."""

    path: Path
    version: str | None
    created: bool
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    deferred: bool = False
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "version": self.version,
            "created": self.created,
            "reports": self.reports,
            "error": self.error,
            "deferred": self.deferred,
            "at": self.at,
        }


class Watcher:
    """Polls (and, with watchdog, listens for) new files of the ``[[watch]]`` globs."""

    def __init__(
        self,
        kernel: Kernel,
        specs: list[WatchSpec] | None = None,
        *,
        poll: float = 1.0,
        offpeak: OffPeak | None = None,
        summary_every: float | None = None,
        notify: Callable[[WatchEvent], None] | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._kernel = kernel
        sections = kernel.config.sections
        self.specs = specs if specs is not None else load_specs(sections)
        monitor = sections.get("monitor", {})
        if offpeak is None and monitor.get("offpeak"):
            offpeak = OffPeak.parse(str(monitor["offpeak"]))
        self.offpeak = offpeak
        self.summary_every = float(
            summary_every or monitor.get("summary_every", DEFAULT_SUMMARY_EVERY)
        )
        self.poll = poll
        self._notify = notify or (lambda _event: None)
        self._clock = clock
        self._seen: dict[Path, tuple[int, int]] = {}  # stat when last processed
        self._pending: dict[Path, tuple[int, int, float]] = {}  # (size, mtime, since)
        self._deferred: list[tuple[WatchSpec, ArtifactRecord]] = []
        self.events: list[WatchEvent] = []
        self._last_summary = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()

    # -- one pass --------------------------------------------------------------------

    def scan(self, now: float | None = None) -> list[WatchEvent]:
        """Look once at every glob; ingest and analyse files that have become stable."""
        now = time.monotonic() if now is None else now
        done: list[WatchEvent] = []
        for spec in self.specs:
            pattern = str(self._kernel.root / spec.path)
            for name in sorted(glob.glob(pattern, recursive=True)):
                path = Path(name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if not path.is_file():
                    continue
                key = (st.st_size, st.st_mtime_ns)
                if self._seen.get(path) == key:
                    continue
                pending = self._pending.get(path)
                if pending is None or pending[:2] != key:
                    self._pending[path] = (*key, now)  # new or still changing: wait
                    continue
                if now - pending[2] < spec.debounce:
                    continue
                del self._pending[path]
                self._seen[path] = key
                done.append(self._process(spec, path))
        if self._deferred and self._in_window():
            deferred, self._deferred = self._deferred, []
            for spec, record in deferred:
                event = WatchEvent(Path(str(record.properties.get("source", ""))), record.ref, True)
                self._analyse(spec, record, event)
                done.append(self._emit(event))
        return done

    def _in_window(self) -> bool:
        return self.offpeak is None or self.offpeak.contains(self._clock())

    def _process(self, spec: WatchSpec, path: Path) -> WatchEvent:
        from mlkernel.errors import MLKernelError

        try:
            result = self._kernel.data.add(path, name=spec.dataset, progress=False)
        except MLKernelError as exc:
            return self._emit(WatchEvent(path, None, False, error=str(exc)))
        event = WatchEvent(path, result.record.ref, result.created)
        if not result.created:
            return self._emit(event)  # identical content: nothing new to analyse
        if not self._in_window():
            event.deferred = True
            self._deferred.append((spec, result.record))
            return self._emit(event)
        self._analyse(spec, result.record, event)
        return self._emit(event)

    def _analyse(self, spec: WatchSpec, record: ArtifactRecord, event: WatchEvent) -> None:
        """Profile the new version and compare it with the previous one and the baseline."""
        kernel = self._kernel
        against: list[str] = []
        previous = [
            v for v in kernel.table.versions("dataset", record.name) if v.version < record.version
        ]
        if previous:
            against.append(previous[-1].ref)
        if spec.baseline:
            base = kernel.resolve(spec.baseline, kind="dataset").ref
            if base != record.ref and base not in against:
                against.append(base)
        kernel.monitor.profile_record(record)
        with kernel.start_run(f"watch-{record.name}", type_="watch", inputs=[record.ref]) as run:
            drifted_any = False
            for reference in against:
                report = kernel.monitor.report(reference, record)
                kernel.meta.add_event(run.id, report.html.id, "out")
                drifted_any = drifted_any or report.result.dataset_drift
                event.reports.append(
                    {
                        "against": reference,
                        "report": report.html.ref,
                        "path": str(report.path),
                        "dataset_drift": report.result.dataset_drift,
                        "drifted": [c.column for c in report.result.drifted],
                    }
                )
            run.log_metrics({"dataset_drift": float(drifted_any), "comparisons": len(against)})

    def _emit(self, event: WatchEvent) -> WatchEvent:
        self.events.append(event)
        self._notify(event)
        return event

    # -- summaries -------------------------------------------------------------------

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        """Every change since ``since`` (epoch seconds), with links to its reports."""
        changes = [e.to_dict() for e in self.events if e.at >= since]
        return {
            "since": since,
            "until": time.time(),
            "files": len(changes),
            "new_versions": sum(1 for c in changes if c["created"]),
            "drifted": sum(1 for c in changes if any(r["dataset_drift"] for r in c["reports"])),
            "changes": changes,
        }

    def write_summary(self, since: float) -> ArtifactRecord:
        import json

        doc = self.summary(since)
        return self._kernel.log_artifact(
            json.dumps(doc, indent=2, default=str).encode(),
            kind="report",
            name="watch-summary",
            properties={"format": "json", "files": doc["files"], "drifted": doc["drifted"]},
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
                observer.stop()
                observer.join(timeout=5)

    def _start_inotify(self) -> Any:
        """Wake the loop on file events; None (polling only) if watchdog cannot run."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return None

        wake = self._wake

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake.set()

        observer = Observer()
        folders = set()
        for spec in self.specs:
            pattern = self._kernel.root / spec.path
            folder = pattern.parent
            while any(ch in str(folder) for ch in "*?["):
                folder = folder.parent
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        try:
            for folder in folders:
                observer.schedule(_Handler(), str(folder), recursive=True)
            observer.start()
        except OSError:
            return None  # e.g. inotify watches exhausted: polling still works
        return observer

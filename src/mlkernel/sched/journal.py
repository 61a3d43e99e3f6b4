"""The change journal: every knob mlkernel turns is written down *before* it is turned.

The journal is an append-only file of JSON lines in the runtime directory. A ``set`` line
holds the target, the knob, the original value and the value mlkernel sets, plus the
target's identity (a process start time) so that a change is never replayed onto a new
process that reuses a pid. A ``done`` line closes a ``set`` once it has been restored or
found moot. Each line is flushed and fsynced before the change is made, so after a crash
(``kill -9`` of the controller, a power cut) the next start knows exactly what to undo.

Restoring follows GameMode's rule (daemon/gamemode-sched.c): the original value is put
back only where the current value is still the one mlkernel set; a value someone else has
changed since is left alone. Changes are undone newest first, so a knob changed twice (the
policy, then ML mode) unwinds through its history to the first original.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlkernel.fsutil import fsync_dir
from mlkernel.sched import knobs

__all__ = [
    "Applier",
    "Change",
    "Journal",
    "RestoreResult",
    "default_runtime_dir",
    "default_state_dir",
    "state_dir_for",
]

JOURNAL_NAME = "journal.jsonl"


def default_runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/mlkernel``, else ``/run/mlkernel`` when writable, else a temp dir."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.access(xdg, os.W_OK):
        return Path(xdg) / "mlkernel"
    if os.access("/run", os.W_OK):
        return Path("/run/mlkernel")
    return Path(tempfile.gettempdir()) / f"mlkernel-{os.getuid()}"


def default_state_dir() -> Path:
    """Where the machine's controller keeps what must survive a reboot (the load history):
    ``/var/lib/mlkernel`` as root, else ``$XDG_STATE_HOME/mlkernel`` (``~/.local/state``)."""
    if os.geteuid() == 0 or os.access("/var/lib", os.W_OK):
        return Path("/var/lib/mlkernel")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "mlkernel"


def state_dir_for(runtime_dir: Path | None) -> Path:
    """The state directory of the controller serving ``runtime_dir``: the machine's
    (:func:`default_state_dir`) for the default runtime directory; the runtime directory
    itself for any other (a test's or a benchmark's private controller)."""
    if runtime_dir is None or Path(runtime_dir).resolve() == default_runtime_dir().resolve():
        return default_state_dir()
    return Path(runtime_dir)


@dataclass(frozen=True)
class Change:
    """One knob turned: ``knob`` of ``target`` went from ``old`` to ``new``."""

    seq: int
    claim: str
    target: str
    knob: str
    old: str
    new: str
    ident: str | None = None


@dataclass
class RestoreResult:
    restored: list[Change] = field(default_factory=list)
    gone: list[Change] = field(default_factory=list)
    changed_since: list[Change] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)

    def merge(self, other: RestoreResult) -> None:
        self.restored += other.restored
        self.gone += other.gone
        self.changed_since += other.changed_since
        self.failed += other.failed


class Journal:
    """The append-only, fsynced record of changes in ``directory``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else default_runtime_dir()
        self.path = self.directory / JOURNAL_NAME
        self._lock = threading.Lock()
        self._pending: dict[int, Change] = {}
        self._next = 1
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash mid-write: that change never happened
                seq = int(rec["seq"])
                self._next = max(self._next, seq + 1)
                if rec.get("op") == "done":
                    self._pending.pop(seq, None)
                else:
                    self._pending[seq] = Change(
                        seq,
                        rec["claim"],
                        rec["target"],
                        rec["knob"],
                        rec["old"],
                        rec["new"],
                        rec.get("ident"),
                    )

    def _append(self, rec: dict[str, object]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        data = (json.dumps(rec, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def record(
        self, claim: str, target: str, knob: str, old: str, new: str, ident: str | None
    ) -> Change:
        with self._lock:
            change = Change(self._next, claim, target, knob, old, new, ident)
            self._append({"op": "set", **asdict(change)})
            self._next += 1
            self._pending[change.seq] = change
            return change

    def done(self, change: Change) -> None:
        with self._lock:
            self._append({"op": "done", "seq": change.seq})
            self._pending.pop(change.seq, None)

    def pending(self, claim: str | None = None) -> list[Change]:
        """Open changes, oldest first; only ``claim``'s when given."""
        with self._lock:
            out = [c for _, c in sorted(self._pending.items())]
        return [c for c in out if claim is None or c.claim == claim]

    def compact(self) -> None:
        """Rewrite the file with only the open changes (temp file, fsync, rename)."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".journal-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    for _, c in sorted(self._pending.items()):
                        f.write(json.dumps({"op": "set", **asdict(c)}, sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            fsync_dir(self.directory)


Reader = Callable[[str, str], str]
Writer = Callable[[str, str, str], None]


class Applier:
    """Turns knobs through the journal: record first, then write; restore by the rule above."""

    def __init__(
        self, journal: Journal, read: Reader = knobs.read, write: Writer = knobs.write
    ) -> None:
        self.journal = journal
        self._read = read
        self._write = write
        self._lock = threading.RLock()

    def set(self, claim: str, target: str, knob: str, value: str) -> Change | None:
        """Set ``knob`` of ``target`` to ``value``; None when it already had that value.

        Raises OSError (or ProcessLookupError) when the kernel refuses; the journal then
        holds no open record of the change.
        """
        with self._lock:
            ident = knobs.identity(target)
            if ident is None:
                raise ProcessLookupError(f"{target} is gone")
            old = self._read(target, knob)
            if old == value:
                return None
            change = self.journal.record(claim, target, knob, old, value, ident)
            try:
                self._write(target, knob, value)
            except BaseException:
                self.journal.done(change)
                raise
            return change

    def restore(self, claim: str | None = None, prefix: str | None = None) -> RestoreResult:
        """Undo open changes, newest first: of ``claim``, of claims starting with ``prefix``,
        or all."""
        result = RestoreResult()
        with self._lock:
            for change in reversed(self.journal.pending(claim)):
                if prefix is not None and not change.claim.startswith(prefix):
                    continue
                self._restore_one(change, result)
        return result

    def _restore_one(self, change: Change, result: RestoreResult) -> None:
        try:
            if knobs.identity(change.target) != change.ident:
                result.gone.append(change)
            else:
                current = self._read(change.target, change.knob)
                if current == change.new:
                    self._write(change.target, change.knob, change.old)
                    result.restored.append(change)
                else:
                    result.changed_since.append(change)
        except (ProcessLookupError, FileNotFoundError):
            result.gone.append(change)
        except OSError as exc:
            # The knob cannot be put back (e.g. the old cgroup was removed); keep going so
            # one failure does not leave everything else changed.
            result.failed.append((change, str(exc)))
        self.journal.done(change)

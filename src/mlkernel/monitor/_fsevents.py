"""When is a file in a watched folder complete? What the OS says, then a fallback.

1. inotify (through watchdog's inotify observer, Linux): ``IN_CLOSE_WRITE`` (the writer
   closed it) and ``IN_MOVED_TO`` (it was renamed into the folder) mark a file complete;
   ``IN_CREATE`` and ``IN_MODIFY`` mark it as being written. A file being written waits
   for its close, however long the writer pauses.
2. ``/proc/*/fd``: a file that some process holds open for writing is not complete,
   whatever inotify said (a writer that closes and reopens) and whatever its age.
   Only processes this user may inspect are visible (all of them for root);
   :func:`open_for_writing` says when it could not see them all.
3. The fallback, for files no event was seen for (present when the watcher started, on a
   network file system that sends no events, or with no inotify at all): size and
   modification time unchanged for ``debounce`` seconds.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["FileNotes", "open_for_writing", "start_observer"]

WRITING = "writing"
COMPLETE = "complete"


class FileNotes:
    """What inotify last said about each file (thread-safe: the observer writes, scans read)."""

    def __init__(self, wake: threading.Event) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, str] = {}
        self._wake = wake
        self.active = False  # True once an inotify observer feeds these notes

    def note(self, path: str, state: str | None) -> None:
        with self._lock:
            if state is None:
                self._state.pop(path, None)
            else:
                self._state[path] = state
        self._wake.set()

    def get(self, path: Path) -> str | None:
        with self._lock:
            return self._state.get(str(path))

    def forget(self, path: Path) -> None:
        with self._lock:
            self._state.pop(str(path), None)


def _flags(pid: str, fd: str) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
            for line in handle:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_for_writing(path: Path) -> bool | None:
    """True if a process has ``path`` open for writing, False if none, None if unknown.

    Unknown: no ``/proc``, or some processes' descriptors could not be read (another
    user's, without root). One pass over ``/proc/*/fd``: a few milliseconds on a desktop,
    and only done for a file about to be ingested.
    """
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    try:
        target = os.path.realpath(path)
    except OSError:
        return None
    complete = True
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except FileNotFoundError:
            continue  # the process ended
        except OSError:
            complete = False
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") != target:
                    continue
            except OSError:
                continue
            flags = _flags(entry.name, fd)
            if flags is None or flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                return True
    return False if complete else None


def start_observer(folders: set[Path], notes: FileNotes) -> Any:
    """An inotify observer feeding ``notes`` (None if inotify cannot run here)."""
    try:
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux, or no watchdog: the fallback rule alone
        return None

    def text(value: str | bytes) -> str:
        return os.fsdecode(value)

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if isinstance(event, FileMovedEvent):
                if event.src_path:
                    notes.note(text(event.src_path), None)
                if event.dest_path:  # renamed into the folder: complete
                    notes.note(text(event.dest_path), COMPLETE)
            elif isinstance(event, FileClosedEvent):  # IN_CLOSE_WRITE
                notes.note(text(event.src_path), COMPLETE)
            elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
                notes.note(text(event.src_path), WRITING)
            elif isinstance(event, FileDeletedEvent):
                notes.note(text(event.src_path), None)

    try:
        # full events: a file moved in from outside the folder is a move, not a creation
        observer = InotifyObserver(generate_full_events=True)
        for folder in folders:
            observer.schedule(_Handler(), str(folder), recursive=True)
        observer.start()
    except OSError:
        return None  # e.g. inotify watches exhausted: the fallback rule still works
    notes.active = True
    return observer

"""Exit notification through pidfds: a claim ends the moment its process dies.

``os.pidfd_open`` gives a descriptor that becomes readable when the process exits, with
no polling interval and no pid-reuse race (GameMode polls ``kill(pid, 0)`` every 10 s).
One thread polls every watched pidfd plus a pipe used to wake it when the set changes.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

__all__ = ["ExitWatcher"]

log = logging.getLogger(__name__)


class ExitWatcher:
    def __init__(self, on_exit: Callable[[int], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}  # fd -> pid
        self._rpipe, self._wpipe = os.pipe()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="mlk-exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Start watching ``pid``; raises ProcessLookupError when it is already gone."""
        fd = os.pidfd_open(pid)
        with self._lock:
            if pid in self._fds.values():
                os.close(fd)
                return
            self._fds[fd] = pid
        os.write(self._wpipe, b"w")

    def unwatch(self, pid: int) -> None:
        with self._lock:
            for fd, p in list(self._fds.items()):
                if p == pid:
                    del self._fds[fd]
                    os.close(fd)
        os.write(self._wpipe, b"w")

    def close(self) -> None:
        self._stop = True
        os.write(self._wpipe, b"x")
        self._thread.join(timeout=5)
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
        os.close(self._rpipe)
        os.close(self._wpipe)

    def _run(self) -> None:
        while not self._stop:
            poller = select.poll()
            poller.register(self._rpipe, select.POLLIN)
            with self._lock:
                for fd in self._fds:
                    poller.register(fd, select.POLLIN)
            events = poller.poll()
            for fd, _ in events:
                if fd == self._rpipe:
                    os.read(self._rpipe, 4096)
                    continue
                with self._lock:
                    pid = self._fds.pop(fd, None)
                    if pid is not None:
                        os.close(fd)
                if pid is not None:
                    try:
                        self._on_exit(pid)
                    except Exception:
                        # Keep watching the others, but never hide why a claim did not end.
                        log.exception("exit callback for process %d failed", pid)

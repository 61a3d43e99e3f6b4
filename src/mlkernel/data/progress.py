"""Ingest feedback: a progress bar with rows/s that appears once an ingest passes a second.

Readers call :meth:`Meter.advance` from Arrow's I/O thread with bytes read; the bar is
drawn by rich on stderr, and only after :data:`DELAY` seconds, so quick ingests print
nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DELAY", "Meter"]

DELAY = 1.0


class Meter:
    """Bytes and rows read so far; draws a bar when ``show`` and the ingest is slow."""

    def __init__(
        self,
        total_bytes: int,
        *,
        show: bool = True,
        callback: Callable[[int, int], None] | None = None,
        label: str = "ingesting",
    ) -> None:
        self.total = total_bytes
        self.bytes = 0
        self.rows = 0
        self._show = show
        self._callback = callback
        self._label = label
        self._start = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def advance(self, nbytes: int, lines: int = 0) -> None:
        with self._lock:
            self.bytes += nbytes
            self.rows += lines
            if self._callback is not None:
                self._callback(self.bytes, self.total)
            if not self._show:
                return
            elapsed = time.monotonic() - self._start
            if self._bar is None and elapsed >= DELAY:
                self._open()
            if self._bar is not None:
                rate = self.rows / elapsed if elapsed > 0 else 0.0
                self._bar.update(self._task, completed=self.bytes, rate=f"{rate:,.0f} rows/s")

    def stage(self, text: str) -> None:
        """Name the phase after parsing (writing, hashing), shown on the bar if it is up."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(self._task, description=text)

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=self.total or None, rate="")

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

"""Output for people (rich tables and trees) and for scripts (``--json``)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "emit_json", "esc", "fit_table", "human_bytes", "human_time", "table"]


def esc(value: object) -> str:
    """``value`` as text for a ``console().print`` line that also holds markup: a path,
    a column name or a parameter may contain ``[brackets]`` that rich would read as tags."""
    from rich.markup import escape

    return escape(str(value))


def console() -> Console:
    """A terminal's own width; 160 columns when output goes to a pipe or a file."""
    import os

    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
    return rich_console(soft_wrap=True, width=width)


def rich_console(**options: Any) -> Console:
    """A rich Console (no highlighting) that reports a reader who left (``mlk ... | head``)
    as the BrokenPipeError ``cli.main`` answers with exit 0; rich's own answer is exit 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(highlight=False, **options)


def emit_json(data: Any) -> int:
    """Standard JSON: JSON has no NaN or infinity, so those floats are written as the
    strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (which ``float()`` reads back)."""
    text = json.dumps(_finite(data), indent=2, default=str, sort_keys=False, allow_nan=False)
    sys.stdout.write(text + "\n")
    return 0


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        if math.isnan(data):
            return "NaN"
        if math.isinf(data):
            return "Infinity" if data > 0 else "-Infinity"
        return data
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def human_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(Text(column))
    count = 0
    for row in rows:  # cells are text, never markup: names and values may hold [brackets]
        grid.add_row(*(Text("-" if v is None else str(v)) for v in row))
        count += 1
    out = console()
    if count == 0:
        out.print(f"(no {title.lower() if title else 'rows'})")
        return
    out.print(grid)


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def fit_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    max_cell: int = 24,
) -> list[str]:
    """Print a table of possibly many columns within the terminal's width, one line per
    row: values (and headers) longer than ``max_cell`` are cut, and the columns that still
    do not fit are left out (the first always stays). Returns the names left out."""
    from rich.table import Table
    from rich.text import Text

    out = console()
    widths = [
        max([len(cut(name, max_cell))] + [len(cut(row[i], max_cell)) for row in rows])
        for i, name in enumerate(columns)
    ]
    shown: list[int] = []
    used = 0
    for i, w in enumerate(widths):
        need = w + 2 + (1 if shown else 0)  # padding each side, a separator between
        if shown and used + need > out.width:
            break
        shown.append(i)
        used += need
    grid = Table(title=title, show_edge=False, header_style="bold")
    for i in shown:
        grid.add_column(Text(cut(columns[i], max_cell)), no_wrap=True, overflow="ellipsis")
    for row in rows:
        grid.add_row(*(Text(cut(row[i], max_cell)) for i in shown))
    if not rows:
        out.print(f"(no {title.lower() if title else 'rows'})")
    else:
        out.print(grid)
    return [columns[i] for i in range(len(columns)) if i not in shown]

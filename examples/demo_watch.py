"""Demo piece: the watcher catches a drifted batch dropped into a watched folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import mlkernel
from mlkernel.monitor.watch import WatchEvent, describe_comparison

WATCH_CONFIG = """
[[watch]]
path = "incoming/*.csv"
dataset = "churn-train"
baseline = "dataset:churn-train@1"
debounce = 0.5
"""


def show_watcher(root: Path, write_batch: Callable[[Path, float], None]) -> None:
    """Declare a watched folder, drop a drifted batch into it and let the watcher react."""
    config = root / "mlkernel.toml"
    if "[[watch]]" not in config.read_text():
        config.write_text(config.read_text() + WATCH_CONFIG)
    incoming = root / "incoming"
    incoming.mkdir(exist_ok=True)
    print(f"watching {incoming}/*.csv (declared in mlkernel.toml as [[watch]])")

    def show(event: WatchEvent) -> None:
        if event.error:
            print(f"  {event.path.name}: {event.error}")
            return
        print(f"  {event.path.name} -> {event.version}")
        for report in event.reports:
            print(f"    vs {report.against}: {describe_comparison(report)}")
            for change in report.changes:
                print(f"      {change}")
            print(f"    report {report.report}: {report.path}")

    with mlkernel.open(root) as k:
        watcher = k.monitor.watcher(poll=0.2, notify=show)
        drifted = incoming / "batch-drifted.csv"
        tmp = incoming / ".batch-drifted.csv.part"  # written elsewhere, then renamed in
        write_batch(tmp, 1.5)
        os.replace(tmp, drifted)
        print(f"dropped {drifted.name} (two features shifted by 1.5 standard deviations)")
        watcher.run(max_seconds=3.0)

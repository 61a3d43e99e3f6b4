"""``mlk data profile | drift | watch``: the monitor's verbs under ``mlk data``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mlkernel.cli._args import add_json, open_kernel, seconds

if TYPE_CHECKING:
    from mlkernel.monitor.service import Shares


def add_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "profile",
        help="profile a version: stats, quantiles, outliers",
        epilog="example: mlk data profile train@2",
    )
    p.add_argument("ref", metavar="REF", help="dataset[@version|@alias]")
    p.add_argument("--force", action="store_true", help="recompute even if stored")
    add_json(p)
    p.set_defaults(func=_profile)

    p = verbs.add_parser(
        "drift",
        help="drift of B against A, per column and overall",
        epilog="example: mlk data drift train@1 train@2 --html drift.html",
    )
    p.add_argument("a", metavar="A", help="the reference version, e.g. train@1")
    p.add_argument("b", metavar="B", help="the current version, e.g. train@2")
    p.add_argument("--html", metavar="FILE", help="also write the HTML report here")
    add_json(p)
    p.set_defaults(func=_drift)

    p = verbs.add_parser(
        "watch",
        help="ingest and analyse new files of the [[watch]] globs",
        epilog="example: mlk data watch --once",
    )
    p.add_argument(
        "--poll",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between scans (default 1)",
    )
    p.add_argument("--once", action="store_true", help="scan once, wait for stable files, exit")
    p.add_argument(
        "--for",
        dest="seconds",
        type=seconds,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    p.set_defaults(func=_watch)


def _profile(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, emit_json, table

    with open_kernel(args) as k:
        record = k.monitor.profile_record(args.ref, force=args.force)
        profile = k.monitor.profile(record.properties["dataset"])
    summary = profile.summary()
    if args.json:
        return emit_json({"profile": record.ref, **summary})
    console().print(f"[bold]{record.properties['dataset']}[/]  ({record.ref})")
    rows = []
    for name, col in summary["columns"].items():
        shown = {**col, **{k: v for k, v in col.get("readable", {}).items() if v is not None}}
        rows.append(
            (
                name,
                col.get("kind"),
                col.get("count"),
                _nulls(col),
                _num(shown.get("mean")),
                _num(shown.get("std")),
                _num(shown.get("min")),
                _num(shown.get("max")),
                _num(col.get("distinct_estimate")),
                _outliers(col),
            )
        )
    table(
        [
            "column",
            "kind",
            "count",
            "nulls",
            "mean",
            "std",
            "min",
            "max",
            "distinct",
            "outliers IQR / |z|>3",
        ],
        rows,
        title="Profile",
    )
    return 0


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _nulls(col: dict[str, Any]) -> str:
    """Nulls, and the NaN and infinite values a numeric column also leaves out."""
    text = str(col.get("nulls"))
    nan = int(col.get("nan") or 0)
    inf = int(col.get("pos_inf") or 0) + int(col.get("neg_inf") or 0)
    extra = [f"{nan} NaN"] if nan else []
    extra += [f"{inf} ±inf"] if inf else []
    return f"{text} (+{', '.join(extra)})" if extra else text


def _shares(shares: Shares | None) -> str:
    if shares is None or shares.reference is None or shares.current is None:
        return "-"
    return f"{shares.reference:.2%} → {shares.current:.2%}"


def _outliers(col: dict[str, object]) -> str:
    found = col.get("outliers")
    if not isinstance(found, dict):
        return "-"
    iqr, z = found.get("iqr", {}), found.get("zscore", {})
    return f"{_num(iqr.get('count'))} / {_num(z.get('count'))}"


def _drift(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlkernel.cli.render import console, emit_json, esc, table

    with open_kernel(args) as k:
        report = k.monitor.report(args.a, args.b, html=Path(args.html) if args.html else None)
    if args.json:
        return emit_json(report.to_dict())
    result = report.result
    out = console()
    verdict = "[red]drift[/]" if result.dataset_drift else "[green]no drift[/]"
    out.print(
        f"{report.current.ref} against {report.reference.ref}: {verdict} "
        f"({len(result.drifted)} of {len(result.tested)} columns, threshold share "
        f"{result.drift_share:g})"
    )
    sides = {side.column: side for side in report.sides}
    table(
        [
            "column",
            "kind",
            "test",
            "score",
            "threshold",
            "drift",
            "missing ref → cur",
            "IQR outliers ref → cur",
        ],
        [
            (
                c.column,
                c.kind,
                "type changed" if "type_changed" in c.details else c.method,
                _num(c.score),
                _num(c.threshold),
                "yes" if c.drift_detected else ("-" if c.skipped else "no"),
                _shares(sides[c.column].missing_share if c.column in sides else None),
                _shares(sides[c.column].outliers_iqr_share if c.column in sides else None),
            )
            for c in result.columns
        ],
        title="Columns",
    )
    if report.changes:
        out.print("changes:")
        for change in report.changes:
            out.print(f"  {change.text}", markup=False, highlight=False)
    out.print(
        "tests: chi-square is the goodness-of-fit variant (Evidently's), Jensen-Shannon uses "
        "the natural log, Wasserstein is normed by the reference's std"
    )
    out.print(f"report: {report.html.ref}  ({esc(report.path)})")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from mlkernel.cli.render import console, esc
    from mlkernel.monitor.watch import WatchEvent, describe_comparison

    out = console()

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False)  # file and column names are not markup

    def show(event: WatchEvent) -> None:
        if event.error and event.version is None:
            moved = f" (moved to {event.quarantined})" if event.quarantined else ""
            say(f"{event.path}: skipped: {event.error}{moved}")
            return
        if not event.created:
            say(f"{event.path}: same content as {event.version}; nothing new")
        elif event.deferred:
            say(f"{event.path} → {event.version}; analysis waits for the off-peak window")
        else:
            say(f"{event.path} → {event.version}")
        for r in event.reports:
            say(f"  vs {r.against}: {describe_comparison(r)} — {r.report} ({r.path})")
            for change in r.changes:
                say(f"    {change}")
        for note in event.notes:
            say(f"  note: {note}")
        if event.error:
            say(f"  {event.error}")

    with open_kernel(args) as k:
        watcher = k.monitor.watcher(poll=args.poll, notify=show)
        if not watcher.specs:
            from mlkernel.errors import ConfigError

            raise ConfigError(
                "no [[watch]] entries in mlkernel.toml; add one, e.g. "
                '[[watch]] path = "incoming/*.csv" dataset = "train"'
            )
        for spec in watcher.specs:
            out.print(f"watching {esc(spec.path)} → dataset {spec.dataset}")
        if args.once:
            deadline = max(s.debounce for s in watcher.specs) + args.poll
            watcher.run(max_seconds=deadline + 0.5)
        else:
            try:
                watcher.run(max_seconds=args.seconds)
            except KeyboardInterrupt:
                watcher.stop()
    return 0

"""Ingest benchmark: `mlk data add` and `open` against pandas, pyarrow and polars (issue 3).

    .venv/bin/python benchmarks/ingest.py                 # 5,000,000-row CSV, 1,000,000-row NDJSON
    .venv/bin/python benchmarks/ingest.py --rows 500000   # a quicker run (NDJSON gets rows/5)
    .venv/bin/python benchmarks/ingest.py --quick         # = --rows 200000
    .venv/bin/python benchmarks/ingest.py --repeat 5      # CSV parses 5 times, medians

Generated inputs are cached under ``.bench/ingest/``: a CSV of N rows x 20 columns (12
float, 4 int, 3 string categories, 1 timestamp with time zone) and an NDJSON file of N/5
rows. Each measurement runs in a child process (this file with ``--one NAME``), after a
read of its input so that every contender reads from the page cache (:func:`_warm`); the
child reports its wall time, its peak RSS above the interpreter's, and the anonymous
(non-file) memory it still holds with the result alive. A memory-mapped open holds almost
none: its pages belong to the page cache, not to the process.

The CSV contenders (``data add``, its parse alone, and the three parsers) run ``--repeat``
times in turn (default 3), so that a burst of load from elsewhere hits them alike; their
figures are the medians, and the ``add``/``polars`` ratio is the median of the per-round
ratios. ``parse_csv`` is what ``add`` does before it stores (``read_source``: the parse
with its checks), so that add's time splits into parsing and storing. The load average is
printed before and after. ``add_csv_parquet`` is ``data add --parquet`` (a
Parquet copy stored at ingest), shown for its cost; the goal is on ``add_csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / ".bench" / "ingest"
FULL_ROWS = 5_000_000

CSV_CONTENDERS = ["add_csv", "parse_csv", "pandas_csv", "pyarrow_csv", "polars_csv"]

GOALS = {
    "add_vs_polars": 0.8,  # add at least 0.8x the speed of polars.read_csv
    "columns_vs_pandas": 50.0,  # open(columns) at least 50x faster than pandas.read_csv
    "scan_vs_raw": 1.5,  # reading every value within 1.5x of reading the file's bytes
    "rows_vs_pandas": 20.0,  # open(rows) at least 20x faster than read_csv().to_numpy()
}


def _anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- generating the inputs ------------------------------------------------------------


def generate(rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    BENCH.mkdir(parents=True, exist_ok=True)
    csv_path = BENCH / f"wide-{rows}.csv"
    ndjson_path = BENCH / f"events-{rows // 5}.ndjson"
    rng = np.random.default_rng(7)
    if not csv_path.exists():
        tmp = csv_path.with_suffix(".tmp")
        with pa.OSFile(str(tmp), "wb") as sink:
            writer = None
            for start in range(0, rows, 500_000):
                n = min(500_000, rows - start)
                cols: dict[str, Any] = {}
                for i in range(12):
                    cols[f"f{i}"] = np.round(rng.normal(100 * i, 10 + i, n), 4)
                for i in range(4):
                    cols[f"i{i}"] = rng.integers(0, 10 ** (i + 2), n)
                for i, choices in enumerate(
                    (
                        ["red", "green", "blue"],
                        [f"city{j}" for j in range(40)],
                        [f"sku-{j:04d}" for j in range(800)],
                    )
                ):
                    cols[f"c{i}"] = np.asarray(choices)[rng.integers(0, len(choices), n)]
                base = np.datetime64("2024-01-01T00:00:00", "s")
                stamps = base + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
                cols["ts"] = pa.array(stamps, pa.timestamp("s", tz="UTC"))
                table = pa.table(cols)
                if writer is None:
                    writer = pacsv.CSVWriter(sink, table.schema)
                writer.write_table(table)
            assert writer is not None
            writer.close()
        tmp.replace(csv_path)
    if not ndjson_path.exists():
        n = rows // 5
        tmp = ndjson_path.with_suffix(".tmp")
        kinds = np.asarray(["click", "view", "buy", "scroll"])
        with tmp.open("w") as out:
            for start in range(0, n, 200_000):
                m = min(200_000, n - start)
                ids = np.arange(start, start + m)
                vals = rng.random(m)
                ks = kinds[rng.integers(0, 4, m)]
                users = rng.integers(0, 50_000, m)
                out.write(
                    "".join(
                        f'{{"id":{i},"user":{u},"kind":"{k}","value":{v:.6f},"ok":{"true" if v > 0.5 else "false"}}}\n'
                        for i, u, k, v in zip(
                            ids.tolist(), users.tolist(), ks.tolist(), vals.tolist(), strict=True
                        )
                    )
                )
        tmp.replace(ndjson_path)
    return csv_path, ndjson_path


# -- one measurement (in a child process) --------------------------------------------


def _project(path: Path) -> Any:
    import mlkernel

    if (path / "mlkernel.toml").exists():
        return mlkernel.open(path)
    return mlkernel.init(path, name="bench")


def _touch_all(table: Any) -> float:
    """Read every value of an Arrow table (sum or count every column); returns seconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    started = time.perf_counter()
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                pc.sum(chunk.indices)
            elif pa.types.is_timestamp(chunk.type):
                pc.sum(chunk.cast(pa.int64()))
            elif pa.types.is_string(chunk.type):
                pc.sum(pc.utf8_length(chunk))
            else:
                pc.sum(chunk)
    return time.perf_counter() - started


def one(name: str, csv_path: Path, ndjson_path: Path, project: Path) -> dict[str, Any]:
    import numpy as np  # noqa: F401  (loaded before the baseline, like every contender's)
    import pandas as pd
    import polars as pl
    import pyarrow as pa  # noqa: F401
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson

    base_peak = _peak_mb()
    extra: dict[str, Any] = {}
    keep: Any = None
    started = time.perf_counter()
    name, _, repeat = name.partition("#")
    if name in {"add_csv", "add_ndjson", "add_csv_parquet"}:
        k = _project(_scratch(project, name, repeat) or project)
        source = ndjson_path if name == "add_ndjson" else csv_path
        dataset = "events" if name == "add_ndjson" else "wide"
        started = time.perf_counter()
        parquet = name == "add_csv_parquet"
        result = k.data.add(source, name=dataset, progress=False, parquet=parquet)
        extra = {"rows": result.rows, "created": result.created}
    elif name == "parse_csv":  # what add does before it stores: its parse and checks
        from mlkernel.data.readers import ReadOptions, read_source
        from mlkernel.data.sources import sniff

        keep = read_source(sniff(csv_path), ReadOptions()).table
    elif name == "pandas_csv":
        keep = pd.read_csv(csv_path)
    elif name == "pandas_csv_numpy":
        keep = pd.read_csv(csv_path).select_dtypes("number").to_numpy()
    elif name == "pyarrow_csv":
        keep = pacsv.read_csv(csv_path)
    elif name == "polars_csv":
        keep = pl.read_csv(csv_path)
    elif name == "pandas_ndjson":
        keep = pd.read_json(ndjson_path, lines=True)
    elif name == "pyarrow_ndjson":
        keep = pajson.read_json(ndjson_path)
    elif name == "polars_ndjson":
        keep = pl.read_ndjson(ndjson_path)
    elif name in ("raw_csv", "raw_ipc"):
        k = _project(project)
        path = csv_path if name == "raw_csv" else k.data.ipc_path("wide")
        started = time.perf_counter()
        with path.open("rb", buffering=0) as handle:
            keep = handle.read()
        extra = {"bytes": len(keep)}
    elif name in ("pandas_parquet", "polars_parquet"):
        k = _project(project)
        path = k.data.parquet_path("wide")
        started = time.perf_counter()
        keep = pd.read_parquet(path) if name == "pandas_parquet" else pl.read_parquet(path)
    elif name == "open_columns":
        k = _project(project)
        started = time.perf_counter()
        keep = k.data.open("wide")
        opened = time.perf_counter() - started
        extra = {"anon_after_open_mb": round(_anon_mb(), 1), "scan_s": _touch_all(keep)}
        return {
            "seconds": opened,
            "peak_mb": _peak_mb() - base_peak,
            **extra,
            "anon_mb": round(_anon_mb(), 1),
        }
    elif name in ("open_rows_cold", "open_rows"):
        k = _project(project)
        if name == "open_rows_cold":
            shutil.rmtree(project / ".mlkernel" / "cache" / "data", ignore_errors=True)
        started = time.perf_counter()
        keep = k.data.open("wide", layout="rows")
        extra = {"shape": list(keep.shape), "c_contiguous": bool(keep.matrix.flags["C_CONTIGUOUS"])}
    else:
        raise SystemExit(f"unknown measurement {name}")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": round(_peak_mb() - base_peak, 1),
        "anon_mb": round(_anon_mb(), 1),
        **extra,
    }


# -- the parent ----------------------------------------------------------------------


def _scratch(project: Path, name: str, repeat: str) -> Path | None:
    """The project of its own that a repeated ``add`` (or ``add --parquet``) ingests into.

    Every ``add`` is then a first ingest, as a user's would be: into the one project, the
    same bytes under another name make the same Arrow file, which the store already holds,
    and that ``add`` would pay for deleting its own copy (0.5-0.6 s for 740 MB here)
    instead of keeping it. The parent removes it after the measurement.
    """
    if name not in ("add_csv", "add_csv_parquet") or (name == "add_csv" and not repeat):
        return None
    return project.with_name(f"{project.name}-{name}-{repeat or 1}")


def _warm(path: Path) -> None:
    """Read ``path`` so that the next contender finds it in the page cache.

    Before each contender, not once: a kernel that pages out memory left idle (the
    development machine runs DAMON's reclaim, which pages out what was not touched for a
    minute, at up to 128 MiB/s) would otherwise hand later contenders a file partly on disk.
    """
    with path.open("rb", buffering=0) as handle:
        buffer = bytearray(1 << 24)
        while handle.readinto(buffer):
            pass


def run_child(name: str, csv_path: Path, ndjson_path: Path, project: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--one",
            name,
            "--csv",
            str(csv_path),
            "--ndjson",
            str(ndjson_path),
            "--project",
            str(project),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"  {name} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return {
            "seconds": float("nan"),
            "peak_mb": 0.0,
            "anon_mb": 0.0,
            "scan_s": float("nan"),
            "bytes": 0,
        }
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--quick", action="store_true", help="= --rows 200000")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the CSV parses")
    parser.add_argument("--one")
    parser.add_argument("--csv")
    parser.add_argument("--ndjson")
    parser.add_argument("--project")
    args, _unknown = parser.parse_known_args()
    if args.one:
        print(json.dumps(one(args.one, Path(args.csv), Path(args.ndjson), Path(args.project))))
        return 0
    rows = 200_000 if args.quick else args.rows
    print(f"generating / reusing inputs under {BENCH} ({rows:,} CSV rows)...", flush=True)
    csv_path, ndjson_path = generate(rows)
    project = BENCH / f"project-{rows}"
    shutil.rmtree(project, ignore_errors=True)
    for path in (csv_path, ndjson_path):  # warm the page cache for everyone
        _warm(path)
    print(f"CSV    {csv_path.name}: {csv_path.stat().st_size / 1e6:,.0f} MB")
    print(f"NDJSON {ndjson_path.name}: {ndjson_path.stat().st_size / 1e6:,.0f} MB\n", flush=True)
    print(f"load average before: {_load()}\n", flush=True)
    rounds = [CSV_CONTENDERS] + [
        [f"{n}#{i}" for n in CSV_CONTENDERS] for i in range(2, max(args.repeat, 1) + 1)
    ]
    order = [
        *(name for round_ in rounds for name in round_),
        "add_csv_parquet",
        "raw_csv",
        "raw_ipc",
        "open_columns",
        "pandas_parquet",
        "polars_parquet",
        "open_rows_cold",
        "open_rows",
        "pandas_csv_numpy",
        "add_ndjson",
        "pandas_ndjson",
        "pyarrow_ndjson",
        "polars_ndjson",
    ]
    results: dict[str, dict[str, Any]] = {}
    for name in order:
        _warm(ndjson_path if "ndjson" in name else csv_path)
        results[name] = run_child(name, csv_path, ndjson_path, project)
        scratch = _scratch(project, *name.partition("#")[::2])
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        r = results[name]
        print(
            f"  {name:<18} {r['seconds']:8.3f} s   peak +{r['peak_mb']:8.1f} MB   "
            f"anon {r['anon_mb']:8.1f} MB",
            flush=True,
        )
    print(f"\nload average after: {_load()}")
    s = {n: r["seconds"] for n, r in results.items() if "#" not in n}
    per_round = {
        n: [results[r_[i]]["seconds"] for r_ in rounds] for i, n in enumerate(CSV_CONTENDERS)
    }
    if len(rounds) > 1:
        print(f"\nCSV parses, {len(rounds)} rounds (median; every round):")
        for name, times in per_round.items():
            s[name] = statistics.median(times)
            print(f"  {name:<18} {s[name]:8.3f} s   ({' '.join(f'{t:.2f}' for t in times)})")
    add_vs_polars = statistics.median(
        p / a for p, a in zip(per_round["polars_csv"], per_round["add_csv"], strict=True)
    )
    print("\nratios against the goals of issue 3 (higher is better unless noted):")
    checks = [
        (
            "add CSV speed / polars.read_csv speed (median of rounds)",
            add_vs_polars,
            GOALS["add_vs_polars"],
            ">=",
        ),
        (
            "add --parquet CSV speed / polars.read_csv speed",
            s["polars_csv"] / s["add_csv_parquet"],
            None,
            "",
        ),
        (
            "add's parse alone, speed / polars.read_csv speed",
            statistics.median(
                p / a for p, a in zip(per_round["polars_csv"], per_round["parse_csv"], strict=True)
            ),
            None,
            "",
        ),
        ("add CSV speed / pyarrow.csv speed", s["pyarrow_csv"] / s["add_csv"], None, ""),
        ("add CSV speed / pandas.read_csv speed", s["pandas_csv"] / s["add_csv"], None, ""),
        (
            "open(columns): x faster than pandas.read_csv",
            s["pandas_csv"] / s["open_columns"],
            GOALS["columns_vs_pandas"],
            ">=",
        ),
        (
            "open(columns): x faster than pandas.read_parquet",
            s["pandas_parquet"] / s["open_columns"],
            None,
            "",
        ),
        (
            "open(columns): x faster than polars.read_parquet",
            s["polars_parquet"] / s["open_columns"],
            None,
            "",
        ),
        (
            "read every value / read the IPC file's bytes (lower)",
            results["open_columns"]["scan_s"] / s["raw_ipc"],
            GOALS["scan_vs_raw"],
            "<=",
        ),
        (
            "open(rows) cached: x faster than read_csv().to_numpy()",
            s["pandas_csv_numpy"] / s["open_rows"],
            GOALS["rows_vs_pandas"],
            ">=",
        ),
        (
            "open(rows) first time (builds the cache): x faster",
            s["pandas_csv_numpy"] / s["open_rows_cold"],
            None,
            "",
        ),
        (
            "add NDJSON speed / polars.read_ndjson speed",
            s["polars_ndjson"] / s["add_ndjson"],
            None,
            "",
        ),
        ("add NDJSON speed / pyarrow.json speed", s["pyarrow_ndjson"] / s["add_ndjson"], None, ""),
    ]
    for label, value, goal, way in checks:
        verdict = ""
        if goal is not None:
            ok = value >= goal if way == ">=" else value <= goal
            verdict = f"goal {way} {goal:g}: {'met' if ok else 'NOT met'}"
        print(f"  {label:<58} {value:8.2f}   {verdict}")
    print(
        f"\n  add = parse {s['parse_csv']:.2f} s + storing (Arrow file written, both files "
        f"hashed, fsync) {s['add_csv'] - s['parse_csv']:.2f} s (medians)"
    )
    print(
        f"  open(columns) anonymous memory held: {results['open_columns']['anon_mb']:.0f} MB "
        f"(pandas.read_csv holds {results['pandas_csv']['anon_mb']:.0f} MB)"
    )
    print(
        f"  IPC file {results['raw_ipc']['bytes'] / 1e6:,.0f} MB read raw in {s['raw_ipc']:.3f} s; "
        f"every value of the opened table read in {results['open_columns']['scan_s']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

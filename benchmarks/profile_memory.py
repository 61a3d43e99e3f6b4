"""Profiling a 20,000,000-row dataset in bounded memory (issue 4: under 1 GB RSS).

Writes a 20M x 20 Parquet file in 1M-row chunks (12 float, 4 int, 3 string categories,
1 timestamp), ingests it with `mlk data add`, then profiles it in a *fresh process* so
that the peak resident set (ru_maxrss) belongs to profiling alone. Prints rows/s too.

    .venv/bin/python benchmarks/profile_memory.py [--rows N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# VmHWM (this process's peak resident set) rather than ru_maxrss, which a child
# inherits from its parent across fork and exec on Linux.
PROFILE_CHILD = """
import json, sys, time
import mlkernel

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

k = mlkernel.open(sys.argv[1])
before = hwm_mb()
t = time.perf_counter()
record = k.monitor.profile_record("dataset:big", force=True)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm_mb(), "baseline_rss_mb": before,
                  "rows": record.properties["rows"]}))
"""


def write_parquet(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    start = np.datetime64("2026-01-01T00:00:00", "s")
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        cols: dict[str, pa.Array] = {}
        for i in range(12):
            cols[f"f{i}"] = pa.array(rng.normal(i, 1 + i / 10, n))
        for i in range(4):
            cols[f"i{i}"] = pa.array(rng.integers(0, 1000 * (i + 1), n))
        for i in range(3):
            cats = np.array([f"cat{j}" for j in range(5 + 5 * i)])
            cols[f"s{i}"] = pa.array(cats[rng.integers(0, len(cats), n)])
        cols["ts"] = pa.array(start + rng.integers(0, 86_400 * 365, n).astype("timedelta64[s]"))
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--quick", action="store_true", help="2,000,000 rows")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    rows = 2_000_000 if args.quick else args.rows

    import mlkernel

    folder = Path(tempfile.mkdtemp(prefix="mlk-profile-mem-"))
    try:
        source = folder / "big.parquet"
        t = time.perf_counter()
        write_parquet(source, rows)
        print(f"wrote {rows:,} rows x 20 columns to Parquet in {time.perf_counter() - t:.1f} s")
        with mlkernel.init(folder / "proj", name="bench") as k:
            t = time.perf_counter()
            k.data.add(source, name="big", progress=False)
            print(f"ingested in {time.perf_counter() - t:.1f} s")
        out = subprocess.run(
            [sys.executable, "-c", PROFILE_CHILD, str(folder / "proj")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rate = result["rows"] / result["seconds"]
        verdict = "PASS" if result["peak_rss_mb"] < 1024 else "MISS"
        print(
            f"profile: {result['rows']:,} rows in {result['seconds']:.1f} s ({rate:,.0f} rows/s); "
            f"peak RSS {result['peak_rss_mb']:.0f} MB (process baseline "
            f"{result['baseline_rss_mb']:.0f} MB); goal < 1024 MB: {verdict}"
        )
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

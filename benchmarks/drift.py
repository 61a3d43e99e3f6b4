"""Benchmark: mlkernel's profile + drift against Evidently's DataDriftPreset.

Two 1,000,000 x 20 tables (14 float, 2 integer, 4 string columns); exactly 3 columns are
shifted in the current table: ``f0`` (mean +0.5 std), ``f1`` (std x1.5) and ``s0``
(category shares change). Both tools see the same data (written to Parquet under
``.bench/``). Printed: wall time, peak memory, flagged columns, and profile throughput.

Evidently 0.7.23 does not import with pandas 3, so it runs in its own virtual
environment, ``.venv-evidently`` (created on first use:
``python3 -m venv .venv-evidently && .venv-evidently/bin/pip install evidently==0.7.23
'pandas<3' pyarrow``), in a subprocess. If that environment cannot be built, the script
says why and reports mlkernel alone.

Usage: ``python benchmarks/drift.py [--rows N | --quick] [--no-evidently] [--json FILE]``
(``--quick``: 100,000 rows, as ``make bench BENCH_ARGS=--quick`` passes it to every script)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench"
EVIDENTLY_VENV = ROOT / ".venv-evidently"
SHIFTED = ["f0", "f1", "s0"]

EVIDENTLY_SCRIPT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
t_import = time.perf_counter() - t0
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t1 = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
result = snapshot.dict()
elapsed = time.perf_counter() - t1
flagged, methods = [], {}
for metric in result["metrics"]:
    cfg = metric["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        method = cfg["method"]; value = metric["value"]; threshold = cfg["threshold"]
        methods[cfg["column"]] = method
        is_distance = "distance" in method.lower() or "psi" in method.lower()
        if (value >= threshold) if is_distance else (value < threshold):
            flagged.append(cfg["column"])
print(json.dumps({"seconds": elapsed, "import_seconds": t_import, "flagged": flagged,
                  "methods": methods,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_tables(rows: int) -> tuple[Any, Any]:
    import numpy as np
    import pyarrow as pa

    def table(seed: int, shifted: bool) -> Any:
        rng = np.random.default_rng(seed)
        cols: dict[str, Any] = {}
        for i in range(14):
            if i % 3 == 0:
                values = rng.normal(10.0 * i, 1.0 + i, rows)
            elif i % 3 == 1:
                values = rng.lognormal(0.0, 0.5, rows)
            else:
                values = rng.uniform(-5, 5, rows)
            cols[f"f{i}"] = values
        if shifted:
            cols["f0"] = cols["f0"] + 0.5 * 1.0  # f0 ~ N(0, 1): mean +0.5 std
            cols["f1"] = np.exp(np.log(cols["f1"]) * 1.5)  # wider spread
        cols["i0"] = rng.integers(0, 5, rows)
        cols["i1"] = rng.integers(0, 1000, rows)
        shares = [0.4, 0.3, 0.2, 0.1] if not shifted else [0.25, 0.25, 0.25, 0.25]
        cols["s0"] = pa.array(rng.choice(["red", "green", "blue", "grey"], rows, p=shares))
        cols["s1"] = pa.array(rng.choice([f"city{k}" for k in range(50)], rows))
        cols["s2"] = pa.array(rng.choice(["yes", "no"], rows, p=[0.7, 0.3]))
        cols["s3"] = pa.array(rng.choice([f"code{k}" for k in range(300)], rows))
        return pa.table(cols)

    return table(1, False), table(2, True)


def ensure_evidently() -> tuple[bool, str]:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "evidently==0.7.23",
                    "pandas<3",
                    "pyarrow",
                ],
                check=True,
                timeout=900,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            return False, f"could not build {EVIDENTLY_VENV}: {exc}"
    check = subprocess.run(
        [str(python), "-c", "import evidently; print(evidently.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        return (
            False,
            f"evidently does not import in {EVIDENTLY_VENV}: {check.stderr.strip()[-300:]}",
        )
    return True, check.stdout.strip()


def run_evidently(ref_path: Path, cur_path: Path) -> dict[str, Any]:
    ok, info = ensure_evidently()
    if not ok:
        return {"error": info}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(EVIDENTLY_SCRIPT)
        script = f.name
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(EVIDENTLY_VENV / "bin" / "python"), script, str(ref_path), str(cur_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    Path(script).unlink(missing_ok=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-1000:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["version"] = info
    result["process_seconds"] = wall
    return result


def run_mlkernel(ref: Any, cur: Any) -> dict[str, Any]:
    import scipy.stats  # noqa: F401  (imported once, outside the timings; see import_seconds)

    from mlkernel.monitor import DatasetProfile, build_profile, build_report, compute_drift

    before = rss_mb()
    t0 = time.perf_counter()
    ref_profile = build_profile(ref)
    t1 = time.perf_counter()
    cur_profile = build_profile(cur)
    t2 = time.perf_counter()
    result = compute_drift(ref_profile, cur_profile)
    t3 = time.perf_counter()
    # Drift between two versions whose profiles are stored: load both, compare.
    stored = (ref_profile.to_json(), cur_profile.to_json())
    t4 = time.perf_counter()
    again = compute_drift(DatasetProfile.from_json(stored[0]), DatasetProfile.from_json(stored[1]))
    t5 = time.perf_counter()
    html = build_report(ref_profile, cur_profile, result).to_html()
    t6 = time.perf_counter()
    assert [c.column for c in again.drifted] == [c.column for c in result.drifted]
    rows = ref.num_rows + cur.num_rows
    return {
        "profile_reference_seconds": t1 - t0,
        "profile_current_seconds": t2 - t1,
        "drift_seconds": t3 - t2,
        "total_seconds": t3 - t0,
        "drift_from_stored_profiles_seconds": t5 - t4,
        "report_seconds": t6 - t5,
        "report_html_bytes": len(html),
        "profile_json_bytes": len(stored[0]),
        "throughput_rows_per_second": rows / (t2 - t0),
        "throughput_cells_per_second": rows * ref.num_columns / (t2 - t0),
        "peak_rss_mb": rss_mb(),
        "rss_growth_mb": rss_mb() - before,
        "flagged": [c.column for c in result.drifted],
        "methods": {c.column: c.method for c in result.columns},
        "dataset_drift": result.dataset_drift,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="= --rows 100000")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rows = 100_000
    sys.path.insert(0, str(ROOT / "src"))

    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    ref, cur = make_tables(args.rows)
    print(f"generated 2 x {args.rows:,} x {ref.num_columns} in {time.perf_counter() - t0:.1f} s")
    BENCH.mkdir(exist_ok=True)
    ref_path, cur_path = BENCH / "drift_ref.parquet", BENCH / "drift_cur.parquet"
    pq.write_table(ref, ref_path)
    pq.write_table(cur, cur_path)

    t0 = time.perf_counter()
    import scipy.stats  # noqa: F401

    import_seconds = time.perf_counter() - t0
    ours = run_mlkernel(ref, cur)
    ours["scipy_import_seconds"] = import_seconds
    print("\nmlkernel")
    for key, value in ours.items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    ok = sorted(ours["flagged"]) == sorted(SHIFTED)
    print(f"  flags exactly the shifted columns {SHIFTED}: {ok}")

    report: dict[str, Any] = {
        "rows": args.rows,
        "columns": ref.num_columns,
        "shifted": SHIFTED,
        "mlkernel": ours,
    }
    if not args.no_evidently:
        del ref, cur
        theirs = run_evidently(ref_path, cur_path)
        report["evidently"] = theirs
        print("\nevidently")
        for key, value in theirs.items():
            print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
        if "seconds" in theirs:
            speedup = theirs["seconds"] / ours["total_seconds"]
            report["speedup"] = speedup
            print(f"\nspeed-up (Evidently run / mlkernel profile both + drift): {speedup:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""How long the command line takes to start, against DVC and MLflow (issue 2, item 7).

Runs `mlk --help`, `mlk --version`, `mlk -C PROJECT ls` (opens a project), `dvc --version`
and `mlflow --version` as whole processes, several times each, and prints medians. The
goal: `mlk --help` under 100 ms. DVC and MLflow come from their own venvs (created on
first use by the tracking and pipeline benchmarks' helpers).

    .venv/bin/python benchmarks/cli_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from tracking import MLFLOW_VENV, ensure_mlflow_python  # noqa: E402

from pipeline import _dvc_bin  # noqa: E402


def timed(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=False)  # warm the page cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args()
    repeat = 5 if args.quick else args.repeat
    mlk = str(Path(sys.executable).with_name("mlk"))
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "p"
        subprocess.run([mlk, "init", str(project)], capture_output=True, check=True)
        rows: list[tuple[str, float]] = [
            ("python -c pass (interpreter floor)", timed([sys.executable, "-c", "pass"], repeat)),
            ("mlk --help", timed([mlk, "--help"], repeat)),
            ("mlk --version", timed([mlk, "--version"], repeat)),
            ("mlk ls (opens a project)", timed([mlk, "-C", str(project), "ls"], repeat)),
        ]
    peers: list[tuple[str, float]] = []
    try:
        peers.append(("dvc --version", timed([str(_dvc_bin()), "--version"], repeat)))
    except Exception as exc:  # the peer could not be installed: say so, keep our figures
        print(f"dvc: not measured ({exc})")
    try:
        python = ensure_mlflow_python(MLFLOW_VENV)
        peers.append(
            ("mlflow --version", timed([str(python.with_name("mlflow")), "--version"], repeat))
        )
    except Exception as exc:
        print(f"mlflow: not measured ({exc})")
    help_time = rows[1][1]
    print(f"\nmedian of {repeat} runs, whole processes")
    for label, seconds in rows + peers:
        ratio = f"{seconds / help_time:6.1f}x mlk --help" if label in dict(peers) else ""
        print(f"  {label:<38} {seconds * 1000:8.1f} ms  {ratio}")
    verdict = "PASS" if help_time < 0.100 else "MISS"
    print(f"goal: mlk --help under 100 ms: {help_time * 1000:.0f} ms, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo` keeps working: the example runs end to end (the ML-mode part has its own
tests in tests/sched)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--no-ml-mode"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "dataset:churn-train@1" in out
    assert "(5 cached)" in out  # the rerun is all cache hits
    assert "model:churn@production → version 1" in out
    assert "DRIFT (columns: f0, f3)" in out  # the watcher caught exactly the shifted columns
    assert "trigger retrain-on-drift fired" in out
    assert "-> model:churn@2" in out  # continuous training registered a new model

"""`make bench`: run every benchmark script in this folder, one after another.

Each script runs mlkernel and its peer tool (MLflow, DVC, pandas, Evidently, ...) in the
same run and prints its own figures and ratios. Arguments are passed to every script
(e.g. `--quick`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ("tracking.py", "ingest.py", "drift.py", "pipeline.py", "mlmode.py")


def main() -> int:
    scripts = [HERE / name for name in ORDER if (HERE / name).exists()]
    scripts += sorted(
        p for p in HERE.glob("*.py") if p.name not in ORDER and p.name != Path(__file__).name
    )
    failed = []
    for script in scripts:
        print(f"\n##### {script.name} " + "#" * 50, flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *sys.argv[1:]])
        print(f"##### {script.name}: exit {code} after {time.perf_counter() - started:.0f} s")
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo` keeps working: the example runs end to end (the ML-mode part has its own
tests in tests/sched)."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    from mlkernel.sched.client import SOCKET_NAME, Client, ping

    # The demo's pipeline runs start the scheduler controller (ML mode for the process
    # executor); give it a runtime dir of its own, and stop it afterwards.
    controller = tmp_path / "mlkernel"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "demo.py"), "--no-ml-mode"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        # The demo stops the controller it started (make demo used to leave it running).
        left_running = ping(controller / SOCKET_NAME)
    finally:
        if ping(controller / SOCKET_NAME):
            with Client(controller, autostart=False) as c:
                c.call("shutdown")
    for _ in range(100):  # it restores what it changed, then exits
        if not ping(controller / SOCKET_NAME):
            break
        time.sleep(0.05)
    assert not left_running, "the demo left the scheduler controller it started running"
    if "started the machine's scheduler controller" in result.stderr:  # said when started
        assert "stopped the scheduler controller this demo started" in result.stdout
    else:  # another controller holds the pools' parent: the steps ran without ML mode
        assert "ML mode unavailable" in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "dataset:churn-train@1" in out
    assert "(5 cached)" in out  # the rerun is all cache hits
    assert "model:churn@production → version 1" in out
    # the watcher caught exactly the shifted columns
    assert re.search(r"DRIFT: 2 of \d+ columns drifted: f0, f3\n", out), out[-3000:]
    assert "trigger retrain-on-drift fired" in out
    assert "-> model:churn@2" in out  # continuous training registered a new model

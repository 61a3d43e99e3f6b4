"""The runner: failures skip what is downstream, resume, retries, timeouts, logs, parallel
steps, and Ctrl-C; steps run in real worker processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel
from mlkernel.testing import start_mlk, wait_for

Writer = Callable[[Path, str, str], Path]

FLAKY = """
import os, sys
from pathlib import Path
import mlkernel as mlk

@mlk.step
def source():
    print("making the source")
    return 21

@mlk.step
def fragile(v):
    if Path("broken").exists():
        print("about to fail", file=sys.stderr)
        raise ValueError("the flag file says no")
    return v * 2

@mlk.step
def after(v):
    return v + 1

@mlk.step
def independent():
    return "fine"

@mlk.step(retries=2)
def flaky():
    counter = Path("attempts")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n < 3:
        raise RuntimeError(f"attempt {n} fails")
    return n

@mlk.pipeline
def pipe():
    after(fragile(source()))
    independent()

@mlk.pipeline
def retrying():
    flaky()
"""


def _ended(pid: int, wait: float = 10.0) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its parent counts as ended)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def flaky(project: Kernel, write: Writer) -> Kernel:
    write(project.root, "pipes/flaky.py", FLAKY)
    return project


def _run(k: Kernel, target: str = "pipes/flaky.py:pipe", **options: object):  # type: ignore[no-untyped-def]
    return k.pipelines.run(target, ml_mode=False, **options)  # type: ignore[arg-type]


def test_a_failure_skips_downstream_and_resume_continues(flaky: Kernel) -> None:
    k = flaky
    (k.root / "broken").touch()
    failed = _run(k)
    states = {n: s.state for n, s in failed.steps.items()}
    assert states == {
        "source": "ran",
        "fragile": "failed",
        "after": "skipped",
        "independent": "ran",
    }
    assert failed.state == "failed"
    assert failed.error == (
        "step fragile failed: ValueError: the flag file says no (at flaky.py:15)"
    )
    record = k.context.meta.get_execution(failed.id)
    assert (record.state, record.error) == ("failed", failed.error)
    logs = dict(k.pipelines.logs(failed.id))
    assert "about to fail" in logs["fragile"]
    assert "Traceback" in logs["fragile"]
    assert "making the source" in logs["source"]
    assert "skipped" in logs["after"]

    (k.root / "broken").unlink()
    resumed = k.pipelines.run(resume=failed.id, ml_mode=False, force=True)
    states = {n: s.state for n, s in resumed.steps.items()}
    # done steps of the failed run are reused even with --force; the rest run
    assert states == {"source": "cached", "fragile": "ran", "after": "ran", "independent": "cached"}
    assert resumed.state == "completed"
    assert k.load(resumed.output("after") or "") == 43
    pipeline = k.pipelines.run_info(resumed.id).pipeline
    assert pipeline is not None and pipeline.resumed_from == failed.id


def test_retries(flaky: Kernel) -> None:
    result = _run(flaky, "pipes/flaky.py:retrying")
    step = result.steps["flaky"]
    assert step.state == "ran"
    assert flaky.load(step.output or "") == 3
    info = flaky.pipelines.steps(result.id)[0]
    assert info.attempts == 3
    log = dict(flaky.pipelines.logs(result.id))["flaky"]
    assert "attempt 1 failed (RuntimeError: attempt 1 fails" in log


def test_timeout_ends_the_step_process(k: Kernel, write: Writer) -> None:
    write(
        k.root,
        "pipes/slow.py",
        """
        import os, time
        from pathlib import Path
        import mlkernel as mlk

        @mlk.step(timeout=1)
        def slow():
            Path("pid").write_text(str(os.getpid()))
            time.sleep(60)

        @mlk.pipeline
        def pipe():
            slow()
        """,
    )
    result = _run(k, "pipes/slow.py:pipe")
    assert result.steps["slow"].state == "failed"
    assert result.steps["slow"].error == "TimeoutError: step slow timed out after 1 s"
    assert _ended(int((k.root / "pid").read_text()))


def test_independent_steps_run_at_once(k: Kernel, write: Writer) -> None:
    # each step waits for the other's flag file: only a parallel runner completes them
    write(
        k.root,
        "pipes/both.py",
        """
        import time
        from pathlib import Path
        import mlkernel as mlk

        @mlk.step(timeout=30)
        def meet(me: str, other: str):
            Path(me).touch()
            while not Path(other).exists():
                time.sleep(0.01)
            return me

        @mlk.pipeline
        def pipe():
            meet("left", "right")
            meet("right", "left")
        """,
    )
    result = _run(k, "pipes/both.py:pipe", workers=2)
    assert {s.state for s in result.steps.values()} == {"ran"}
    steps = k.pipelines.steps(result.id)
    assert all((s.max_rss_kb or 0) > 0 for s in steps)


def test_the_worker_imports_no_heavy_library_and_no_metadata_store(
    k: Kernel, write: Writer
) -> None:
    write(
        k.root,
        "pipes/light.py",
        """
        import sys
        import mlkernel as mlk

        @mlk.step
        def modules():
            return sorted(sys.modules)

        @mlk.pipeline
        def pipe():
            modules()
        """,
    )
    result = _run(k, "pipes/light.py:pipe")
    loaded = set(k.load(result.output("modules") or ""))
    heavy = {m.split(".")[0] for m in loaded} & {"sqlalchemy", "rich", "psycopg2", "alembic"}
    assert heavy == set()
    assert not {m for m in loaded if m.startswith(("mlkernel.meta", "mlkernel.kernel"))}


def test_ctrl_c_cancels_the_run_and_ends_its_steps(k: Kernel, write: Writer, declare) -> None:  # type: ignore[no-untyped-def]
    write(
        k.root,
        "pipes/hang.py",
        """
        import os, subprocess, sys, time
        from pathlib import Path
        import mlkernel as mlk

        @mlk.step
        def hang(name: str):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            Path(name).write_text(f"{os.getpid()} {child.pid}")
            time.sleep(120)

        @mlk.step
        def later(v):
            return v

        @mlk.pipeline
        def pipe():
            later(hang("one"))
            hang("two")
        """,
    )
    declare(k.root, '[pipelines]\nml_mode = false\nhang = "pipes/hang.py:pipe"\n')
    mlk = Path(sys.executable).with_name("mlk")
    proc = start_mlk(k.root, "run", "hang")
    wait_for(proc, k.root / "one", k.root / "two", what="the steps did not start")
    pids = [int(p) for name in ("one", "two") for p in (k.root / name).read_text().split()]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "run cancelled" in out
    for pid in pids:  # the step processes and the processes they started
        assert _ended(pid)
    listed = json.loads(
        subprocess.run(
            [str(mlk), "-C", str(k.root), "runs", "ls", "--json"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    run = listed[0]
    assert (run["type"], run["state"]) == ("pipeline", "cancelled")
    assert {s["name"]: s["state"] for s in run["steps"]} == {
        "hang": "cancelled", "hang-2": "cancelled", "later": "skipped",
    }  # fmt: skip


CHATTY = """
import time
from pathlib import Path
import mlkernel as mlk

def _wait_for(name):
    path = Path(__file__).resolve().parent.parent / name  # the project folder (any cwd)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)

@mlk.step
def first():
    print("first says hello")
    return 1

@mlk.step
def chatty(v, fail: bool = False):
    _wait_for("reader-gone")  # the reader has closed the pipe: every line below hits EPIPE
    for i in range(2000):
        print("line", i)
    if fail:
        raise ValueError("asked to fail")
    return v + 1, mlk.Metrics(score=0.5)

@mlk.step(output="model:chatty")
def last(v):
    print("last one")
    return {"v": v}

@mlk.pipeline
def pipe():
    last(chatty(first()))
"""


@pytest.mark.parametrize(
    ("command", "executor", "fail"),
    [("run", "process", False), ("run", "inline", False), ("run", "process", True),
     ("triggers", "process", True)],
)  # fmt: skip
def test_a_closed_stdout_does_not_break_the_run(
    k: Kernel,
    write: Writer,
    declare: Callable[[Path, str], None],
    command: str,
    executor: str,
    fail: bool,
) -> None:
    """`mlk run PIPE | head -3` (or `mlk triggers fire T | head -3`): the run goes on with
    its output dropped, its record is honest and the exit status is the run's."""
    write(k.root, "pipes/chatty.py", CHATTY)
    flag = "true" if fail else "false"
    declare(
        k.root,
        f"""
        [pipelines]
        ml_mode = false
        chatty = "pipes/chatty.py:pipe"

        [triggers.by-hand]
        pipeline = "chatty"
        executor = "{executor}"
        params = {{ fail = {flag} }}
        """,
    )
    mlk = Path(sys.executable).with_name("mlk")
    args = (
        ["run", "chatty", "--executor", executor, "-p", f"fail={flag}"]
        if command == "run"
        else ["triggers", "fire", "by-hand"]
    )
    proc = subprocess.Popen(
        [str(mlk), "-C", str(k.root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    assert head[0].startswith("trigger " if command == "triggers" else "run ")
    proc.stdout.close()  # like `head -3` exiting
    (k.root / "reader-gone").write_text("")
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == (1 if fail else 0), err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    listed = json.loads(
        subprocess.run(
            [str(mlk), "-C", str(k.root), "runs", "ls", "--json"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    run = listed[0]
    assert run["state"] == ("failed" if fail else "completed"), run
    steps = {s["name"]: s["state"] for s in run["steps"]}
    if fail:
        assert steps == {"first": "ran", "chatty": "failed", "last": "skipped"}
        assert "asked to fail" in run["error"]
    else:
        assert steps == {"first": "ran", "chatty": "ran", "last": "ran"}
        assert k.load("model:chatty") == {"v": 2}
    log = k.pipelines.logs(run["id"], "chatty")[0][1]
    assert "line 1999" in log  # the step's log keeps what the terminal lost
    if command == "triggers":
        (trigger,) = json.loads(
            subprocess.run([str(mlk), "-C", str(k.root), "triggers", "ls", "--json"],
                           capture_output=True, text=True, check=True).stdout
        )  # fmt: skip
        assert (trigger["last_run"], trigger["last_state"]) == (run["id"], run["state"])


def test_ctrl_c_during_an_inline_step_cancels_the_run(
    k: Kernel, write: Writer, declare: Callable[[Path, str], None]
) -> None:
    write(
        k.root,
        "pipes/slow.py",
        """
        import time
        from pathlib import Path
        import mlkernel as mlk

        @mlk.step
        def slow():
            (Path(__file__).resolve().parent.parent / "started").write_text("")
            time.sleep(120)

        @mlk.step
        def after(v):
            return v

        @mlk.pipeline
        def pipe():
            after(slow())
        """,
    )
    declare(k.root, '[pipelines]\nml_mode = false\nslow = "pipes/slow.py:pipe"\n')
    proc = start_mlk(k.root, "run", "slow", "--executor", "inline")
    wait_for(proc, k.root / "started", what="the step did not start")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    run = k.pipelines.runs()[0]
    assert run.record.state == "cancelled"
    assert {s.name: s.state for s in run.steps or ()} == {
        "slow": "cancelled", "after": "skipped"
    }  # fmt: skip
    after = k.pipelines.steps(run.record.id)[1]
    assert after.error == "the run was cancelled"


def test_an_echo_that_fails_does_not_stop_the_run(k: Kernel, write: Writer) -> None:
    write(k.root, "pipes/chatty.py", CHATTY)
    (k.root / "reader-gone").write_text("")
    seen: list[str] = []

    def echo(line: str) -> None:
        seen.append(line)
        raise BrokenPipeError(32, "Broken pipe")

    result = k.pipelines.run("pipes/chatty.py:pipe", executor="inline", ml_mode=False, echo=echo)
    assert result.state == "completed", result.error
    assert len(seen) == 1  # dropped after its first failure
    assert k.context.meta.get_execution(result.id).state == "completed"


def test_a_second_ctrl_c_does_not_cut_the_cleanup_short(
    k: Kernel, write: Writer, declare: Callable[[Path, str], None]
) -> None:
    """An impatient second Ctrl-C while the run stops its steps (here a step that ignores
    SIGTERM, so stopping it takes the grace period) still leaves an honest record."""
    write(
        k.root,
        "pipes/stubborn.py",
        """
        import signal, time
        from pathlib import Path
        import mlkernel as mlk

        ROOT = Path(__file__).resolve().parent.parent

        def noted(signum, frame):  # SIGTERM is noted, not obeyed: SIGKILL has to end it
            (ROOT / "terminated").write_text("")

        @mlk.step
        def stubborn():
            signal.signal(signal.SIGTERM, noted)
            (ROOT / "started").write_text("")
            for _ in range(1200):
                time.sleep(0.1)

        @mlk.step
        def after(v):
            return v

        @mlk.pipeline
        def pipe():
            after(stubborn())
        """,
    )
    declare(k.root, '[pipelines]\nml_mode = false\nstubborn = "pipes/stubborn.py:pipe"\n')
    proc = start_mlk(k.root, "run", "stubborn")
    wait_for(proc, k.root / "started", what="the step did not start")
    proc.send_signal(signal.SIGINT)
    wait_for(proc, k.root / "terminated", what="the step was not asked to stop")
    proc.send_signal(signal.SIGINT)  # while the step process is given its grace period
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("mlk hung after a second Ctrl-C: " + proc.communicate()[0])
    assert proc.returncode == 130, out
    run = k.pipelines.runs()[0]
    assert run.record.state == "cancelled"
    assert {s.name: s.state for s in run.steps or ()} == {
        "stubborn": "cancelled", "after": "skipped"
    }  # fmt: skip

"""Faults a new user met following the README and the docs, each as the shell sees it:
real ``mlk`` subprocesses in a real project, checking the exit code and the words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlkernel
from mlkernel.testing import run_mlk

INTERNAL_ERROR = 70


def mlk(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlk(*args, cwd=cwd, columns=200)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    mlkernel.init(tmp_path / "p").close()
    return tmp_path / "p"


def test_user_text_with_brackets_is_shown_as_typed_not_read_as_markup(project: Path) -> None:
    # Column names, parameters, metric names and file paths are the user's text; rich
    # markup in them was interpreted (mangled) or raised MarkupError (exit 70).
    src = project / "[red]in.csv"
    src.write_text("[red]x[/red],[bold],b\n1,2,3\n4,5,6\n")
    assert mlk(project, "data", "add", src.name, "--name", "m").returncode == 0
    with mlkernel.open(project) as k, k.start_run("r", params={"[x]": "[/y]"}) as run:
        run.log_metric("[bold]loss", 1.0)
    for args in (
        ("data", "show", "m"),
        ("data", "head", "m"),
        ("data", "profile", "m"),
        ("data", "drift", "m@1", "m@1"),
        ("runs", "show", str(run.id)),
    ):
        done = mlk(project, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
        out = done.stdout
        if args[1] != "show" or args[0] == "data":
            assert "[red]x[/red]" in out and "[bold]" in out, (args, out)
        if args[0] == "runs":
            assert "[x]" in out and "[/y]" in out and "[bold]loss" in out, out
    assert "[red]in.csv" in mlk(project, "data", "show", "m").stdout
    done = mlk(project, "data", "export", "m", "-o", "[bold]out.csv")
    assert done.returncode == 0 and "wrote [bold]out.csv" in done.stdout, done.stdout


def test_negative_counts_are_refused_in_one_line_not_read_as_zero(project: Path) -> None:
    # `mlk data head -n -3` printed "(no rows)" and exited 0; `runs ls -n -1` listed all.
    (project / "t.csv").write_text("a\n1\n2\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    for args in (
        ("data", "head", "t", "-n", "-3"),
        ("runs", "ls", "-n", "-1"),
        ("lineage", "dataset:t", "--depth", "-2"),
        ("data", "watch", "--once", "--poll", "-1"),
        ("data", "watch", "--once", "--poll", "nan"),
        ("run", "p", "--workers", "0"),  # was silently the default
    ):
        done = mlk(project, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "(no rows)" not in done.stdout
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and any(
            w in errors[0] for w in ("0 or more", "1 or more", "above 0")
        ), errors
    with mlkernel.open(project) as k, pytest.raises(mlkernel.errors.UsageError, match="0 or more"):
        k.data.head("t", -3)


SLOW_PIPELINE = """
import os
import time
from pathlib import Path

import mlkernel as mlk


@mlk.step
def slow():
    Path("step.pid").write_text(str(os.getpid()))
    print("partial output line", flush=True)
    time.sleep(600)


@mlk.pipeline
def sp():
    slow()
"""


def test_runs_logs_of_a_lost_step_shows_its_partial_log(project: Path) -> None:
    # The process running `mlk run` is killed (-9) while a step runs: the step reads
    # `lost`, and `mlk runs logs` printed nothing though the step's partial log exists.
    import signal
    import time

    (project / "slow.py").write_text(SLOW_PIPELINE)
    with (project / "mlkernel.toml").open("a") as f:
        f.write('\n[pipelines]\nsp = "slow.py:sp"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlkernel", "run", "sp"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        logs = project / ".mlkernel" / "logs"
        for _ in range(1200):  # until the step has written its line (at most a minute)
            if any("partial output line" in p.read_text() for p in logs.glob("run-*/slow.log")):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the step never wrote its line")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        step_pid = project / "step.pid"  # the step runs in its own session: end it too
        if step_pid.exists():
            os.kill(int(step_pid.read_text()), signal.SIGKILL)
    with mlkernel.open(project) as k:
        run_id = k.pipelines.runs(limit=1)[0].record.id
    done = mlk(project, "runs", "logs", str(run_id))
    assert done.returncode == 0, done.stderr
    assert "partial output line" in done.stdout and "lost" in done.stdout, done.stdout


def test_runs_logs_of_a_tracked_run_says_plainly_there_are_none(project: Path) -> None:
    with mlkernel.open(project) as k, k.start_run("train") as run:
        run.log_metric("loss", 1.0)
    done = mlk(project, "runs", "logs", str(run.id))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "a run run" not in done.stderr
    assert "tracked run" in done.stderr and f"mlk runs show {run.id}" in done.stderr


BAD_METRIC_PIPELINE = """
import mlkernel as mlk


@mlk.step
def score():
    return 1, mlk.Metrics(accuracy=0.9, note="abc")


@mlk.step
def odd(x):
    return x, mlk.Metrics(loss=float("nan"), worst=float("-inf"))


@mlk.pipeline
def bad():
    score()


@mlk.pipeline
def nan():
    odd(1)
"""


def test_a_step_metric_that_is_not_a_number_fails_the_step_naming_step_and_key(
    project: Path,
) -> None:
    # mlk.Metrics(note="abc") reached a bare float(v) in the worker: the step failed with
    # "could not convert string to float: 'abc'", naming neither the metric nor the cause.
    with pytest.raises(mlkernel.errors.UsageError, match="metric 'note' is 'abc'"):
        mlkernel.Metrics(note="abc")
    (project / "bad.py").write_text(BAD_METRIC_PIPELINE)
    with (project / "mlkernel.toml").open("a") as f:
        f.write('\n[pipelines]\nbad = "bad.py:bad"\nnan = "bad.py:nan"\n')
    done = mlk(project, "run", "bad")
    assert done.returncode == 1, done.stderr
    (summary,) = [line for line in done.stderr.splitlines() if "failed:" in line]
    assert "step score failed" in summary and "metric 'note' is 'abc'" in summary, summary
    # NaN and infinite step metrics are numbers: kept and shown
    done = mlk(project, "run", "nan")
    assert done.returncode == 0, done.stderr
    assert "loss=nan" in done.stdout and "worst=-inf" in done.stdout, done.stdout


def test_a_folder_or_glob_holding_an_unreadable_entry_is_refused_in_one_line(
    project: Path,
) -> None:
    # `mlk data add /` ended in exit 70 (PermissionError on /proc/1/cwd); a link whose
    # target name is too long to look up fails the same way, as root too.
    folder = project / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("a\n1\n")
    (folder / "link").symlink_to("x" * 300)
    for target in (str(folder), f"{folder}/*"):
        done = mlk(project, "data", "add", target, "--name", "d")
        assert done.returncode == 2, (target, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert "cannot read" in done.stderr and "link" in done.stderr, done.stderr


def test_an_output_in_a_folder_that_refuses_new_files_is_not_called_missing(project: Path) -> None:
    (project / "t.csv").write_text("a\n1\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    done = mlk(project, "data", "export", "t", "-o", "/proc/t.csv")
    assert done.returncode == 2 and "does not exist" not in done.stderr, done.stderr
    assert "cannot be made in /proc" in done.stderr


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ('drift_share = "x"', "[monitor.drift] drift_share must be a number"),
        ("drift_share = true", "must be a number"),
        ("quantile_bins = 2.5", "[monitor.drift] quantile_bins must be an integer"),
        ("columns = 3", "[monitor.drift] columns must be a table"),
        ("columns = { a = 3 }", "[monitor.drift.columns.a] must be a table"),
        ('columns = { a = { threshold = "x" } }', "threshold must be a number, got 'x'"),
    ],
)
def test_a_drift_setting_of_the_wrong_type_is_a_one_line_config_error(
    project: Path, setting: str, words: str
) -> None:
    # drift_share = "x" in [monitor.drift] ended `mlk data drift` in exit 70 (TypeError).
    (project / "t.csv").write_text("a\n1\n2\n3\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    with (project / "mlkernel.toml").open("a") as f:
        f.write(f"\n[monitor.drift]\n{setting}\n")
    done = mlk(project, "data", "drift", "t@1", "t@1")
    assert done.returncode == 3, done.stderr
    assert "internal error" not in done.stderr and words in done.stderr, done.stderr


def test_init_where_no_folder_can_be_made_is_a_one_line_error(tmp_path: Path) -> None:
    # `mlk init /proc/x` ended in exit 70 (FileNotFoundError from mkdir).
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in ("/proc/mlk-test-project", str(blocker / "p")):
        done = mlk(tmp_path, "init", target)
        assert done.returncode == 2, (target, done.stderr)
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
        assert f"cannot create a project in {target}" in done.stderr, done.stderr


def test_alias_rollback_of_a_removed_alias_says_so_not_none(project: Path) -> None:
    with mlkernel.open(project) as k:
        k.log_artifact(b"one", kind="model", name="m")
    assert mlk(project, "alias", "set", "model:m@1", "prod").returncode == 0
    assert mlk(project, "alias", "rm", "model:m", "prod").returncode == 0
    done = mlk(project, "alias", "rollback", "model:m", "prod")
    assert done.returncode == 0, done.stderr
    assert "None" not in done.stdout and "model:m@prod → version 1" in done.stdout, done.stdout


def test_output_to_dev_stdout_is_written_to_stdout_not_replaced_by_a_file(
    project: Path,
) -> None:
    # `mlk get REF -o /dev/stdout --force` (and data export, drift --html) renamed a
    # temporary file onto the path: as root that replaced the /dev/stdout link with a plain
    # file holding the output, and nothing reached stdout. A link of our own to
    # /proc/self/fd/1 stands in for /dev/stdout here, so a failure cannot harm the machine.
    (project / "t.csv").write_text("a\n1\n2\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    with mlkernel.open(project) as k:
        k.log_artifact(b"model bytes", kind="model", name="m")
    stdout = project / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    for args, expect in (
        (("data", "export", "t", "-o", str(stdout), "--format", "csv"), '"a"\n1\n2\n'),
        (("get", "model:m", "-o", str(stdout)), "model bytes"),
        (("get", "model:m", "-o", str(stdout), "--force"), "model bytes"),
    ):
        done = mlk(project, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout == expect, (args, done.stdout)
        assert stdout.is_symlink(), f"{args} replaced the link by a file"
    done = mlk(project, "data", "drift", "t@1", "t@1", "--html", str(stdout))
    assert done.returncode == 0 and done.stdout.startswith("<!"), done.stdout[:200]
    assert stdout.is_symlink()


def test_a_schema_naming_a_column_the_file_lacks_is_refused_not_ignored(project: Path) -> None:
    # A typo in --schema ({"prcie": "float32"}) silently did nothing: the column it meant
    # was inferred and the version made anyway.
    (project / "t.csv").write_text("price,city\n1,a\n2,b\n")
    (project / "schema.json").write_text('{"columns": {"prcie": "float32"}}')
    done = mlk(project, "data", "add", "t.csv", "--schema", "schema.json")
    assert done.returncode == 2, done.stdout
    assert "'prcie'" in done.stderr and "price, city" in done.stderr, done.stderr
    with mlkernel.open(project) as k:
        assert not k.context.table.versions("dataset", "t")


def test_a_dataset_altered_on_disk_reads_as_damaged_not_internal_error(project: Path) -> None:
    # Datasets are memory-mapped without re-hashing; an object altered on disk made
    # `mlk data head` fail with "internal error: ArrowInvalid: Not an Arrow file".
    (project / "t.csv").write_text("a,b\n1,x\n2,y\n")
    assert mlk(project, "data", "add", "t.csv").returncode == 0
    with mlkernel.open(project) as k:
        path = k.data.ipc_path("t")
    path.chmod(0o644)
    with path.open("ab") as f:
        f.write(b"junk")
    for args in (
        ("data", "head", "t"),
        ("data", "export", "t", "-o", "out.csv"),
        ("data", "profile", "t", "--force"),
    ):
        done = mlk(project, *args)
        assert done.returncode == 6, (args, done.stderr)
        assert "internal error" not in done.stderr and "mlk verify" in done.stderr, done.stderr
    assert not (project / "out.csv").exists()


def test_a_date_column_is_profiled_and_its_drift_report_made(project: Path) -> None:
    # Dates like 2012/01/01 are ingested as date32 now; profiling one (mlk data profile,
    # and so every drift report and the watcher) ended in exit 70: "Unsupported cast from
    # date32[day] to int64".
    (project / "w1.csv").write_text("date,temp\n2012/01/01,1.5\n2012/01/02,2.5\n2012/01/03,3\n")
    (project / "w2.csv").write_text("date,temp\n2013/01/01,1.5\n2013/01/02,2.5\n2013/01/03,3\n")
    assert mlk(project, "data", "add", "w1.csv", "--name", "w").returncode == 0
    assert mlk(project, "data", "add", "w2.csv", "--name", "w").returncode == 0
    done = mlk(project, "data", "profile", "w@1")
    assert done.returncode == 0, done.stderr
    assert "datetime" in done.stdout
    done = mlk(project, "data", "drift", "w@1", "w@2")
    assert done.returncode == 0, done.stderr
    date_row = next(line for line in done.stdout.splitlines() if line.split()[:1] == ["date"])
    assert "datetime" in date_row, date_row  # profiled; not drift-tested by default


def test_the_watcher_stopping_its_inotify_observer_prints_no_watchdog_noise(
    project: Path,
) -> None:
    # `mlk data watch --once` now and then ended by printing watchdog's own log line
    # "InotifyEmitter.queue_events() called when the thread is inactive" (a read racing the
    # stop). The race is rare, so the script logs that line itself once the watcher is done;
    # a subprocess, as `mlk` runs: no logging set up, so Python would print it.
    (project / "inc").mkdir()
    with (project / "mlkernel.toml").open("a") as f:
        f.write('\n[[watch]]\npath = "inc/*.csv"\ndataset = "w"\ndebounce = 0.1\n')
    script = (
        "import logging, mlkernel\n"
        "with mlkernel.open() as k:\n"
        "    k.monitor.watcher(poll=0.05).run(max_seconds=0.2)\n"
        "logging.getLogger('watchdog.observers.inotify').error(\n"
        "    'InotifyEmitter.queue_events() called when the thread is inactive')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "queue_events" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("def x(:\n", "line 1: invalid syntax"),
        ("import nosuchmodule_mlk\n", "ModuleNotFoundError: No module named 'nosuchmodule_mlk'"),
        ("x = 1 / 0\n", "ZeroDivisionError: division by zero (at broken.py:1)"),
    ],
)
def test_a_pipeline_file_that_fails_to_load_is_a_one_line_error(
    project: Path, code: str, words: str
) -> None:
    # A syntax error or a failing import in the pipeline's own file ended `mlk run` (and
    # pipelines show) in exit 70, "internal error: SyntaxError", as if mlkernel were at fault.
    (project / "broken.py").write_text(code)
    for args in (("run", "broken.py:p"), ("pipelines", "show", "broken.py:p")):
        done = mlk(project, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "internal error" not in done.stderr and words in done.stderr, done.stderr
        assert "broken.py" in done.stderr


def test_triggers_fire_says_why_nothing_ran(project: Path) -> None:
    # `mlk triggers fire t` of a trigger whose pipeline cannot load printed "trigger t
    # fired" and exited 1 with no word of why; run-pending said "run None error: ...".
    (project / "broken.py").write_text("def x(:\n")
    with (project / "mlkernel.toml").open("a") as f:
        f.write('\n[triggers.t]\npipeline = "broken.py:p"\ncron = "* * * * *"\n')
    done = mlk(project, "triggers", "fire", "t")
    assert done.returncode == 1
    assert "no run started" in done.stdout and "invalid syntax" in done.stdout, done.stdout
    done = mlk(project, "triggers", "run-pending", "--now", "2099-01-01T00:00")
    assert done.returncode == 1
    assert "None" not in done.stdout and "no run started" in done.stdout, done.stdout


def test_a_workbook_zip_or_image_is_named_not_parsed_as_text(project: Path) -> None:
    # An .xlsx (a zip) got "has no header line"; a PNG got "pass --encoding latin-1".
    import zipfile

    with zipfile.ZipFile(project / "book.xlsx", "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>" * 50)
    (project / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    for name, words in (("book.xlsx", "zip archive"), ("plot.png", "PNG image")):
        done = mlk(project, "data", "add", name, "--name", "d")
        assert done.returncode == 2, done.stdout
        assert words in done.stderr and "not a data file" in done.stderr, done.stderr
        assert "--encoding" not in done.stderr and "header" not in done.stderr

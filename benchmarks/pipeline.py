"""Pipeline benchmark: ``mlk run`` against ``dvc repro`` on the same 5 stages, in one run.

    .venv/bin/python benchmarks/pipeline.py              # 7 repeats of each figure
    .venv/bin/python benchmarks/pipeline.py --quick      # 3 repeats
    .venv/bin/python benchmarks/pipeline.py --no-dvc     # mlkernel only
    .venv/bin/python benchmarks/pipeline.py --json out.json

Both sides run a chain of 5 trivial stages (stage 1 reads ``data/input.txt``, stage i
reads stage i-1's output; each upper-cases and appends a line) as whole processes, start-up
included, timed with ``time.perf_counter`` around ``subprocess.run``:

- first run: a fresh project each repeat (creating it is not timed);
- no-op rerun: nothing changed, every stage is reused from the cache;
- rerun after changing the first input: all 5 stages run again;
- ``dvc status`` (DVC only), for reference;
- process-executor overhead per step: ``mlk run --force`` with ``--executor process``
  against ``--executor inline``, the difference divided by 5.

DVC runs from its own venv, ``.venv-dvc`` at the repository root (git-ignored), created on
first use; its stages run ``python stage.py i`` under this interpreter, as mlkernel's
worker does. Medians of the repeats are reported (other work may share the machine: the
load average is printed before and after). ML mode is off on the mlkernel side
(``[pipelines] ml_mode = false``) so that the scheduler controller is not part of the
figure. Bytecode caching is on for both sides (PYTHONDONTWRITEBYTECODE is removed from the
children's environment), as in an installed tool.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DVC_VENV = REPO / ".venv-dvc"
DVC_SPEC = "dvc>=3,<4"
MLK = Path(sys.executable).with_name("mlk")
STAGES = 5

PIPELINE = """
import mlkernel as mlk


def work(text: str, i: int) -> str:
    return text.upper() + f"stage {i}\\n"


@mlk.step
def s1(data: mlk.Artifact) -> str:
    return work(data.read_bytes().decode(), 1)


@mlk.step
def s2(text: str) -> str:
    return work(text, 2)


@mlk.step
def s3(text: str) -> str:
    return work(text, 3)


@mlk.step
def s4(text: str) -> str:
    return work(text, 4)


@mlk.step(output="file:result")
def s5(text: str) -> str:
    return work(text, 5)


@mlk.pipeline
def bench() -> None:
    s5(s4(s3(s2(s1(mlk.Ref.file("data/input.txt"))))))
"""

STAGE = """
import sys
from pathlib import Path

i = int(sys.argv[1])
source = Path("data/input.txt") if i == 1 else Path(f"out{i - 1}.txt")
Path(f"out{i}.txt").write_text(source.read_text().upper() + f"stage {i}\\n")
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return elapsed


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# -- mlkernel --------------------------------------------------------------------------


def _mlk_project(root: Path) -> Path:
    subprocess.run([str(MLK), "init", str(root), "--name", "bench"], check=True,
                   capture_output=True, env=_env())  # fmt: skip
    (root / "pipes.py").write_text(PIPELINE)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("hello\n")
    with (root / "mlkernel.toml").open("a") as handle:
        handle.write('\n[pipelines]\nbench = "pipes.py:bench"\nml_mode = false\n')
    return root


def _mlk(root: Path, *extra: str) -> float:
    return _timed([str(MLK), "run", "bench", "-q", *extra], root)


# -- DVC -------------------------------------------------------------------------------


def _dvc_bin() -> Path:
    dvc = DVC_VENV / "bin" / "dvc"
    if dvc.exists():
        return dvc
    print(f"creating {DVC_VENV} with {DVC_SPEC} (first use only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        cmd = [str(uv), "pip", "install", "-q", "--python", str(DVC_VENV / "bin" / "python")]
    else:
        cmd = [str(DVC_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*cmd, DVC_SPEC], check=True)
    return dvc


def _dvc_project(root: Path, dvc: Path) -> Path:
    root.mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("hello\n")
    (root / "stage.py").write_text(STAGE)
    stages = []
    for i in range(1, STAGES + 1):
        dep = "data/input.txt" if i == 1 else f"out{i - 1}.txt"
        stages.append(
            f"  s{i}:\n    cmd: {sys.executable} stage.py {i}\n"
            f"    deps:\n      - stage.py\n      - {dep}\n    outs:\n      - out{i}.txt\n"
        )
    (root / "dvc.yaml").write_text("stages:\n" + "".join(stages))
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=root, check=True, env=_env())
    subprocess.run([str(dvc), "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def _dvc(root: Path, dvc: Path, *args: str) -> float:
    return _timed([str(dvc), *(args or ("repro",))], root)


# -- the workloads ---------------------------------------------------------------------


def _median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def _side(
    name: str,
    fresh: Callable[[Path], Path],
    run: Callable[..., float],
    repeats: int,
    tmp: Path,
) -> dict[str, float]:
    figures: dict[str, float] = {}
    counter = iter(range(10_000))

    def first() -> float:
        root = fresh(tmp / f"{name}-first-{next(counter)}")
        return run(root)

    figures["first"] = _median(first, repeats)
    root = fresh(tmp / f"{name}-main")
    run(root)
    run(root)  # warm the OS caches and bytecode
    figures["noop"] = _median(lambda: run(root), repeats)
    edits = iter(range(10_000))

    def changed() -> float:
        (root / "data" / "input.txt").write_text(f"hello {next(edits)}\n")
        return run(root)

    figures["changed"] = _median(changed, repeats)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--no-dvc", action="store_true", help="mlkernel only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    print(f"pipeline benchmark: {STAGES} trivial stages, median of {repeats} whole-process runs")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {_load()}")
    tmp = Path(tempfile.mkdtemp(prefix="mlk-bench-pipeline-"))
    results: dict[str, dict[str, float]] = {}
    try:
        mlk = _side("mlk", _mlk_project, _mlk, repeats, tmp)
        root = tmp / "mlk-main"
        inline = _median(lambda: _mlk(root, "--force", "--executor", "inline"), repeats)
        process = _median(lambda: _mlk(root, "--force", "--executor", "process"), repeats)
        mlk["inline_force"], mlk["process_force"] = inline, process
        mlk["per_step_overhead"] = (process - inline) / STAGES
        results["mlkernel"] = mlk
        print(f"mlkernel done, load {_load()}")
        if not args.no_dvc:
            dvc = _dvc_bin()
            version = subprocess.run([str(dvc), "--version"], capture_output=True, text=True)
            print(f"DVC {version.stdout.strip()}")
            figures = _side("dvc", lambda r: _dvc_project(r, dvc), lambda r: _dvc(r, dvc),
                            repeats, tmp)  # fmt: skip
            figures["status"] = _median(lambda: _dvc(tmp / "dvc-main", dvc, "status"), repeats)
            results["dvc"] = figures
            print(f"DVC done, load {_load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _report(results: dict[str, dict[str, float]]) -> None:
    mlk, dvc = results["mlkernel"], results.get("dvc", {})
    print()
    print(f"{'workload':<34} {'mlkernel':>10} {'DVC':>10} {'DVC/mlk':>8}  goal")
    rows = [
        ("first run", "first", None),
        ("no-op rerun (all cached)", "noop", "DVC/mlk >= 5 and mlk < 160 ms"),
        ("rerun after changing the input", "changed", None),
    ]
    for label, key, goal in rows:
        mine, theirs = mlk[key], dvc.get(key)
        ratio = f"{theirs / mine:>7.1f}x" if theirs else f"{'-':>8}"
        verdict = ""
        if goal is not None:
            ok = mine < 0.160 and (theirs is None or theirs / mine >= 5)
            verdict = f"{goal}: {'PASS' if ok else 'MISS'}"
        theirs_text = f"{theirs * 1000:>8.0f}ms" if theirs else f"{'-':>10}"
        print(f"{label:<34} {mine * 1000:>8.0f}ms {theirs_text} {ratio}  {verdict}")
    if "status" in dvc:
        print(f"{'dvc status':<34} {'-':>10} {dvc['status'] * 1000:>8.0f}ms")
    overhead = mlk["per_step_overhead"] * 1000
    print(
        f"process executor overhead per step: {overhead:.0f} ms "
        f"(--force, process {mlk['process_force'] * 1000:.0f} ms - inline "
        f"{mlk['inline_force'] * 1000:.0f} ms, / {STAGES}); goal < 50 ms: "
        f"{'PASS' if overhead < 50 else 'MISS'}"
    )


if __name__ == "__main__":
    sys.exit(main())

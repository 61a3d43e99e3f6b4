"""Tracking benchmark: mlkernel against MLflow 3.x on SQLite, on this machine, in one run.

    .venv/bin/python benchmarks/tracking.py            # full counts (a few minutes)
    .venv/bin/python benchmarks/tracking.py --quick    # smaller counts (under a minute)

The parent process runs each side as a child process: the mlkernel side under this
interpreter (the project's venv), the MLflow side under ``.venv-mlflow/bin/python``, a
venv of its own (created on first use) because MLflow pins libraries that clash with the
project's. Each child re-invokes this file with ``--peer NAME --out FILE`` and writes its
figures as JSON; the parent prints them side by side with the ratio and the goal from
issue 2, item 10. All data lives in temporary folders that are removed afterwards.

This file imports neither mlkernel nor mlflow at module level, so either venv can load it.
See benchmarks/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MLFLOW_VENV = REPO / ".venv-mlflow"
MLFLOW_SPEC = "mlflow>=3,<4"

PARAMS = {"lr": 0.01, "max_depth": 6, "optimizer": "adam", "batch_size": 64, "seed": 0}
RUN_METRICS = {"loss": 0.25, "accuracy": 0.91, "auc": 0.95, "f1": 0.88, "precision": 0.9}
BATCH_KEYS = 100  # metric keys per step in the batch workload
MLFLOW_BATCH = 1000  # MLflow's log_batch accepts at most 1,000 metrics a call
OPEN_PER_RUN = 100  # artifacts (model versions) produced per run in the 10k project
OPEN_REPEATS = 5
COLD_REPEATS = 3


@dataclass(frozen=True)
class Counts:
    single: int = 1_000  # log_metric calls, one at a time, timed with the run's end
    single_raw: int = 200_000  # the same, over a larger count (mlkernel only)
    batch: int = 10_000  # metrics logged in batches
    runs: int = 200  # runs with 5 params and 5 metrics each
    resolves: int = 10_000  # alias resolutions
    artifacts: int = 10_000  # artifacts in the project that is opened


QUICK = Counts(
    single=1_000, single_raw=20_000, batch=2_000, runs=20, resolves=1_000, artifacts=1_000
)


def _progress(side: str, text: str) -> None:
    print(f"[{side}] {text}", file=sys.stderr, flush=True)


def _run_figures(whole: list[float], starts: list[float], stored: int) -> dict[str, Any]:
    """The run workload's figures, the same for both sides."""
    n = len(whole)
    return {
        "n": n,
        "mean_s": sum(whole) / n,
        "median_s": _median(whole),
        "start_median_s": _median(starts),
        "stored": stored,
    }


def _median(values: list[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------------------
# mlkernel side (runs under the project's venv)
# --------------------------------------------------------------------------------------


def _mlk_single(k: Any, n: int, name: str) -> dict[str, Any]:
    """``n`` log_metric calls in one run; timed up to the end of the ``with`` block."""
    with k.start_run(name) as run:
        t0 = time.perf_counter()
        for i in range(n):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    stored = len(k.metrics(run.id, "loss"))
    return {"n": n, "calls_s": t1 - t0, "total_s": t2 - t0, "stored": stored}


def _mlk_batch(k: Any, n: int) -> dict[str, Any]:
    steps = n // BATCH_KEYS
    batches = [
        {f"m{j}": (s * BATCH_KEYS + j) * 1e-4 for j in range(BATCH_KEYS)} for s in range(steps)
    ]
    with k.start_run("batch") as run:
        t0 = time.perf_counter()
        for step, metrics in enumerate(batches):
            run.log_metrics(metrics, step=step)
    t1 = time.perf_counter()
    stored = len(k.metrics(run.id))
    return {"n": steps * BATCH_KEYS, "total_s": t1 - t0, "stored": stored}


def _mlk_runs(k: Any, n: int) -> dict[str, Any]:
    whole: list[float] = []
    starts: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        with k.start_run("train", params=PARAMS) as run:
            t1 = time.perf_counter()
            run.log_metrics(RUN_METRICS)
        t2 = time.perf_counter()
        whole.append(t2 - t0)
        starts.append(t1 - t0)
    done = [r for r in k.runs(limit=n + 10, name="train") if r.state == "completed"]
    return _run_figures(whole, starts, len(done))


def _mlk_runs_in_git(mlk: Any, path: Path, n: int) -> dict[str, Any]:
    """The run workload with the project inside a git repository (commit and dirty flag)."""
    path.mkdir()
    (path / "train.py").write_text("print('train')\n")
    git = ["git", "-C", str(path), "-c", "user.name=bench", "-c", "user.email=bench@invalid"]
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "start"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    k = mlk.init(path, name="gitbench")
    try:
        with k.start_run("warmup") as run:
            run.log_metric("x", 1.0)
        return _mlk_runs(k, n)
    finally:
        k.close()


def _mlk_alias(k: Any, n: int) -> dict[str, Any]:
    with k.start_run("fit") as run:
        run.log_artifact({"weights": [0.1, 0.2, 0.3]}, kind="model", name="churn")
    k.alias_set("model:churn@1", "production")
    ref = "model:churn@production"
    record = k.resolve(ref)  # warm
    t0 = time.perf_counter()
    for _ in range(n):
        k.resolve(ref)
    t1 = time.perf_counter()
    return {"n": n, "per_call_s": (t1 - t0) / n, "version": record.version}


def _mlk_prepare(mlk: Any, path: Path, n: int) -> float:
    """A project holding ``n`` artifacts, registered through the metadata store.

    The rows are those ``run.log_artifact`` writes (an artifact version with its producing
    run and an ``out`` event), ``OPEN_PER_RUN`` per run, over ``OPEN_PER_RUN`` names: half
    pickled models (the same properties in every version), half files whose properties
    name their source. Object files are not written: opening a project reads only the
    metadata, and writing 10,000 fsynced objects would only slow the preparation.
    """
    t0 = time.perf_counter()
    k = mlk.init(path, name="big")
    try:
        meta = k.context.meta
        for e in range(max(1, n // OPEN_PER_RUN)):
            exec_id = meta.insert_execution(
                "train", "run", host=k.host, pid=os.getpid(), user=k.user
            )
            for j in range(min(OPEN_PER_RUN, n)):
                i = e * OPEN_PER_RUN + j
                digest = hashlib.sha256(f"artifact {i}".encode()).hexdigest()
                if j % 2:
                    kind, name = "dataset", f"part-{j}"
                    props = {"source": f"/data/exports/part-{j}.parquet", "format": "file"}
                else:
                    kind, name = "model", f"model-{j}"
                    props = {
                        "format": "pickle",
                        "python_type": "sklearn.linear_model._logistic.LogisticRegression",
                    }
                meta.register_artifact(
                    kind,
                    name,
                    digest=digest,
                    uri=k.context.objects.uri(digest),
                    size=1000 + i,
                    properties=props,
                    created_by=k.user,
                    execution_id=exec_id,
                )
            meta.finish_execution(exec_id, "completed")
        meta.set_alias("model", "model-0", "production", 1, k.user)
    finally:
        k.close()
    return time.perf_counter() - t0


_MLK_COLD = """
import json, sys, time
t0 = time.perf_counter()
import mlkernel as mlk
k = mlk.open(sys.argv[1])
t1 = time.perf_counter()
print(json.dumps({"s": t1 - t0, "n": len(k.context.table)}))
k.close()
"""


def _mlk_open(mlk: Any, path: Path, n: int) -> dict[str, Any]:
    prep_s = _mlk_prepare(mlk, path, n)
    mlk.open(path).close()  # warm: modules imported, file in the page cache
    times: list[float] = []
    loaded = 0
    for _ in range(OPEN_REPEATS):
        t0 = time.perf_counter()
        k = mlk.open(path)
        times.append(time.perf_counter() - t0)
        loaded = len(k.context.table)
        k.close()
    cold = [_cold(sys.executable, _MLK_COLD, str(path)) for _ in range(COLD_REPEATS)]
    return {
        "n": loaded,
        "median_s": _median(times),
        "min_s": min(times),
        "cold_median_s": _median([c["s"] for c in cold]),
        "prepare_s": prep_s,
    }


def _cold(python: str, code: str, arg: str) -> dict[str, Any]:
    out = subprocess.run(
        [python, "-c", code, arg], capture_output=True, text=True, check=True, env=_peer_env()
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def mlkernel_peer(counts: Counts, work: Path) -> dict[str, Any]:
    import mlkernel as mlk

    side = "mlkernel"
    res: dict[str, Any] = {
        "version": mlk.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "storage": "SQLite, WAL, synchronous=NORMAL",
        "load_before": os.getloadavg()[0],
    }
    k = mlk.init(work / "project", name="bench")
    try:
        with k.start_run("warmup", params={"x": 1}) as run:  # imports, env cache
            run.log_metric("x", 1.0)
        _progress(side, f"log_metric x{counts.single:,}")
        res["single"] = _mlk_single(k, counts.single, "single")
        _progress(side, f"log_metric x{counts.single_raw:,}")
        res["single_raw"] = _mlk_single(k, counts.single_raw, "single-raw")
        _progress(side, f"log_metrics, {counts.batch:,} in batches")
        res["batch"] = _mlk_batch(k, counts.batch)
        _progress(side, f"{counts.runs} runs")
        res["runs"] = _mlk_runs(k, counts.runs)
        _progress(side, f"resolve alias x{counts.resolves:,}")
        res["alias"] = _mlk_alias(k, counts.resolves)
    finally:
        k.close()
    _progress(side, f"{counts.runs} runs, project inside a git repository")
    res["runs_git"] = _mlk_runs_in_git(mlk, work / "gitproject", counts.runs)
    _progress(side, f"open a {counts.artifacts:,}-artifact project")
    res["open"] = _mlk_open(mlk, work / "big", counts.artifacts)
    res["load_after"] = os.getloadavg()[0]
    return res


# --------------------------------------------------------------------------------------
# MLflow side (runs under .venv-mlflow)
# --------------------------------------------------------------------------------------


def _mf_single(mlflow: Any, client: Any, n: int, synchronous: bool = True) -> dict[str, Any]:
    with mlflow.start_run(run_name="single") as run:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    stored = len(client.get_metric_history(run.info.run_id, "loss"))
    return {"n": n, "calls_s": t1 - t0, "total_s": t2 - t0, "stored": stored}


def _mf_batch(mlflow: Any, client: Any, n: int) -> dict[str, Any]:
    from mlflow.entities import Metric

    steps = n // BATCH_KEYS
    now = int(time.time() * 1000)
    flat = [
        Metric(f"m{j}", (s * BATCH_KEYS + j) * 1e-4, now, s)
        for s in range(steps)
        for j in range(BATCH_KEYS)
    ]
    chunks = [flat[i : i + MLFLOW_BATCH] for i in range(0, len(flat), MLFLOW_BATCH)]
    with mlflow.start_run(run_name="batch") as run:
        run_id = run.info.run_id
        t0 = time.perf_counter()
        for chunk in chunks:
            client.log_batch(run_id, metrics=chunk)
    t1 = time.perf_counter()
    stored = sum(len(client.get_metric_history(run_id, f"m{j}")) for j in range(BATCH_KEYS))
    return {"n": len(flat), "total_s": t1 - t0, "stored": stored}


def _mf_runs(mlflow: Any, client: Any, experiment_id: str, n: int) -> dict[str, Any]:
    whole: list[float] = []
    starts: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        with mlflow.start_run(run_name="train"):
            t1 = time.perf_counter()
            mlflow.log_params(PARAMS)
            mlflow.log_metrics(RUN_METRICS)
        t2 = time.perf_counter()
        whole.append(t2 - t0)
        starts.append(t1 - t0)
    done = client.search_runs(
        [experiment_id],
        filter_string="attributes.run_name = 'train' and attributes.status = 'FINISHED'",
        max_results=n + 10,
    )
    return _run_figures(whole, starts, len(done))


def _mf_alias(mlflow: Any, client: Any, n: int) -> dict[str, Any]:
    with mlflow.start_run(run_name="fit") as run:
        mlflow.log_dict({"weights": [0.1, 0.2, 0.3]}, "model/weights.json")
        source = f"{run.info.artifact_uri}/model"
        run_id = run.info.run_id
    client.create_registered_model("churn")
    client.create_model_version("churn", source=source, run_id=run_id)
    client.set_registered_model_alias("churn", "production", "1")
    version = client.get_model_version_by_alias("churn", "production")  # warm
    t0 = time.perf_counter()
    for _ in range(n):
        client.get_model_version_by_alias("churn", "production")
    t1 = time.perf_counter()
    return {"n": n, "per_call_s": (t1 - t0) / n, "version": int(version.version)}


def _mf_list_versions(client: Any) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(max_results=10_000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _mf_prepare(mlflow: Any, uri: str, n: int) -> float:
    """``n`` registered model versions: ``OPEN_PER_RUN`` names, one version of each per run."""
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("big")
    names = [f"model-{j}" for j in range(min(OPEN_PER_RUN, n))]
    for name in names:
        client.create_registered_model(name)
    for _ in range(max(1, n // OPEN_PER_RUN)):
        run = client.create_run(experiment_id, run_name="train")
        for name in names:
            client.create_model_version(
                name, source=f"{run.info.artifact_uri}/{name}", run_id=run.info.run_id
            )
        client.set_terminated(run.info.run_id)
    client.set_registered_model_alias("model-0", "production", "1")
    return time.perf_counter() - t0


_MF_COLD = """
import json, sys, time
t0 = time.perf_counter()
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
found, token = [], None
while True:
    page = c.search_model_versions(max_results=10000, page_token=token)
    found.extend(page)
    token = page.token
    if not token:
        break
t1 = time.perf_counter()
print(json.dumps({"s": t1 - t0, "n": len(found)}))
"""


def _mf_open(mlflow: Any, work: Path, n: int) -> dict[str, Any]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'big.db'}"
    prep_s = _mf_prepare(mlflow, uri, n)
    _mf_list_versions(MlflowClient(tracking_uri=uri, registry_uri=uri))  # warm
    times: list[float] = []
    loaded = 0
    for _ in range(OPEN_REPEATS):
        t0 = time.perf_counter()
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        loaded = len(_mf_list_versions(client))
        times.append(time.perf_counter() - t0)
    cold = [_cold(sys.executable, _MF_COLD, uri) for _ in range(COLD_REPEATS)]
    return {
        "n": loaded,
        "median_s": _median(times),
        "min_s": min(times),
        "cold_median_s": _median([c["s"] for c in cold]),
        "prepare_s": prep_s,
    }


def _mf_pragmas(client: Any) -> str:
    """The journal mode and synchronous level MLflow's own connections run with."""
    try:
        engine = client._tracking_client.store.engine  # internal; informative only
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    except Exception:
        return "SQLite"
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync))
    return f"SQLite, journal_mode={mode}, synchronous={level}"


def mlflow_peer(counts: Counts, work: Path) -> dict[str, Any]:
    import logging

    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    side = "mlflow"
    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment_id = mlflow.create_experiment("bench", artifact_location=(work / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    client = MlflowClient()
    res: dict[str, Any] = {
        "version": mlflow.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "storage": _mf_pragmas(client),
        "load_before": os.getloadavg()[0],
    }
    with mlflow.start_run(run_name="warmup"):  # imports, run-context providers
        mlflow.log_param("x", 1)
        mlflow.log_metric("x", 1.0)
    _progress(side, f"log_metric x{counts.single:,}")
    res["single"] = _mf_single(mlflow, client, counts.single)
    # Its per-call cost does not fall with the count: each call is its own commit.
    res["single_raw"] = res["single"]
    _progress(side, f"log_metric x{counts.single:,}, synchronous=False")
    res["single_async"] = _mf_single(mlflow, client, counts.single, synchronous=False)
    _progress(side, f"log_batch, {counts.batch:,} in batches")
    res["batch"] = _mf_batch(mlflow, client, counts.batch)
    _progress(side, f"{counts.runs} runs")
    res["runs"] = _mf_runs(mlflow, client, experiment_id, counts.runs)
    _progress(side, f"get_model_version_by_alias x{counts.resolves:,}")
    res["alias"] = _mf_alias(mlflow, client, counts.resolves)
    _progress(side, f"list {counts.artifacts:,} model versions (preparing them takes a while)")
    res["open"] = _mf_open(mlflow, work, counts.artifacts)
    res["load_after"] = os.getloadavg()[0]
    return res


# --------------------------------------------------------------------------------------
# parent: venv, children, report
# --------------------------------------------------------------------------------------


def _peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONWARNINGS="ignore",
    )
    return env


def ensure_mlflow_python(venv: Path) -> Path:
    """``venv``'s interpreter, with MLflow 3.x installed (created on first use)."""
    python = venv / "bin" / "python"
    check = "import mlflow, sys; sys.exit(0 if mlflow.__version__.startswith('3.') else 1)"
    if python.exists():
        ok = subprocess.run([python, "-c", check], capture_output=True, check=False)
        if ok.returncode == 0:
            return python
    base = getattr(sys, "_base_executable", None) or sys.executable
    print(f"creating {venv} with {MLFLOW_SPEC} (once)...", file=sys.stderr, flush=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MLFLOW_SPEC],
        check=True,
    )
    return python


def run_peer(python: Path | str, peer: str, quick: bool, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{peer}.json"
    work = tmp / peer
    work.mkdir()
    cmd = [str(python), str(Path(__file__).resolve()), "--peer", peer]
    cmd += ["--out", str(out), "--work", str(work)] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, env=_peer_env(), check=False, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"the {peer} side failed (exit {done.returncode}); see its output above")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@dataclass(frozen=True)
class Row:
    label: str  # may name counts: {artifacts:,}
    key: str  # "section.field" in a side's results
    unit: str  # "rate" (n / seconds, higher is better), "ms" or "us" (lower is better)
    goal: float | None = None
    peer_key: str | None = None  # MLflow's figure, when it is not under ``key``


ROWS = [
    Row("log_metric one at a time, incl. run end", "single.total_s", "rate", 100_000),
    Row("  the same, larger count, incl. run end", "single_raw.total_s", "rate", 100_000),
    Row("  per call alone (no run end)", "single_raw.calls_s", "rate"),
    Row(
        "  vs MLflow log_metric(synchronous=False)",
        "single.total_s",
        "rate",
        peer_key="single_async.total_s",
    ),
    Row("log metrics in batches, incl. run end", "batch.total_s", "rate"),
    Row("run with 5 params + 5 metrics, mean", "runs.mean_s", "ms", 2.0),
    Row("  median", "runs.median_s", "ms"),
    Row("  start_run alone, median", "runs.start_median_s", "ms"),
    Row("  project in a git repository, mean", "runs_git.mean_s", "ms", 2.0, "runs.mean_s"),
    Row("resolve a model alias, warm", "alias.per_call_s", "us", 5.0),
    Row("open a {artifacts:,}-artifact project", "open.median_s", "ms", 100.0),
    Row("  in a fresh process, incl. imports", "open.cold_median_s", "ms"),
]


def _figure(res: dict[str, Any] | None, key: str, unit: str) -> tuple[float, int] | None:
    """(value in the row's unit, count) for one side, or None when it was not measured."""
    if res is None:
        return None
    section, _, field = key.partition(".")
    data = res.get(section)
    if data is None:
        return None
    n = int(data.get("n", 0))
    seconds = float(data[field])
    if unit == "rate":
        return n / seconds, n
    return seconds * (1e3 if unit == "ms" else 1e6), n


def _fmt(value: float, unit: str) -> str:
    if unit == "rate":
        return f"{value:,.0f}/s"
    return f"{value:,.2f} {unit}"


def report(mlk: dict[str, Any], mf: dict[str, Any] | None, counts: Counts) -> list[dict[str, Any]]:
    """Print the comparison table; return its rows for --json."""
    cols = f"{'workload':<44} {'count':>15} {'mlkernel':>13} {'MLflow':>13} {'ratio':>9}"
    head = f"{cols}  {'goal':<14} status"
    print(head)
    print("-" * len(head))
    table: list[dict[str, Any]] = []
    for row in ROWS:
        mine = _figure(mlk, row.key, row.unit)
        theirs = _figure(mf, row.peer_key or row.key, row.unit)
        if mine is None or (row.peer_key is not None and theirs is None):
            continue
        ratio = None
        if theirs is not None and theirs[0] > 0 and mine[0] > 0:
            ratio = mine[0] / theirs[0] if row.unit == "rate" else theirs[0] / mine[0]
        status = goal = ""
        if row.goal is not None:
            met = mine[0] >= row.goal if row.unit == "rate" else mine[0] < row.goal
            status = "PASS" if met else "MISS"
            goal = (">= " if row.unit == "rate" else "< ") + _fmt(row.goal, row.unit)
        count = f"{mine[1]:,}"
        if theirs is not None and theirs[1] != mine[1]:
            count += f" / {theirs[1]:,}"
        label = row.label.format(**asdict(counts))
        print(
            f"{label:<44} {count:>15} {_fmt(mine[0], row.unit):>13} "
            f"{_fmt(theirs[0], row.unit) if theirs else '-':>13} "
            f"{f'{ratio:,.1f}x' if ratio is not None else '-':>9}  {goal:<14} {status}"
        )
        table.append(
            {
                "workload": label.strip(),
                "unit": "metrics/s" if row.unit == "rate" else row.unit,
                "mlkernel": mine[0],
                "mlkernel_count": mine[1],
                "mlflow": theirs[0] if theirs else None,
                "mlflow_count": theirs[1] if theirs else None,
                "mlkernel_advantage": ratio,
                "goal": goal or None,
                "status": status or None,
            }
        )
    print()
    print(
        "count: operations timed (mlkernel / MLflow where they differ); ratio: times "
        "faster mlkernel is (below 1: slower)"
    )
    _notes(mlk, mf, counts)
    return table


def _notes(mlk: dict[str, Any], mf: dict[str, Any] | None, counts: Counts) -> None:
    load = f"load average {mlk['load_before']:.1f} -> {mlk['load_after']:.1f} (mlkernel side)"
    if mf is not None:
        load += f", {mf['load_before']:.1f} -> {mf['load_after']:.1f} (MLflow side)"
    print(f"machine: {platform.platform(terse=True)}, {os.cpu_count()} CPUs, {load}")
    print(
        f"mlkernel {mlk['version']}: Python {mlk['python']}, "
        f"SQLite {mlk['sqlite']} ({mlk['storage']})"
    )
    if mf is not None:
        print(
            f"MLflow {mf['version']}: Python {mf['python']}, "
            f"SQLite {mf['sqlite']} ({mf['storage']})"
        )
    checks = []
    for side, res in (("mlkernel", mlk), ("MLflow", mf)):
        if res is None:
            continue
        for key in ("single", "single_raw", "single_async", "batch", "runs", "runs_git"):
            data = res.get(key)
            if data is not None and data["stored"] != data["n"]:
                checks.append(f"{side} {key}: {data['stored']} of {data['n']} read back")
        if res["open"]["n"] < counts.artifacts:
            checks.append(f"{side} open: {res['open']['n']} of {counts.artifacts} loaded")
    if checks:
        print("READ-BACK CHECK FAILED: " + "; ".join(checks))
    else:
        print("read-back check: every metric and run logged was read back after its run ended")
    prep = f"mlkernel {mlk['open']['prepare_s']:.1f} s"
    if mf is not None:
        prep += f", MLflow {mf['open']['prepare_s']:.1f} s"
    print(f"preparing the {counts.artifacts:,}-artifact projects took {prep} (not timed above)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke test")
    parser.add_argument("--no-mlflow", action="store_true", help="measure mlkernel only")
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--peer", choices=("mlkernel", "mlflow"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else Counts()

    if args.peer is not None:
        if args.out is None or args.work is None:
            parser.error("--peer needs --out and --work")
        peer = mlkernel_peer if args.peer == "mlkernel" else mlflow_peer
        args.out.write_text(json.dumps(peer(counts, args.work)))
        return 0

    mlflow_python = None if args.no_mlflow else ensure_mlflow_python(args.mlflow_venv)
    with tempfile.TemporaryDirectory(prefix="mlk-bench-") as name:
        tmp = Path(name)
        mlk = run_peer(sys.executable, "mlkernel", args.quick, tmp)
        mf = run_peer(mlflow_python, "mlflow", args.quick, tmp) if mlflow_python else None
    print()
    print(f"counts: {asdict(counts)}" + (" (--quick)" if args.quick else ""))
    table = report(mlk, mf, counts)
    if args.json is not None:
        payload = {"counts": asdict(counts), "mlkernel": mlk, "mlflow": mf, "table": table}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

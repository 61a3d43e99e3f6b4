"""Runs, metrics, params, artifacts and aliases, on SQLite and on PostgreSQL."""

import os
import time
from pathlib import Path
from typing import Any

import pytest

import mlkernel
from mlkernel.errors import ConflictError, InvalidNameError, NotFoundError, UsageError
from mlkernel.kernel import Kernel


def test_run_records_params_metrics_and_outputs(project: Kernel) -> None:
    with project.start_run("train", params={"lr": 0.1, "layers": [3, 4]}) as run:
        for i in range(25):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_metrics({"acc": 0.5, "f1": 0.25}, step=7)
        model = run.log_artifact({"weights": [1, 2, 3]}, kind="model", name="churn")
    info = project.run_info(run.id)
    assert info.record.state == "completed"
    assert info.params == {"lr": 0.1, "layers": [3, 4]}
    assert info.metrics["loss"].steps == 25
    assert info.metrics["loss"].last == pytest.approx(1 / 25)
    assert info.metrics["acc"].last == 0.5
    assert info.outputs == ["model:churn@1"]
    assert info.environment is not None and info.environment.startswith("env:python@")
    assert info.record.resources["metrics"] == 27
    steps = [step for _key, step, _v, _ts in project.metrics(run.id, "loss")]
    assert steps == list(range(25))
    assert project.load(model.ref) == {"weights": [1, 2, 3]}


def test_failed_run_keeps_metrics_and_error(project: Kernel) -> None:
    run_id = None
    with pytest.raises(RuntimeError), project.start_run("train") as run:
        run_id = run.id
        for i in range(10):
            run.log_metric("loss", float(i))
        raise RuntimeError("diverged")
    assert run_id is not None
    info = project.run_info(run_id)
    assert info.record.state == "failed"
    assert (info.record.error or "").startswith("RuntimeError: diverged")
    assert info.metrics["loss"].steps == 10


def test_interrupted_run_is_cancelled(project: Kernel) -> None:
    with pytest.raises(KeyboardInterrupt), project.start_run("train") as run:
        raise KeyboardInterrupt
    assert project.run_info(run.id).record.state == "cancelled"


def test_metrics_flush_in_batches_before_the_run_ends(project: Kernel) -> None:
    with project.start_run("train") as run:
        for i in range(project.config.tracking.flush_rows + 3):
            run.log_metric("m", i)
        # one full batch is already in the database, the rest still buffered
        assert len(project.metrics(run.id)) == project.config.tracking.flush_rows
    assert len(project.metrics(run.id)) == project.config.tracking.flush_rows + 3


def test_bad_metric_input(project: Kernel) -> None:
    with project.start_run("train") as run:
        with pytest.raises(UsageError, match="not a number"):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError):
            run.log_metric("", 1.0)
        run.log_param("seed", 1)
        with pytest.raises(ConflictError, match="set once"):
            run.log_param("seed", 2)


def test_versions_dedupe_and_digests(project: Kernel, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"a" * 1000)
    first = project.log_artifact(source, kind="model", name="net")
    again = project.log_artifact(source, kind="model", name="net")
    assert again.id == first.id  # same content: no new version
    source.write_bytes(b"b" * 1000)
    second = project.log_artifact(source, kind="model", name="net")
    assert (first.version, second.version) == (1, 2)
    assert first.digest != second.digest
    assert project.resolve("net").version == 2
    assert project.resolve("model:net@1").digest == first.digest
    assert project.path("net@1").read_bytes() == b"a" * 1000
    forced = project.log_artifact(source, kind="model", name="net", dedupe=False)
    assert forced.version == 3 and forced.digest == second.digest


def test_directories_are_stored_deterministically(project: Kernel, tmp_path: Path) -> None:
    for sub in ("a", "b"):
        folder = tmp_path / sub
        (folder / "inner").mkdir(parents=True)
        (folder / "inner" / "x.txt").write_text("same")
        (folder / "y.txt").write_text("also same")
    one = project.log_artifact(tmp_path / "a", kind="model", name="dir")
    two = project.log_artifact(tmp_path / "b", kind="model", name="dir2")
    assert one.digest == two.digest


def test_aliases_move_and_roll_back(project: Kernel) -> None:
    for value in range(3):
        project.log_artifact({"v": value}, kind="model", name="churn")
    record, before = project.alias_set("model:churn@1", "production")
    assert (record.version, before) == (1, None)
    _, before = project.alias_set("model:churn@3", "production")
    assert before == 1
    assert project.resolve("model:churn@production").version == 3
    record, before = project.alias_rollback("model:churn", "production")
    assert (record.version, before) == (1, 3)
    history = project.show("churn").alias_history
    assert [(h.from_version, h.to_version) for h in history] == [(None, 1), (1, 3), (3, 1)]
    assert project.alias_rm("model:churn", "production") == 1
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        project.resolve("churn@production")


def _table(value: int) -> Any:
    """A one-cell table: datasets are ingested, so they are logged as tables."""
    import pyarrow as pa

    return pa.table({"x": [value]})


def test_unknown_references_name_the_fix(project: Kernel) -> None:
    project.log_artifact({"v": 1}, kind="model", name="churn")
    project.log_artifact(_table(1), kind="dataset", name="train")
    with pytest.raises(NotFoundError, match="did you mean 'churn'"):
        project.resolve("chrun")
    with pytest.raises(NotFoundError, match=r"no version 7 \(latest is 1\)"):
        project.resolve("model:churn@7")
    with pytest.raises(NotFoundError, match="no model named 'train'"):
        project.resolve("model:train")
    project.log_artifact(_table(2), kind="dataset", name="churn")
    with pytest.raises(InvalidNameError, match="write dataset:churn or model:churn"):
        project.resolve("churn")


def test_environment_is_stored_once(project: Kernel) -> None:
    for _ in range(3):
        with project.start_run("train"):
            pass
    envs = project.ls("env")
    assert len(envs) == 1 and envs[0].version == 1
    runs = project.runs()
    assert {r.env_artifact_id for r in runs} == {envs[0].id}


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "repo"
    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    with mlkernel.init(root, name="repo") as k:
        with k.start_run("clean") as clean:
            pass
        (root / "train.py").write_text("print(2)\n")
        with k.start_run("dirty") as dirty:
            pass
    # git answers may land after a short run ends; closing the kernel waits for them
    with mlkernel.open(root) as k:
        assert k.context.meta.get_execution(clean.id).git_commit == head.strip()
        assert k.context.meta.get_execution(clean.id).git_dirty is False
        assert k.context.meta.get_execution(dirty.id).git_dirty is True


def test_lineage_closure_in_both_directions(project: Kernel) -> None:
    raw = project.log_artifact(_table(1), kind="dataset", name="raw")
    with project.start_run("prepare", inputs=["dataset:raw"]) as prep:
        prep.log_artifact(_table(2), kind="dataset", name="features")
    with project.start_run("train", inputs=["dataset:features"]) as train:
        train.log_artifact({"w": 1}, kind="model", name="churn")
    with project.start_run("evaluate", inputs=["model:churn"]) as ev:
        ev.log_artifact(b"report", kind="report", name="eval")

    up = project.lineage("report:eval", "up")
    assert {(up.artifacts[e.parent_id].ref, e.depth) for e in up.edges} == {
        ("model:churn@1", 1),
        ("dataset:features@1", 2),
        ("dataset:raw@1", 3),
    }
    down = project.lineage("dataset:raw", "down")
    assert {(down.artifacts[e.child_id].ref, e.depth) for e in down.edges} == {
        ("dataset:features@1", 1),
        ("model:churn@1", 2),
        ("report:eval@1", 3),
    }
    near = project.lineage("dataset:raw", "down", depth=1)
    assert [
        (near.artifacts[e.parent_id].id, near.artifacts[e.child_id].ref) for e in near.edges
    ] == [(raw.id, "dataset:features@1")]


def test_gc_removes_only_unreferenced_objects(project: Kernel) -> None:
    kept = project.log_artifact(b"kept", kind="file", name="kept")
    orphan_digest, _ = project.context.objects.put_bytes(b"orphan")
    old = time.time() - 3600  # older than the grace period that protects young objects
    os.utime(project.context.objects.path(orphan_digest), (old, old))
    dry = project.gc()
    assert dry.dry_run and orphan_digest in dry.removed and kept.digest not in dry.removed
    assert project.context.objects.exists(orphan_digest)
    done = project.gc(dry_run=False)
    assert orphan_digest in done.removed
    assert not project.context.objects.exists(orphan_digest)
    assert project.context.objects.exists(kept.digest)


def test_gc_keeps_companion_objects(project: Kernel) -> None:
    companion, _ = project.context.objects.put_bytes(b"parquet copy")
    project.log_artifact(b"main", kind="file", name="d", properties={"objects": {"pq": companion}})
    assert companion not in project.gc(dry_run=False, grace=0).removed
    assert project.context.objects.exists(companion)


def test_status_summarises(project: Kernel) -> None:
    with project.start_run("train") as run:
        run.log_metric("loss", 1.0)
        run.log_artifact({"w": 1}, kind="model", name="churn")
    project.alias_set("model:churn@1", "production")
    status = project.status()
    assert status.artifacts["model"].versions == 1
    assert status.runs == {"completed": 1}
    assert status.metrics == 1
    assert status.aliases == [("production", "model:churn@1")]
    assert status.objects >= 2
    assert status.to_dict()["aliases"] == [{"ref": "model:churn@1", "alias": "production"}]


def test_init_refuses_existing_project(project: Kernel) -> None:
    with pytest.raises(ConflictError, match="already an mlkernel project"):
        mlkernel.init(project.root)


def test_open_finds_project_from_subfolder(project: Kernel) -> None:
    sub = project.root / "src" / "deep"
    sub.mkdir(parents=True)
    with mlkernel.open(sub) as k:
        assert k.name == project.name


def test_a_closed_project_handle_is_refused_in_one_line(project: Kernel) -> None:
    # After k.close() SQLite raised sqlite3.ProgrammingError ("Cannot operate on a closed
    # database", or a StorageError saying to check permissions) and PostgreSQL quietly
    # opened new connections; both now refuse the same way.
    project.log_artifact(b"x", kind="model", name="m")
    project.close()
    calls = (
        project.ls,
        lambda: project.resolve("model:m"),
        lambda: project.start_run("r"),
        lambda: project.log_artifact(b"y", kind="model", name="m"),
    )
    for call in calls:
        with pytest.raises(UsageError, match="project handle is closed"):
            call()

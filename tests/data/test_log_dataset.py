"""A dataset is made by ingest, always: ``log_artifact(kind="dataset")`` and in-memory
tables go through ``k.data.add``, and what is not an ingested dataset is refused in one
line by every data command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.cli.main import main
from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    path.write_text("a,b\n1,x\n2,y\n3,x\n")
    return path


def test_log_artifact_of_a_file_ingests_it(project: Kernel, tmp_path: Path) -> None:
    record = project.log_artifact(_csv(tmp_path), kind="dataset", name="train")
    assert record.ref == "dataset:train@1"
    assert record.properties["rows"] == 3 and record.properties["columns"] == 2
    table = project.data.open("train")
    assert table.column("a").to_pylist() == [1, 2, 3]
    assert project.data.show("train").properties["rows"] == 3
    # The same bytes again are the same version, as with `data add`.
    assert project.log_artifact(_csv(tmp_path), kind="dataset", name="train").version == 1


@pytest.mark.parametrize("flavour", ["pandas", "polars", "arrow"])
def test_tables_are_ingested_with_the_run_as_producer(project: Kernel, flavour: str) -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    columns = {"x": [1.5, 2.5, 3.5], "city": ["a", "b", "a"]}
    make: dict[str, Callable[[], object]] = {
        "pandas": lambda: pd.DataFrame(columns),
        "polars": lambda: pl.DataFrame(columns),
        "arrow": lambda: pa.table(columns),
    }
    added = project.data.add(make[flavour](), name="direct")
    assert added.created and added.record.properties["rows"] == 3
    with project.start_run("prepare") as run:
        record = run.log_artifact(make[flavour](), kind="dataset", name="prepared")
    assert record.execution_id == run.id
    assert (record.id, "out") in project.context.meta.events(run.id)
    assert project.data.open("prepared").column("x").to_pylist() == [1.5, 2.5, 3.5]
    assert project.data.open("prepared").equals(project.data.open("direct"))
    assert project.data.show("prepared").produced_by_run == "prepare"


def test_what_cannot_be_ingested_is_refused_and_nothing_is_stored(
    project: Kernel,
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(UsageError, match=r"name the dataset: k\.data\.add"):
        project.data.add(frame)
    with pytest.raises(UsageError, match=r"k\.data\.add"):
        project.log_artifact({"w": 1}, kind="dataset", name="weights")
    with pytest.raises(UsageError, match=r"k\.data\.add"):
        project.log_artifact(b"a,b\n1,2\n", kind="dataset", name="raw")
    with pytest.raises(UsageError, match="no rows"):
        project.data.add(pd.DataFrame({"a": []}), name="empty")
    with pytest.raises(UsageError, match="applies to files"):
        project.data.add(frame, name="f", encoding="latin-1")
    assert project.ls("dataset") == []


@pytest.fixture
def root(sqlite_project: Kernel, tmp_path: Path) -> Path:
    """A project with an ingested dataset, a model, and a plain-object dataset as older
    mlkernel versions logged them (registered directly, as `log_artifact` did then)."""
    k = sqlite_project
    k.data.add(_csv(tmp_path), name="train", progress=False)
    k.log_artifact({"w": 1}, kind="model", name="churn")
    digest, size = k.context.objects.put_bytes(b"a,b\n1,2\n")
    k.context.meta.register_artifact(
        "dataset",
        "legacy",
        digest=digest,
        uri=k.context.objects.uri(digest),
        size=size,
        properties={"format": "file", "source": "legacy.csv"},
        created_by="test",
        execution_id=None,
    )
    return k.root


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "show", "{ref}"],
        ["data", "head", "{ref}"],
        ["data", "diff", "train@1", "{ref}"],
        ["data", "diff", "{ref}", "train@1"],
        ["data", "profile", "{ref}"],
        ["data", "drift", "train@1", "{ref}"],
        ["data", "drift", "{ref}", "train@1"],
        ["data", "export", "{ref}", "-o", "{out}"],
    ],
)
@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("model:churn@1", "model:churn@1 is a model, not a dataset"),
        ("dataset:legacy@1", "not ingested"),
    ],
)
def test_data_commands_refuse_what_is_not_an_ingested_dataset(
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    ref: str,
    says: str,
) -> None:
    out = tmp_path / "out.csv"
    args = [a.format(ref=ref, out=out) for a in argv]
    assert main(["-C", str(root), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert "mlk data" in err[0]  # the fix: `mlk data add ...` or `mlk data ls`
    assert not out.exists()


def test_open_refuses_a_plain_object_dataset(root: Path) -> None:
    import mlkernel

    with mlkernel.open(root) as k, pytest.raises(UsageError, match="mlk data add FILE --name"):
        k.data.open("dataset:legacy")


def test_a_pipeline_step_handle_refuses_a_plain_object_dataset(root: Path) -> None:
    import mlkernel
    from mlkernel.pipeline.task import Artifact

    with mlkernel.open(root) as k:
        legacy, train = k.resolve("dataset:legacy"), k.resolve("dataset:train")
        objects = k.context.objects.root
    with pytest.raises(UsageError, match="not ingested"):
        Artifact(legacy.to_dict(), objects).open()
    assert Artifact(train.to_dict(), objects).open().num_rows == 3

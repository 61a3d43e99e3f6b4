"""What ``data show`` and ``data diff`` return, typed, and what an ingest records: the
version, its one-off execution ``data add NAME`` and its events, in the actor's name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel import Kernel
from mlkernel.authz import Actor
from mlkernel.cli.main import main
from mlkernel.data.results import ColumnChange, DatasetDetail, DatasetDiff, FromTo


def _two_versions(k: Kernel, write: Callable[[str, str | bytes], Path]) -> None:
    k.data.add(write("t.csv", "a,b\n1,x\n2,y\n"), progress=False)
    k.data.add(write("t.csv", "a,c\n1.5,3\n2.5,4\n3.5,5\n"), progress=False)


def test_show_is_typed_and_its_json_is_what_the_cli_prints(
    project: Kernel,
    write: Callable[[str, str | bytes], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _two_versions(project, write)
    with project.start_run("fit", inputs=["dataset:t@2"]) as run:
        run.log_artifact(b"weights", kind="model", name="m")
    project.alias_set("dataset:t@2", "production")

    shown = project.data.show("t")
    assert isinstance(shown, DatasetDetail)
    assert shown.ref == "dataset:t@2" and shown.record.version == 2
    assert shown.properties["rows"] == 3
    assert shown.used_by == ["model:m@1"]
    assert shown.produced_by_run == "data add t"
    assert shown.detail.versions == [1, 2] and shown.detail.aliases == {"production": 2}

    assert main(["-C", str(project.root), "data", "show", "t", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(shown.to_dict()))
    assert set(printed) == {
        *shown.record.to_dict(),
        "aliases",
        "versions",
        "alias_history",
        "produced_by",
        "used_by",
        "produced_by_run",
    }
    assert printed["used_by"] == ["model:m@1"] and printed["produced_by_run"] == "data add t"
    assert printed["produced_by"]["name"] == "data add t"
    assert printed["aliases"] == {"production": 2} and printed["versions"] == [1, 2]


def test_diff_is_typed_and_its_json_keeps_from_and_to(
    project: Kernel,
    write: Callable[[str, str | bytes], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _two_versions(project, write)
    diff = project.data.diff("t@1", "t@2")
    assert isinstance(diff, DatasetDiff)
    assert (diff.from_ref, diff.to_ref, diff.same_content) == ("dataset:t@1", "dataset:t@2", False)
    assert diff.schema.added == ["c"] and diff.schema.removed == ["b"]
    assert diff.schema.changed == [ColumnChange("a", "int64", "double")]
    assert diff.rows == FromTo(2, 3) and diff.columns == FromTo(2, 2)

    assert main(["-C", str(project.root), "data", "diff", "t@1", "t@2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "from": "dataset:t@1",
        "to": "dataset:t@2",
        "same_content": False,
        "schema": {
            "added": ["c"],
            "removed": ["b"],
            "changed": [{"name": "a", "from": "int64", "to": "double"}],
        },
        "rows": {"from": 2, "to": 3},
        "columns": {"from": 2, "to": 2},
        "bytes": {"from": diff.bytes.before, "to": diff.bytes.after},
    }
    assert printed == diff.to_dict()
    assert project.data.diff("t@2", "t@2").same_content


def test_an_ingest_outside_a_run_records_its_own_execution_in_the_actors_name(
    project: Kernel, write: Callable[[str, str | bytes], Path]
) -> None:
    alice = project.as_actor(Actor("alice"))
    path = write("r.csv", "a,b\n1,2\n3\n4,5\n")
    result = alice.data.add(path, name="r", on_bad_rows="quarantine", progress=False)
    record, quarantine = result.record, result.quarantine
    assert record.created_by == "alice" and quarantine is not None
    assert quarantine.created_by == "alice"

    meta = project.context.meta
    assert record.execution_id is not None and quarantine.execution_id == record.execution_id
    execution = meta.get_execution(record.execution_id)
    assert (execution.name, execution.type, execution.state) == (
        "data add r",
        "register",
        "completed",
    )
    assert execution.user == "alice" and execution.host == project.host
    assert execution.env_artifact_id is None  # an ingest records no Python environment
    assert execution.resources is not None and execution.resources["rows"] == 2
    params = meta.params(execution.id)
    assert params["source"] == str(path.resolve()) and params["on_bad_rows"] == "quarantine"
    assert sorted(meta.events(execution.id)) == sorted([(quarantine.id, "out"), (record.id, "out")])
    assert project.ls("env") == []
    assert project.resolve("dataset:r").id == record.id  # the table knows the new version

    # The same bytes again: no new version and no new execution.
    again = alice.data.add(path, name="r", on_bad_rows="quarantine", progress=False)
    assert not again.created and again.record.id == record.id
    assert len(project.runs(include_internal=True, name="data add r")) == 1


def test_a_run_that_ingests_known_content_still_produced_it(
    project: Kernel, write: Callable[[str, str | bytes], Path]
) -> None:
    path = write("t.csv", "a,b\n1,x\n2,y\n")
    first = project.data.add(path, progress=False).record
    with project.start_run("again") as run:
        result = project.data.add(path, execution_id=run.id, progress=False)
    assert not result.created and result.record.id == first.id
    assert (first.id, "out") in project.context.meta.events(run.id)

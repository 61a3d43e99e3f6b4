"""No input a user can type makes ``mlk`` fail with an internal error (exit 70).

Every command and subcommand is found by walking the real argument parser (so a command
added later is covered, or this test fails naming the argument it cannot fill) and run
with: a reference of the wrong kind, a missing reference, a missing input file, an
output that cannot be written (under a missing folder, under a regular file) and outside
any project (``-C`` a folder that does not exist); and every option that takes a value
is given nonsense (``garbage``, ``-1``, ``0``). Each must end with a one-line error or
success: exit code other than 70 and no traceback. The runs are in-process (fast); a few
run as real subprocesses, where the exit code is what the shell sees.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlkernel
from mlkernel.cli.main import COMMANDS, INTERNAL_ERROR, build_parser, main

# Positional arguments by their name (dest), and what to give each in each scenario.
REF_SLOTS = ("ref", "a", "b")
WRONG_KIND = ("model:churn@1", "dataset:legacy@1", "report:drift-train@1", "file:notes@1")
MISSING_REF = ("dataset:nope@1", "nope", "train@99", "model:train", "train@nosuchalias")
KNOWN_POSITIONALS = {
    *REF_SLOTS,
    "alias",
    "id",
    "pipeline",
    "name",
    "path",
    "dir",
    "kind",
    "words",
    "shell",
}
# Options that name files: read (inputs) or written (outputs).
INPUT_OPTIONS = {"schema": "--schema", "config": "--config", "history": "--history"}
OUTPUT_OPTIONS = {"out": "-o", "html": "--html", "runtime_dir": "--runtime-dir"}


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    positionals: tuple[str, ...]
    options: dict[str, str]  # dest -> its first option string
    required: tuple[str, ...]  # dests of required options
    free: tuple[str, ...]  # dests of options that take any value (no fixed choices)

    @property
    def label(self) -> str:
        return " ".join(self.words)


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> Iterator[Command]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        positionals = tuple(a.dest for a in parser._actions if not a.option_strings)
        options = {
            a.dest: a.option_strings[0]
            for a in parser._actions
            if a.option_strings and a.dest != "help"
        }
        required = tuple(a.dest for a in parser._actions if a.option_strings and a.required)
        free = tuple(
            a.dest
            for a in parser._actions
            if a.option_strings and a.nargs != 0 and a.choices is None and a.dest != "help"
        )
        yield Command(words, positionals, options, required, free)
        return
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _leaves(child, (*words, name))


COMMAND_LIST = [c for c in _leaves(build_parser(), ()) if c.words]


def test_every_top_level_command_is_walked() -> None:
    assert {c.words[0] for c in COMMAND_LIST} == set(COMMANDS)


def test_every_positional_argument_has_values_to_try() -> None:
    unknown = [
        f"{c.label}: {p}" for c in COMMAND_LIST for p in c.positionals if p not in KNOWN_POSITIONALS
    ]
    assert not unknown, (
        "teach tests/test_cli_no_internal_errors.py what to give these arguments: "
        + ", ".join(unknown)
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project holding one of each kind, plus paths that cannot be read or written."""
    base = tmp_path_factory.mktemp("sweep")
    csv = base / "train.csv"
    csv.write_text("a,b\n1,x\n2,y\n3,x\n")
    root = base / "proj"
    with mlkernel.init(root, name="sweep") as k:
        k.data.add(csv, name="train", progress=False)
        csv2 = base / "train2.csv"
        csv2.write_text("a,b\n1,x\n5,y\n3,z\n")
        k.data.add(csv2, name="train", progress=False)
        k.log_artifact({"w": 1}, kind="model", name="churn")
        k.log_artifact(b"hello", kind="file", name="notes")
        digest, size = k.context.objects.put_bytes(b"a,b\n1,2\n")
        k.context.meta.register_artifact(  # a dataset as older mlkernel logged it: a plain object
            "dataset",
            "legacy",
            digest=digest,
            uri=k.context.objects.uri(digest),
            size=size,
            properties={"format": "file"},
            created_by="test",
            execution_id=None,
        )
        k.monitor.report("train@1", "train@2")  # report:drift-train
        k.alias_set("model:churn@1", "production")
        model_file = k.context.objects.path(k.resolve("model:churn").digest)
    a_file = base / "a_file"
    a_file.write_text("not a folder")
    return {
        "base": base,
        "root": root,
        "csv": csv,
        "model_file": model_file,
        "a_file": a_file,
        "missing_dir": base / "missing" / "dir",
    }


def _fill(command: Command, world: dict[str, Path], **given: str | list[str]) -> list[str]:
    """argv for ``command``: ``given`` values by dest, sensible valid ones otherwise."""
    out = world["base"] / "out"
    defaults: dict[str, str | list[str]] = {
        "ref": "dataset:train@1",
        "a": "train@1",
        "b": "train@2",
        "alias": "production",
        "id": "1",
        "pipeline": "nope",
        "name": "nope",
        "path": str(world["csv"]),
        "dir": str(world["base"] / "new-project"),
        "kind": "dataset",
        "shell": "bash",
        "words": ["--", "/nonexistent/program"],
        # A fresh name each time: a file written by an earlier scenario would be refused.
        "out": str(out / f"{'-'.join(command.words)}-{uuid.uuid4().hex[:8]}.csv"),
        "html": str(out / f"report-{uuid.uuid4().hex[:8]}.html"),
        # Never the machine's own scheduler: every run names a folder it cannot create.
        "runtime_dir": str(world["a_file"] / "runtime"),
        "pool": "batch",
    }
    values = {**defaults, **given}
    argv = ["-C", str(values.get("project", world["root"])), *command.words]
    for dest in command.positionals:
        value = values[dest]
        argv.extend(value if isinstance(value, list) else [value])
    for dest, flag in command.options.items():
        if dest in given or dest in command.required or dest in OUTPUT_OPTIONS:
            value = values[dest]
            argv.extend([flag, *(value if isinstance(value, list) else [value])])
    if "words" in command.positionals:  # REMAINDER swallows what follows: options first
        argv = _words_last(argv, values["words"])
    return argv


def _words_last(argv: list[str], words: str | list[str]) -> list[str]:
    tail = words if isinstance(words, list) else [words]
    start = next(i for i in range(len(argv)) if argv[i : i + len(tail)] == tail)
    return argv[:start] + argv[start + len(tail) :] + tail


def _scenarios(command: Command, world: dict[str, Path]) -> Iterator[list[str]]:
    slots = [p for p in command.positionals if p in REF_SLOTS]
    for slot in slots:
        for ref in (*WRONG_KIND, *MISSING_REF):
            yield _fill(command, world, **{slot: ref})
    if "kind" in command.positionals:
        yield _fill(command, world, kind="models")
    if "id" in command.positionals:
        for run_id in ("99999", "1"):  # missing; an ingest's register execution
            yield _fill(command, world, id=run_id)
    if "alias" in command.positionals:
        yield _fill(command, world, alias="never-set")
    if "pipeline" in command.positionals:
        for pipeline in ("/nonexistent/p.py:pipe", f"{world['csv']}:main", "model:churn"):
            yield _fill(command, world, pipeline=pipeline)
    if "path" in command.positionals:
        for path in ("/nonexistent/x.csv", str(world["a_file"] / "x.csv")):
            yield _fill(command, world, path=path)
        yield _fill(command, world, path=str(world["model_file"]))  # not a data file
    for dest in INPUT_OPTIONS:
        if dest in command.options:
            for path in ("/nonexistent/x.toml", str(world["a_file"] / "x.toml")):
                yield _fill(command, world, **{dest: path})
    unwritable = (str(world["missing_dir"] / "x.out"), str(world["a_file"] / "x.out"))
    for dest in (*OUTPUT_OPTIONS, "dir"):
        if dest in command.options or dest in command.positionals:
            # A runtime folder that can be made would start a real scheduler controller.
            paths = (str(world["a_file"] / "x" / "y"),) if dest == "runtime_dir" else unwritable
            for path in paths:
                yield _fill(command, world, **{dest: path})
    for dest in command.free:  # values no one should type, for every option that takes one
        if dest not in OUTPUT_OPTIONS:
            for nonsense in ("garbage", "-1", "0"):
                yield _fill(command, world, **{dest: nonsense})
    yield _fill(command, world, project=str(world["base"] / "no-such-project"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing the arguments
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", COMMAND_LIST, ids=lambda c: c.label)
def test_no_internal_error(
    command: Command,
    world: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLK_DEBUG", raising=False)
    # A command added later without --runtime-dir must not reach the machine's scheduler.
    import importlib

    nowhere = world["a_file"] / "runtime"
    for module in ("mlkernel.sched.journal", "mlkernel.sched.client", "mlkernel.sched.doctor"):
        monkeypatch.setattr(importlib.import_module(module), "default_runtime_dir", lambda: nowhere)
    (world["base"] / "out").mkdir(exist_ok=True)
    failures = []
    for argv in _scenarios(command, world):
        code, err = _run(argv, capsys)
        if code == INTERNAL_ERROR or "Traceback" in err:
            failures.append(f"mlk {' '.join(argv)} -> {code}: {err.strip()[-300:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["get", "model:churn", "-o", "/nonexistent/dir/m.pkl"], 4, "does not exist"),
        (["get", "model:churn", "-o", "/etc/hostname/m.pkl"], 2, "is a file, not a folder"),
        (["data", "drift", "dataset:train@1", "model:churn@1"], 2, "is a model, not a dataset"),
        (["data", "diff", "model:churn", "train@1"], 2, "is a model, not a dataset"),
        (["data", "head", "dataset:legacy"], 2, "not ingested"),
    ],
)
def test_real_processes_see_one_line_errors(
    world: dict[str, Path], argv: list[str], code: int, says: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLK_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "mlkernel", "-C", str(world["root"]), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("mlk: error: ") and says in lines[0]


def test_no_project_is_a_one_line_error_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlkernel", "-C", str(tmp_path / "nowhere"), "data", "ls"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode not in (0, INTERNAL_ERROR)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr

"""`mlk --help` as a newcomer reads it: every argument described, every command with an
example that parses, no internal names, suggestions for typos, shell completion."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlkernel.cli.main import build_parser
from mlkernel.testing import need

MLK = [sys.executable, "-m", "mlkernel"]
EXAMPLE = re.compile(r"^example: (mlk .*)$", re.M)


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of `mlk`, commands and their verbs, with its command path."""

    def walk(
        path: str, parser: argparse.ArgumentParser
    ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(f"{path} {name}", child)

    yield from walk("mlk", build_parser())


ALL = list(parsers())
IDS = [path for path, _ in ALL]


def _mlk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLK, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, "COLUMNS": "200"}
    )


def test_the_walk_reaches_every_command() -> None:
    from mlkernel.cli.main import COMMANDS

    assert {p.split()[1] for p in IDS if p != "mlk"} == set(COMMANDS)
    assert "mlk data add" in IDS and "mlk mode ml" in IDS


@pytest.mark.parametrize(("path", "parser"), ALL, ids=IDS)
def test_every_argument_has_a_description(path: str, parser: argparse.ArgumentParser) -> None:
    bare = [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()
    ]
    assert bare == [], f"`{path}`: give these arguments a help= description"


@pytest.mark.parametrize(("path", "parser"), ALL, ids=IDS)
def test_every_command_has_an_example_that_parses(
    path: str, parser: argparse.ArgumentParser
) -> None:
    examples = EXAMPLE.findall(parser.epilog or "")
    assert examples, f"`{path}`: add an epilog 'example: {path} ...'"
    for example in examples:
        words = shlex.split(example, comments=True)
        for stop in (">", "|", "&&", ";"):
            words = words[: words.index(stop)] if stop in words else words
        assert " ".join(words).startswith(path), f"`{path}`'s example runs another command"
        try:
            args = build_parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"`{path}`: its example `{example}` does not parse")
        if path != "mlk" and parser._subparsers is None:
            assert getattr(args, "func", None) is not None


@pytest.mark.parametrize(("path", "parser"), ALL, ids=IDS)
def test_no_internal_names_in_usage(path: str, parser: argparse.ArgumentParser) -> None:
    """A positional argument is shown by an upper-case name (REF, PATH), never by its
    Python name (`words`, `a`, `ref`); so is an option's value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.nargs == 0:
            continue
        if action.option_strings and action.choices:
            continue  # shown as {a,b,c}
        shown = action.metavar or (action.dest if not action.option_strings else None)
        if shown is None:  # an option without metavar shows its dest upper-cased
            shown = action.dest.upper()
        assert isinstance(shown, str) and shown == shown.upper(), (
            f"`{path}` shows {shown!r} for {action.option_strings or action.dest}"
        )
        assert shown.replace("=", "_").replace("_", "").isalpha() or "=" in shown, shown
    usage = parser.format_usage()
    assert " words" not in usage and "[words" not in usage


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stauts"], "unknown command 'stauts'; did you mean `status`?"),
        (["data", "ad", "x.csv"], "unknown command 'ad' after `mlk data`; did you mean `add`?"),
        (["ls", "models"], "unknown kind 'models'; did you mean `model`?"),
        (["runs", "ls", "--state", "fialed"], "--state: unknown value 'fialed'; did you mean"),
        (["frobnicate"], "unknown command 'frobnicate'; choose from init, status"),
    ],
)
def test_a_typo_gets_a_suggestion(argv: list[str], expected: str, tmp_path: Path) -> None:
    result = _mlk(*argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mistyped_kind_in_a_reference_gets_a_suggestion(tmp_path: Path) -> None:
    assert _mlk("init", str(tmp_path / "p")).returncode == 0
    result = _mlk("show", "modle:churn", cwd=tmp_path / "p")
    assert result.returncode == 2
    assert "unknown kind 'modle'; did you mean 'model'?" in result.stderr


@pytest.mark.parametrize("command", [["status"], ["ls"], ["policy", "show"], ["doctor"]])
def test_a_missing_project_folder_is_named_not_offered_as_a_new_project(
    command: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent"
    result = _mlk("-C", str(missing), *command, cwd=tmp_path)
    assert result.returncode == 4
    assert f"{missing} does not exist" in result.stderr
    assert "here" not in result.stderr and "mlk init" not in result.stderr


def test_a_project_folder_that_is_a_file_or_has_no_project_is_told_apart(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = _mlk("-C", str(a_file), "status", cwd=tmp_path)
    assert f"{a_file} is not a folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _mlk("-C", str(empty), "status", cwd=tmp_path)
    assert f"run `mlk init {empty}`" in result.stderr and "here" not in result.stderr


# --- completion ----------------------------------------------------------------------

BASH = shutil.which("bash")


def _complete_bash(script: str, *words: str) -> list[str]:
    """What bash offers for the command line ``words`` (the last one is being typed)."""
    assert BASH is not None
    line = " ".join(shlex.quote(w) for w in words)
    probe = (
        f"{script}\n"
        f"COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _mlk\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run([BASH, "--norc", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture(scope="module")
def bash_script() -> str:
    result = _mlk("completion", "bash")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_completion_registers_and_completes(bash_script: str, tmp_path: Path) -> None:
    script = tmp_path / "mlk.bash"
    script.write_text(bash_script)
    done = subprocess.run(
        [BASH, "--norc", "-c", f"source {shlex.quote(str(script))}; complete -p mlk"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "-F _mlk mlk" in done.stdout
    assert _complete_bash(bash_script, "mlk", "sta") == ["status"]
    assert _complete_bash(bash_script, "mlk", "data", "a") == ["add"]
    assert _complete_bash(bash_script, "mlk", "-C", "/tmp", "runs", "c") == ["cancel"]
    assert _complete_bash(bash_script, "mlk", "data", "add", "--on-bad-rows", "") == [
        "fail",
        "skip",
        "quarantine",
    ]
    assert _complete_bash(bash_script, "mlk", "runs", "ls", "--st") == ["--state"]
    assert _complete_bash(bash_script, "mlk", "completion", "") == ["bash", "zsh", "fish"]
    # an option's free value and a positional argument are left to file-name completion
    assert _complete_bash(bash_script, "mlk", "data", "add", "--name", "") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_every_command_and_option(shell: str) -> None:
    result = _mlk("completion", shell)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for path, parser in ALL:
        assert f"'{path}'" in script or f'"{path}"' in script, f"{shell}: {path} missing"
        for action in parser._actions:
            for option in action.option_strings:
                flag = option.lstrip("-")
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", script) or (
                    shell == "fish" and re.search(rf"-[lso] {re.escape(flag)}(?![\w-])", script)
                ), f"{shell}: {path} {option} missing"


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_scripts_are_valid_syntax_where_the_shell_is_installed(shell: str) -> None:
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed here")
    script = _mlk("completion", shell).stdout
    done = subprocess.run([binary, "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_zsh_completion_offers_the_words_of_the_path(tmp_path: Path) -> None:
    """zsh's completion system is replaced by stubs that print what ``_mlk`` offers
    (zsh itself filters by the prefix typed)."""
    need(shutil.which("zsh") is not None, "zsh is not installed (apt-get install zsh)")
    script = tmp_path / "_mlk"
    script.write_text(_mlk("completion", "zsh").stdout)
    stubs = (
        'compdef() { : }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }; '
        "_files() { print FILES }; "
        f"source {shlex.quote(str(script))}; "
    )

    def offers(*words: str) -> list[str]:
        line = " ".join(shlex.quote(w) for w in words)
        probe = f"{stubs} words=({line}); CURRENT=$#words; _mlk"
        done = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "status" in offers("mlk", "sta") and "add" not in offers("mlk", "sta")
    assert "add" in offers("mlk", "-C", "/tmp", "data", "a")
    assert offers("mlk", "data", "add", "--on-bad-rows", "") == ["fail", "skip", "quarantine"]
    assert offers("mlk", "completion", "") == ["bash", "zsh", "fish"]
    assert offers("mlk", "data", "add", "--name", "") == ["FILES"]


def test_fish_completion_completes(tmp_path: Path) -> None:
    need(shutil.which("fish") is not None, "fish is not installed (apt-get install fish)")
    script = tmp_path / "mlk.fish"
    script.write_text(_mlk("completion", "fish").stdout)

    def offers(line: str) -> list[str]:
        probe = f"source {shlex.quote(str(script))}; complete -C {shlex.quote(line)}"
        done = subprocess.run(["fish", "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert offers("mlk sta") == ["status"]
    assert offers("mlk -C /tmp runs c") == ["cancel"]
    assert sorted(offers("mlk data add --on-bad-rows ")) == ["fail", "quarantine", "skip"]
    assert offers("mlk runs ls --st") == ["--state"]
    assert sorted(offers("mlk completion ")) == ["bash", "fish", "zsh"]


def test_an_unknown_shell_is_refused() -> None:
    result = _mlk("completion", "tcsh")
    assert result.returncode == 2
    assert "unknown shell 'tcsh'; choose from bash, zsh, fish" in result.stderr


def doc_command_lines() -> list[tuple[str, str]]:
    """Every `mlk ...` command in a shell block of the README and the docs, with its page
    (a synopsis such as `mlk data add PATH [--name N]` is not a command and is left out)."""
    repo = Path(__file__).resolve().parent.parent
    fence = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
    pages = [repo / "README.md", repo / "benchmarks" / "README.md", *(repo / "docs").glob("*.md")]
    found = []
    for page in sorted(pages):
        for block in fence.finditer(page.read_text(encoding="utf-8")):
            if block.group(1).split()[:1] not in (["sh"], ["bash"], ["shell"], []):
                continue
            for line in block.group(2).splitlines():
                for part in re.split(r"\s(?:&&|;|\|)\s", line.strip()):
                    if part.startswith("mlk ") and "[" not in part.split("#")[0]:
                        found.append((page.name, part.strip()))
    return found


DOC_LINES = doc_command_lines()


def test_the_docs_have_command_lines_to_check() -> None:
    assert len(DOC_LINES) > 30


@pytest.mark.parametrize(("page", "line"), DOC_LINES, ids=[f"{p}:{x}" for p, x in DOC_LINES])
def test_every_mlk_command_line_in_the_docs_parses(page: str, line: str) -> None:
    words = shlex.split(line, comments=True)
    for stop in (">", "|"):
        words = words[: words.index(stop)] if stop in words else words
    try:
        build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"{page}: `{line}` is not a valid mlk command line")


def test_global_options_may_follow_the_command(tmp_path: Path) -> None:
    # `mlk status -C DIR` was "unrecognized arguments: -C DIR".
    from mlkernel.cli.main import _global_options_first

    missing = _mlk("status", "-C", str(tmp_path / "nope"))
    assert missing.returncode == 4 and "does not exist" in missing.stderr, missing.stderr
    assert _global_options_first(["data", "ls", "-C", "p", "--debug"]) == [
        "-C",
        "p",
        "--debug",
        "data",
        "ls",
    ]
    # A program's own words are left as typed.
    for argv in (
        ["mode", "ml", "--", "prog", "-C", "x", "--debug"],
        ["mode", "ml", "prog", "-C", "x"],
        ["-C", "p", "mode", "run", "prog", "--debug"],
    ):
        kept = _global_options_first(argv)
        assert kept[kept.index("mode") :] == argv[argv.index("mode") :], argv

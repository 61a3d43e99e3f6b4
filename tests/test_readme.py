"""The README's five-minute tour runs as written.

Its fenced ``sh`` and ``python`` blocks are run in order, exactly, in one shell session
that starts in the repository (as the tour says) with ``TMPDIR`` pointing at an empty
temporary folder, so that the tour's ``cd "$(mktemp -d)"`` lands there. A ``python``
block is a file the reader saves: its first line, ``# NAME.py``, names it, and it is
written where the shell is at that point; the next ``sh`` block runs it. A block marked
``no-run`` after its language (```` ```sh no-run ````) is shown, not run; there may be
few. Any other block in the tour fails the test, so none is skipped silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
TOUR = "## A five-minute tour"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = "@@mlk-readme-block"
MAX_NO_RUN = 2


@dataclass(frozen=True)
class Block:
    line: int  # where it starts in README.md
    lang: str
    run: bool
    code: str


def tour_blocks(text: str) -> list[Block]:
    """The fenced blocks of the tour section (up to the next ``## `` heading)."""
    start = text.index(TOUR)
    following = text.find("\n## ", start + len(TOUR))
    section = text[start : following if following != -1 else len(text)]
    first_line = text[:start].count("\n") + 1
    blocks = []
    for match in FENCE.finditer(section):
        words = match.group(1).split()
        lang = words[0] if words else ""
        line = first_line + section[: match.start()].count("\n")
        blocks.append(Block(line, lang, "no-run" not in words[1:], match.group(2)))
    return blocks


def script_for(blocks: list[Block]) -> str:
    """One bash script running the blocks in order; each announces itself on stdout."""
    parts = ["set -eo pipefail"]
    for number, block in enumerate(blocks):
        if not block.run:
            continue
        parts.append(f"echo '{MARK} {number}@@'")
        if block.lang == "sh":
            parts.append(block.code)
        else:
            name = python_file(block)
            assert "MLK_README_EOF" not in block.code
            parts.append(f"cat > '{name}' <<'MLK_README_EOF'\n{block.code}MLK_README_EOF")
    return "\n".join(parts) + "\n"


def python_file(block: Block) -> str:
    match = re.match(r"# ([\w./-]+\.py)\n", block.code)
    assert match, f"README.md:{block.line}: a python block starts with '# NAME.py', the file"
    return match.group(1)


def test_the_tour_is_only_blocks_the_test_can_run() -> None:
    blocks = tour_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) > 10
    assert [b for b in blocks if b.lang not in ("sh", "python")] == []
    assert len([b for b in blocks if not b.run]) <= MAX_NO_RUN
    assert all(python_file(b) for b in blocks if b.lang == "python" and b.run)


def test_the_extraction_keeps_order_and_markers() -> None:
    text = (
        "intro\n```sh\nnot in the tour\n```\n"
        f"{TOUR}\n```sh\necho one\n```\n"
        "```python\n# a.py\nprint(2)\n```\n"
        "```sh no-run\nmlk init --metadata postgresql://x\n```\n"
        "## Next\n```sh\necho after\n```\n"
    )
    blocks = tour_blocks(text)
    assert [(b.lang, b.run, b.code) for b in blocks] == [
        ("sh", True, "echo one\n"),
        ("python", True, "# a.py\nprint(2)\n"),
        ("sh", False, "mlk init --metadata postgresql://x\n"),
    ]
    script = script_for(blocks)
    assert "echo one" in script and "cat > 'a.py'" in script and "postgresql" not in script


def run_tour(text: str, tmp_path: Path) -> str | None:
    """Run the tour of README text ``text``; None, or what failed and its output.

    The shell starts in ``tmp_path/clone``, which holds only a link to this clone's
    ``.venv`` (so a tour that forgot to leave the clone cannot write into the real one);
    ``TMPDIR`` is ``tmp_path/tmp``, empty.
    """
    blocks = tour_blocks(text)
    clone, empty = tmp_path / "clone", tmp_path / "tmp"
    clone.mkdir()
    empty.mkdir()
    (clone / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLK_DEBUG", "VIRTUAL_ENV")}
    env["TMPDIR"] = str(empty)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script_for(blocks)],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    if done.returncode == 0:
        return None
    pieces = done.stdout.rsplit(MARK, 1)
    number = int(pieces[1].split("@@", 1)[0]) if len(pieces) == 2 else 0
    output = pieces[1].split("@@", 1)[1] if len(pieces) == 2 else done.stdout
    block = blocks[number]
    return (
        f"README.md:{block.line}: this {block.lang} block failed (exit {done.returncode}):\n"
        f"{block.code}\n--- its output ---\n{output[-6000:]}"
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    if not (REPO / ".venv" / "bin" / "mlk").exists():
        pytest.skip("the tour starts after `make venv`; .venv/bin/mlk is missing")
    try:
        failure = run_tour(README.read_text(encoding="utf-8"), tmp_path)
    finally:
        _stop_the_controller_it_started(tmp_path)
    if failure is not None:
        pytest.fail(failure)


def _stop_the_controller_it_started(tmp_path: Path) -> None:
    """What the README says a reader does after the tour: `mlk mode stop`, which leaves the
    machine's controller running while anything (another test, say) still uses it."""
    mlk = str(REPO / ".venv" / "bin" / "mlk")
    status = subprocess.run([mlk, "mode", "status", "--json"], capture_output=True, text=True)
    try:
        started_in = json.loads(status.stdout).get("started_by", {}).get("cwd") or ""
    except (json.JSONDecodeError, AttributeError):
        return
    if started_in.startswith(str(tmp_path)):
        subprocess.run([mlk, "mode", "stop"], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_a_failing_block_is_reported_with_its_output(tmp_path: Path) -> None:
    text = (
        f"{TOUR}\n```sh\necho fine\n```\n"
        "```python\n# broken.py\nraise SystemExit('the tour is broken')\n```\n"
        "```sh\npython3 broken.py\necho never\n```\n"
    )
    failure = run_tour(text, tmp_path)
    assert failure is not None
    assert failure.startswith("README.md:9: this sh block failed (exit 1):\npython3 broken.py")
    assert "the tour is broken" in failure and "never" not in failure.split("---")[-1]

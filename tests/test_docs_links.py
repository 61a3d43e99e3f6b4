"""Every relative link in the README and the docs leads somewhere.

A link ``[text](path)`` must name a file of the repository (relative to the page), and a
``#anchor`` (on its own or after a Markdown path) must be a heading of the target page,
spelt as GitHub spells heading anchors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [REPO / "README.md", REPO / "benchmarks" / "README.md", *(REPO / "docs").glob("*.md")]
)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _prose(text: str) -> str:
    """The page without fenced blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``: lower case, punctuation dropped
    (``-`` and ``_`` kept), spaces as ``-``, a repeated one suffixed ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text(encoding="utf-8")))


def broken(page: Path) -> list[str]:
    problems = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: {dest.name} has no heading #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == [], f"broken links in {page.relative_to(REPO)}"


def test_the_checker_sees_links_and_anchors(tmp_path: Path) -> None:
    """The checker itself: it finds a missing file and a missing heading, and accepts
    GitHub's spelling of a heading with code and punctuation in it."""
    (tmp_path / "other.md").write_text("# Configuration (`[sched]` in `mlkernel.toml`)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "## Two words\n"
        "[a](other.md#configuration-sched-in-mlkerneltoml) [b](#two-words)\n"
        "[c](gone.md) [d](other.md#nowhere) [e](https://example.com/x) `[f](skipped.md)`\n"
        "```\n[g](in-a-fence.md)\n```\n"
    )
    assert broken(page) == [
        "gone.md: no such file",
        "other.md#nowhere: other.md has no heading #nowhere",
    ]

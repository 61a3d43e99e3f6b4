"""Helpers for the dataset tests: small real files written into the test's temp dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CSV_HEADER = "id,price,city,at,day,ok\n"


def csv_rows(n: int, start: int = 0) -> str:
    return "".join(
        f"{i},{i * 1.5},{'abc'[i % 3]},2024-01-0{1 + i % 9}T00:00:00Z,"
        f"2024-01-0{1 + i % 9},{'true' if i % 2 else 'false'}\n"
        for i in range(start, start + n)
    )


@pytest.fixture
def sample() -> Callable[..., str]:
    """CSV text: a header and ``n`` rows of id, price, city, at (UTC), day, ok."""

    def make(n: int, start: int = 0, header: bool = True) -> str:
        return (CSV_HEADER if header else "") + csv_rows(n, start)

    return make


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a file under the test's temp dir and return its path."""

    def make(name: str, content: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return make


@pytest.fixture(params=[4096, 700], ids=["head=block", "head<block"])
def head_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Types inferred from the first 4096 bytes (the tests' block) or from part of them."""
    from mlkernel.data import readers

    monkeypatch.setattr(readers, "HEAD_BYTES", request.param)
    return int(request.param)

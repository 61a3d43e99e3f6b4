"""The HTML report is self-contained and carries the same content as the JSON."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa

from mlkernel.monitor import build_profile, build_report


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = dict(attrs).get("id")

    def handle_data(self, data: str) -> None:
        if self._in:
            self.data[self._in] = self.data.get(self._in, "") + data


def _report():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 3000
    ref = pa.table(
        {"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n), "y": rng.normal(size=n)}
    )
    x = rng.normal(size=n) + 1
    x[:300] = np.nan
    cur = pa.table(
        {"x": x, "c": rng.choice(["a", "b", "d", "<script>"], n), "y": rng.normal(size=n)}
    )
    return build_report(
        build_profile(ref), build_profile(cur), reference_name="train@1", current_name="train@2"
    )


def test_html_is_self_contained_and_complete() -> None:
    report = _report()
    page = report.to_html()
    parser = _Collect()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert "src" not in attrs, tag
        assert not str(attrs.get("href", "")).startswith(("http", "//")), tag
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") == 3
    assert len(re.findall(r"<tr>", page)) == 4  # header + one row per column
    assert "&lt;script&gt;" in page  # category names are escaped
    assert "goodness of fit" in page and "natural log" in page
    embedded = json.loads(parser.data["report-data"])
    assert embedded == json.loads(json.dumps(report.to_dict()))


def test_json_content() -> None:
    doc = json.loads(_report().to_json())
    assert doc["summary"]["drifted_columns"] == ["x", "c"]
    cols = {c["column"]: c for c in doc["columns"]}
    assert cols["x"]["current"]["missing"] == 300 and cols["x"]["reference"]["missing"] == 0
    assert cols["c"]["categories"]["new"] == ["<script>", "d"] and cols["c"]["categories"][
        "missing"
    ] == ["c"]
    assert cols["x"]["distribution"]["type"] == "histogram"
    assert abs(sum(cols["x"]["distribution"]["current"]) - 1) < 1e-9
    assert "outliers_iqr" in cols["y"]["current"]

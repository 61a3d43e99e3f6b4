"""The drift report as a person sees it: headless Chromium, offline, sortable, charted."""

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlkernel.monitor import build_profile, build_report
from mlkernel.testing import need

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    n = 4000
    ref = pa.table(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    cur = pa.table(
        {
            "age": rng.normal(48, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    report = build_report(build_profile(ref), build_profile(cur), title="Browser check")
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(report.to_html())
    return path


def test_report_renders_offline_in_chromium(page_file: Path) -> None:
    need(CHROMIUM is not None, "Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed; install the 'dev' extra")
        raise
    assert CHROMIUM is not None
    remote: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda r: (
                    remote.append(r.url) if not r.url.startswith(("file:", "data:")) else None
                ),
            )
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            assert "Browser check" in page.title() + page.inner_text("h1")
            rows = page.locator("#drift-table tbody tr")
            assert rows.count() == 3
            first_column = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
            assert sorted(first_column) == ["age", "income", "plan"]
            verdicts = page.locator("#drift-table tbody tr:has-text('age')").inner_text()
            assert "drift" in verdicts.lower()
            # every column has an overlaid reference/current chart
            assert page.locator("svg").count() >= 3
            # clicking the column header sorts the table
            page.locator("#drift-table th", has_text="column").click()
            page.locator("#drift-table th", has_text="column").click()
            after = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
            assert after in (sorted(first_column), sorted(first_column, reverse=True))
            page.screenshot(path=str(page_file.with_suffix(".png")), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert remote == []
    assert page_file.with_suffix(".png").stat().st_size > 10_000

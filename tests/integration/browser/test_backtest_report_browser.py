"""The backtest report in a real browser: Debian's chromium driven by Playwright, fully offline.

The page is opened from a file:// URL with every other request aborted (and recorded), and the
test waits for the ``data-ready`` attribute the page's script sets once the charts have drawn,
never for a fixed time. It checks what a person would see: no console errors, every chart has a
drawn canvas (pixels in the candle, marker and line colours), the summary shows the profit of
the dict. A screenshot of each page is kept under tests/artifacts/ for a human to look at.

Chromium comes from Debian (``make test`` installs it); Playwright's own browser download is
never used (``playwright install`` cannot work offline).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from daemon.backtest.html_report import render_html
from tests.integration.browser.conftest import READY_TIMEOUT_MS, Browser, launch_browser, screenshot_path
from tests.integration.browser.sample_results import hostile_result, sample_result

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Dialog, Page

# Colours the report script draws with (daemon/web/report/backtest_report.js).
UP = (10, 122, 61)
DOWN = (180, 35, 24)
BLUE = (29, 78, 216)  # equity line, and entry markers on the candle charts

# Per chart: canvas size and, from the chart's own composited screenshot, how many pixels are
# not background and how many are close to each colour of interest.
PIXEL_STATS_JS = """
([up, down, blue]) => window.aaitiReport.charts.map((c) => {
  const shot = c.chart.takeScreenshot();
  const data = shot.getContext("2d").getImageData(0, 0, shot.width, shot.height).data;
  const near = (i, rgb) => Math.abs(data[i] - rgb[0]) <= 12 && Math.abs(data[i + 1] - rgb[1]) <= 12
    && Math.abs(data[i + 2] - rgb[2]) <= 12;
  let drawn = 0, ups = 0, downs = 0, blues = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) drawn++;
    if (near(i, up)) ups++;
    if (near(i, down)) downs++;
    if (near(i, blue)) blues++;
  }
  const canvases = [...c.element.querySelectorAll("canvas")].map((cv) => [cv.width, cv.height]);
  return {kind: c.kind, symbol: c.symbol, width: shot.width, height: shot.height,
          drawn: drawn, ups: ups, downs: downs, blues: blues, canvases: canvases};
})
"""

SUMMARY_JS = """
() => Object.fromEntries([...document.querySelectorAll("#summary-table tbody tr")]
  .map((row) => [row.querySelector("th").textContent, row.querySelector("td").textContent]))
"""


@dataclass
class OpenedPage:
    """A report page that has finished drawing, with what the browser said while loading it."""

    page: Page
    errors: list[str]
    requests: list[str]
    dialogs: list[str]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with launch_browser(tmp_path_factory.mktemp("chromium-profile"), lambda url: url.startswith("file:")) as b:
        yield b


def open_report(browser: Browser, path: Path) -> OpenedPage:
    """Open ``path`` and wait until its script says the charts are drawn (or failed)."""
    page = browser.context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]", state="attached", timeout=READY_TIMEOUT_MS)
    assert page.get_attribute("html", "data-ready") == "true", errors
    return OpenedPage(page, errors, requests, dialogs)


def write_report(tmp_path: Path, name: str, result: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(render_html(result), encoding="utf-8")
    return path


def save_screenshot(opened: OpenedPage, name: str) -> None:
    opened.page.screenshot(path=screenshot_path(f"backtest-report-{name}"), full_page=True)


def assert_offline(browser: Browser, opened: OpenedPage, path: Path) -> None:
    assert opened.requests == [path.as_uri()], "the page requested something besides itself"
    assert browser.blocked == []


def test_multi_symbol_report_draws_every_chart_offline(browser: Browser, tmp_path: Path) -> None:
    result = sample_result(("XRPETH", "LTCETH"))
    path = write_report(tmp_path, "multi", result)
    opened = open_report(browser, path)
    try:
        assert opened.errors == []
        assert_offline(browser, opened, path)

        stats = opened.page.evaluate(PIXEL_STATS_JS, [UP, DOWN, BLUE])
        assert [(s["kind"], s["symbol"]) for s in stats] == [
            ("candles", "LTCETH"),
            ("candles", "XRPETH"),
            ("equity", None),
            ("drawdown", None),
        ]
        for s in stats:
            assert s["canvases"] and all(w > 0 and h > 0 for w, h in s["canvases"]), s
            assert s["width"] > 600 and s["height"] > 100, s
            assert s["drawn"] > 0.01 * s["width"] * s["height"], s  # more than axes on white
        for s in stats[:2]:
            assert s["ups"] > 100 and s["downs"] > 100, s  # rising and falling candles
            assert s["blues"] > 50, s  # entry markers of the symbol's trades
        assert stats[2]["blues"] > 100, stats[2]  # the equity line
        assert stats[3]["downs"] > 100, stats[3]  # the drawdown area

        summary = opened.page.evaluate(SUMMARY_JS)
        assert summary["Total profit"] == result["summary"]["total_profit"]
        assert summary["Trades"] == str(len(result["trades"]))
        table = opened.page.get_by_role("table", name="Summary metrics (amounts in ETH)")
        assert table.get_by_role("row", name="Total profit", exact=False).first.is_visible()
        save_screenshot(opened, "multi-symbol")
    finally:
        opened.page.close()


def test_report_without_trades_draws_candles_and_equity_without_markers(browser: Browser, tmp_path: Path) -> None:
    result = sample_result(("XRPETH",), n_bars=600, with_trades=False)
    path = write_report(tmp_path, "empty", result)
    opened = open_report(browser, path)
    try:
        assert opened.errors == []
        assert_offline(browser, opened, path)
        stats = opened.page.evaluate(PIXEL_STATS_JS, [UP, DOWN, BLUE])
        assert [s["kind"] for s in stats] == ["candles", "equity", "drawdown"]
        candles = stats[0]
        assert candles["ups"] > 100 and candles["downs"] > 100, candles
        assert candles["blues"] == 0, candles  # no trades, so no entry markers
        assert stats[1]["blues"] > 100, stats[1]  # a flat equity line is still drawn
        assert opened.page.evaluate(SUMMARY_JS)["Total profit"] == "0"
        assert opened.page.get_by_text("No trades: the strategies closed no position in this run.").is_visible()
        save_screenshot(opened, "no-trades")
    finally:
        opened.page.close()


def test_hostile_names_stay_text(browser: Browser, tmp_path: Path) -> None:
    result = hostile_result()
    path = write_report(tmp_path, "hostile", result)
    opened = open_report(browser, path)
    try:
        assert opened.errors == []
        assert opened.dialogs == []
        assert_offline(browser, opened, path)
        assert opened.page.evaluate("() => window.__pwned") is None
        assert opened.page.locator("img").count() == 0
        assert opened.page.get_by_role("heading", name="Strategy errors").is_visible()
    finally:
        opened.page.close()


def test_a_request_off_the_page_would_be_caught(browser: Browser, tmp_path: Path) -> None:
    """The guard itself works: a page that tries to load from the network is recorded and refused."""
    path = tmp_path / "probe.html"
    path.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/probe.png" alt="probe"></body></html>',
        encoding="utf-8",
    )
    page = browser.context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    try:
        with page.expect_event("requestfailed"):
            page.goto(path.as_uri())
        assert failed == ["http://127.0.0.1:9/probe.png"]
        assert browser.blocked == ["http://127.0.0.1:9/probe.png"]
    finally:
        browser.blocked.clear()
        page.close()

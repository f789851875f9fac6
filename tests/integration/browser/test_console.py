"""The web console in a real browser (Debian's chromium via Playwright) against a REAL daemon child.

One ``aaiti run`` child (the default paper config, admin on a free loopback port, a token, a
strategy keeping resting LIMIT buys so that there are open orders to draw) and one browser
page shared by the tests below, which run in file order like an operator's session: log in,
watch, kill from the keyboard, compare positions with the API, resume (which needs the
confirmation step), read the log tail, open a backtest report. A bracket strategy gives the
"Protective orders" table a row, which the kill cancels (its empty state shows). Numbers show at
the instrument's precision, as the CLI prints them (``cli_format.Precision``). Every request
the browser makes to anything but the daemon is aborted and recorded; none may be attempted. Tests wait
for ``data-*`` attributes and DOM states the console's script sets, never for a fixed time.
Screenshots go to ``tests/artifacts/console-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from daemon.backtest.html_report import render_html
from daemon.cli_format import Precision, format_number
from tests.integration.browser.conftest import READY_TIMEOUT_MS, Browser, launch_browser, screenshot_path
from tests.integration.browser.sample_results import sample_result
from tests.integration.ops.daemon_harness import TOKEN, Api, OpsDaemon, ops_config, resting_strategy, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The default limits would throttle or halt a 3000x replay within a minute; these tests are
# about the console, not those limits (the resting LIMIT buys sit at 0.7 x the market).
RELAXED = {
    r"price_collar_bps = \d+.*": "price_collar_bps = 5000",
    r"max_orders_per_minute = \d+.*": "max_orders_per_minute = 100000",
    r'daily_loss_limit = "[^"]*".*': 'daily_loss_limit = "5"',
    r"max_drawdown_pct = \d+.*": "max_drawdown_pct = 90",
}
# One bracket (market buy, take-profit and stop-loss far from the market): on the paper venue its
# exits are emulated, so the "Protective orders" table has a row until the kill cancels it.
BRACKET_STRATEGY = ('[[strategies]]\nname = "bracket"\n'
                    'strategy = "tests.integration.ops.contingent_strategies:Brackets"\nsymbols = ["XRP/ETH"]\n'
                    'timeframe = "1m"\nparams = { count = 1, size = "30" }\n')
LIVE_TIMEOUT_MS = 30_000  # deadline for market-driven DOM states (bars, fills, equity samples)
POSITION_FIELDS = ("size", "avg_price", "realized_pnl", "fees", "fills")
EMPTY = "\u2013"  # what the console shows for a missing value (an en dash)

XRP_TICK_PLACES = 8  # aaiti.toml: XRP/ETH tick_size = "0.00000001"
# Numbers the page's formatter must print exactly as cli_format.format_number does.
FORMAT_CASES = (("0.00141234567890123", 8), ("0.000000125", 8), ("0.000000135", 8), ("-2.5", 0), ("3.5", 0),
                ("0E-8", 8), ("0E-8", None), ("1E+2", 2), ("1.50000", None), ("12", 4), ("-0.0000000001", 8),
                ("not a number", 2))

# The positions table as {symbol: {field: text}}.
POSITIONS_JS = """
() => Object.fromEntries([...document.querySelectorAll("#positions tr")].map((tr) => [tr.dataset.key,
  Object.fromEntries([...tr.cells].map((td) => [td.dataset.field, td.textContent]))]))
"""


@dataclass
class Console:
    """The daemon, its API, the browser and the page logged into the console."""

    daemon: OpsDaemon
    api: Api
    base: str
    browser: Browser
    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    responses: dict[str, dict[str, str]] = field(default_factory=dict)


def _config(tmp: Path) -> Path:
    path = ops_config(tmp, append=resting_strategy("resting", count=2) + BRACKET_STRATEGY)
    text = path.read_text()
    for pattern, line in RELAXED.items():
        text, n = re.subn(f"(?m)^{pattern}$", line, text, count=1)
        assert n == 1, f"no line {pattern!r} in the default config"
    path.write_text(text)
    # A backtest report next to the config, as `aaiti backtest` leaves it.
    report = tmp / "backtests" / "xrp-ema-2019" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text(render_html(sample_result(("XRPETH",))), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    daemon = OpsDaemon(_config(tmp))
    try:
        daemon.wait_for_event("daemon.ready", timeout=30)
        api = daemon.api
        base = api.base_url
        with launch_browser(tmp / "chromium-profile", lambda url: url.startswith(base + "/")) as browser:
            page = browser.context.new_page()
            c = Console(daemon, api, base, browser, page)
            # Context-wide: the backtest report opens in a second page.
            browser.context.on("request", lambda request: c.requests.append(request.url))
            browser.context.on("response", lambda resp: c.responses.__setitem__(resp.url, resp.headers))
            page.on("console", lambda msg: c.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: c.errors.append(str(exc)))
            yield c
        code = daemon.stop()
        assert code == 0, daemon.raw[-20:]
    finally:
        daemon.kill()


def next_state(page: Page) -> None:
    """Wait until the console has drawn one more state push than now (it counts them on <html>)."""
    seq = page.get_attribute("html", "data-state-seq") or "0"
    page.wait_for_selector(f"html:not([data-state-seq='{seq}'])", state="attached", timeout=READY_TIMEOUT_MS)


def _risk(c: Console) -> dict[str, Any]:
    risk: dict[str, Any] = c.api.ok("GET", "/risk")
    return risk


def test_login_keeps_the_token_out_of_urls_and_logs(console: Console) -> None:
    page = console.page
    page.goto(console.base + "/")
    page.wait_for_selector("html[data-auth='login']", state="attached", timeout=READY_TIMEOUT_MS)
    assert page.locator("#token").evaluate("el => el === document.activeElement")
    page.screenshot(path=screenshot_path("console-login"))

    page.fill("#token", "not-the-token-0000000000")
    page.press("#token", "Enter")
    page.wait_for_selector("#login-error:has-text('not valid')", timeout=READY_TIMEOUT_MS)
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("html[data-auth='in'][data-ready='true']", state="attached", timeout=READY_TIMEOUT_MS)

    assert page.url == console.base + "/"
    assert all(TOKEN not in url for url in console.requests), console.requests
    assert page.input_value("#token") == ""
    cookies = {ck["name"]: ck for ck in console.browser.context.cookies()}
    session = cookies[f"aaiti_console_{console.api.port}"]
    assert session["httpOnly"] and session["sameSite"] == "Strict", session
    assert session["value"] != TOKEN
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session
    assert not any(TOKEN in line for line in console.daemon.raw), "the token reached the daemon's log"
    csp = console.responses[console.base + "/"]["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "http" not in csp, csp


def test_live_view_draws_state_charts_and_orders(console: Console) -> None:
    page = console.page
    page.wait_for_selector("#health[data-status='healthy'], #health[data-status='degraded']",
                           timeout=READY_TIMEOUT_MS)
    for _ in range(2):  # pushed again and again: live
        next_state(page)
    assert page.get_attribute("#readiness", "data-status") == "ready"
    assert page.get_attribute("html", "data-trading-state") == "ACTIVE"
    # Candles per symbol, our fills as markers, the resting LIMIT buys as price lines.
    xrp = "figure[data-symbol='XRP/ETH'] .chart"
    page.wait_for_selector(f"{xrp}[data-bars]:not([data-bars='0']):not([data-markers='0'])"
                           ":not([data-price-lines='0'])", state="attached", timeout=LIVE_TIMEOUT_MS)
    assert page.locator(f"{xrp} canvas").count() > 0
    page.wait_for_selector("#equity-chart:not([data-points='0'])", state="attached", timeout=LIVE_TIMEOUT_MS)
    page.wait_for_selector("#orders tr button[aria-label^='Cancel order']", timeout=LIVE_TIMEOUT_MS)
    page.wait_for_selector("#fills tr", timeout=LIVE_TIMEOUT_MS)
    # The protective orders: the bracket's row (emulated on the paper venue) with its legs and a cancel button.
    assert page.get_by_role("heading", name="Protective orders").is_visible()
    row = "#contingent tr[data-kind='bracket'][data-mode='emulated']"
    page.wait_for_selector(f"{row} button[aria-label^='Cancel protective order']", timeout=LIVE_TIMEOUT_MS)
    assert page.locator("#contingent-empty").is_hidden()
    legs = page.locator(f"{row} td[data-field='legs']").text_content() or ""
    assert legs.startswith("entry 30") and "| take_profit " in legs and "| stop_loss " in legs, legs
    assert page.get_by_role("link", name="xrp-ema-2019").is_visible()
    page.screenshot(path=screenshot_path("console-live"), full_page=True)


def test_kill_is_reachable_with_tab_and_works_with_enter(console: Console) -> None:
    page = console.page
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "kill":
            break
    else:
        pytest.fail("the Kill button is not reachable with Tab")
    kill = page.locator("#kill")
    assert kill.get_attribute("aria-label")
    assert kill.evaluate("el => el.tagName") == "BUTTON"
    outline = kill.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert outline.startswith("solid") and not outline.endswith(" 0px"), outline  # visible focus
    page.keyboard.press("Enter")
    page.wait_for_selector("html[data-trading-state='HALTED'][data-kill-switch='true']", state="attached",
                           timeout=READY_TIMEOUT_MS)
    risk = _risk(console)
    assert risk["state"] == "HALTED" and risk["kill_switch"] is True
    assert console.api.ok("GET", "/status")["trading_state"] == "HALTED"
    # The kill cancelled the emulated bracket too: the table shows its empty state.
    page.wait_for_selector("#contingent-empty", state="visible", timeout=READY_TIMEOUT_MS)
    assert page.locator("#contingent tr").count() == 0
    assert console.api.ok("GET", "/contingent", {"active": "true"})["contingent"] == []


def test_positions_match_the_api(console: Console) -> None:
    """Trading is halted (previous test), so positions settle; the page must show what the API says."""
    page = console.page

    precision = _precision(console)

    def shown_equals_api() -> dict[str, Any] | None:
        # As the CLI prints them: prices at the tick size, sizes at the step size, money at the quote asset's.
        expected = {p["symbol"]: {k: EMPTY if p[k] is None else precision.cell(k, p[k], p) for k in POSITION_FIELDS}
                    for p in console.api.ok("GET", "/positions")["positions"]}
        shown = page.evaluate(POSITIONS_JS)
        if {sym: {k: row.get(k) for k in POSITION_FIELDS} for sym, row in shown.items()} == expected:
            return expected
        next_state(page)  # the page may be a state behind the API (or the API a fill ahead): next push
        return None

    expected = wait_until(shown_equals_api, 30, "the positions table to equal GET /positions")
    assert expected, "no positions at all: the replay should have traded"


def _precision(c: Console) -> Precision:
    return Precision.from_config(c.api.ok("GET", "/config")["config"])


def _places(text: str) -> int:
    """Decimal places of a number as shown (0 without a point)."""
    return len(text.partition(".")[2])


def test_numbers_are_shown_at_the_instrument_precision(console: Console) -> None:
    """Prices at the tick size's places (8 for XRP/ETH), exactly as ``cli_format`` formats them."""
    page = console.page
    state = console.api.ok("GET", "/console/state")
    assert state["precision"]["tick"]["XRP/ETH"] == XRP_TICK_PLACES
    assert state["precision"]["step"]["XRP/ETH"] == 0 and state["precision"]["quote"]["XRP/ETH"] == "ETH"
    assert state["precision"]["asset"]["ETH"] == XRP_TICK_PLACES and state["precision"]["equity_asset"] == "ETH"

    avg = page.locator("#positions tr[data-key='XRP/ETH'] td[data-field='avg_price']").text_content() or ""
    assert re.fullmatch(r"\d+\.\d+", avg) and _places(avg) == XRP_TICK_PLACES, avg
    prices = page.locator("#fills tr td[data-field='price']").all_text_contents()
    assert prices, "no fills shown"
    assert all(re.fullmatch(r"\d+\.\d+", p) and _places(p) == XRP_TICK_PLACES for p in prices), prices
    sizes = page.locator("#fills tr td[data-field='size']").all_text_contents()
    assert all(re.fullmatch(r"\d+", z) for z in sizes), sizes  # step size 1: whole XRP
    # The page's own formatter rounds the decimal string half-even, like the CLI (never through a float).
    shown = page.evaluate("(cases) => cases.map(([v, p]) => window.aaitiFormat.number(v, p))",
                          [list(case) for case in FORMAT_CASES])
    assert shown == [format_number(v, p) for v, p in FORMAT_CASES]


def test_resume_after_kill_needs_the_confirmation(console: Console) -> None:
    page = console.page
    page.click("#resume")
    page.wait_for_selector("#controls[data-command-status='refused'][data-last-command='resume']",
                           state="attached", timeout=READY_TIMEOUT_MS)
    page.wait_for_selector("#resume-confirm", state="visible", timeout=READY_TIMEOUT_MS)
    assert page.get_by_role("alertdialog", name="Lift the kill switch?").is_visible()
    risk = _risk(console)
    assert risk["state"] == "HALTED" and risk["kill_switch"] is True, "resumed without the confirmation"
    page.screenshot(path=screenshot_path("console-resume-confirm"), full_page=True)

    page.get_by_role("button", name="Confirm: lift the kill switch and resume trading").click()
    page.wait_for_selector("#controls[data-command-status='ok']", state="attached", timeout=READY_TIMEOUT_MS)
    page.wait_for_selector("html[data-trading-state='ACTIVE'][data-kill-switch='false']", state="attached",
                           timeout=READY_TIMEOUT_MS)
    risk = _risk(console)
    assert risk["state"] == "ACTIVE" and risk["kill_switch"] is False
    assert page.locator("#resume-confirm").is_hidden()


def test_an_open_order_is_cancelled_from_its_row(console: Console) -> None:
    page = console.page
    button = page.locator("#orders tr button[aria-label^='Cancel order']").first
    button.wait_for(timeout=LIVE_TIMEOUT_MS)  # the resting strategy places its LIMIT buys again
    label = button.get_attribute("aria-label") or ""
    client_order_id = label.removeprefix("Cancel order ")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#command-result:has-text('cancel requested for {client_order_id}')",
                           timeout=READY_TIMEOUT_MS)
    wait_until(lambda: console.api.ok("GET", f"/orders/{client_order_id}")["order"]["status"] == "CANCELED", 15,
               f"order {client_order_id} to be CANCELED")
    page.wait_for_selector(f"#orders tr[data-key='{client_order_id}']", state="detached", timeout=READY_TIMEOUT_MS)


def test_new_log_lines_appear_in_the_tail_and_the_level_filter_applies(console: Console) -> None:
    page = console.page
    lines = "#log-lines li"
    assert page.locator(f"{lines}[data-level='debug']").count() == 0  # filter "info" by default
    # A command nobody sent before in this session: its admin.command line is new.
    assert console.api.ok("POST", "/pause", body={"reason": "console test"})["state"] == "REDUCING"
    page.wait_for_selector("#log-lines li[data-event='admin.command']:has-text('path=/pause')",
                           state="attached", timeout=READY_TIMEOUT_MS)
    page.wait_for_selector("html[data-trading-state='REDUCING']", state="attached", timeout=READY_TIMEOUT_MS)
    page.select_option("#log-level", "warning")
    page.wait_for_selector(f"{lines}[data-level='info']", state="detached", timeout=READY_TIMEOUT_MS)
    page.select_option("#log-level", "info")
    page.wait_for_selector(f"{lines}[data-level='info']", timeout=READY_TIMEOUT_MS)
    assert console.api.ok("POST", "/resume", body={})["state"] == "ACTIVE"
    page.wait_for_selector("html[data-trading-state='ACTIVE']", state="attached", timeout=READY_TIMEOUT_MS)
    page.screenshot(path=screenshot_path("console-log"), full_page=True)


def test_backtest_report_opens_read_only(console: Console) -> None:
    page = console.page
    with page.expect_popup() as popup_info:
        page.get_by_role("link", name="xrp-ema-2019").click()
    report = popup_info.value
    try:
        report.wait_for_selector("html[data-ready]", state="attached", timeout=READY_TIMEOUT_MS)
        assert report.get_attribute("html", "data-ready") == "true"
        assert report.url == console.base + "/backtests/xrp-ema-2019/report.html"
        headers = console.responses[report.url]
        assert "sandbox" in headers["content-security-policy"]
        report.screenshot(path=screenshot_path("console-backtest-report"), full_page=True)
    finally:
        report.close()
    outside = console.api.get("/backtests/..%2F..%2Fetc/report.html")
    assert outside.status in (400, 404)


def test_the_page_never_left_the_daemon(console: Console) -> None:
    """Last: everything the session loaded came from 127.0.0.1:<port>; nothing was blocked or failed."""
    assert console.browser.blocked == []
    assert console.requests and all(url.startswith(console.base + "/") for url in console.requests), [
        url for url in console.requests if not url.startswith(console.base + "/")]
    # Chromium reports every 4xx answer as a console error; the wrong-token login (401) and the
    # unconfirmed resume (409) were asked for. Anything else is a real error.
    expected = re.compile(r"^Failed to load resource: the server responded with a status of (401|409) ")
    assert [e for e in console.errors if not expected.match(e)] == []

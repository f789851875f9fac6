"""The self-contained HTML backtest report: content, accessibility, offline-ness, determinism."""

from __future__ import annotations

import copy
import json
import math
from html.parser import HTMLParser
from typing import Any

import pytest

from daemon.backtest import html_report
from daemon.backtest.html_report import render_html
from daemon.web import LIGHTWEIGHT_CHARTS_JS, asset_text
from tests.integration.browser.sample_results import hostile_result, sample_result


class Table:
    """One parsed ``<table>``: caption, header cells and body rows as text."""

    def __init__(self, table_id: str | None) -> None:
        self.id = table_id
        self.caption = ""
        self.head: list[tuple[str, str | None]] = []  # (text, scope)
        self.rows: list[list[tuple[str, str, str | None]]] = []  # (tag, text, scope)


class Page(HTMLParser):
    """Collects what the tests look at: tables, headings, elements with attributes, script bodies."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self.headings: list[tuple[str, str]] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._table: Table | None = None
        self._in: list[str] = []
        self._text: list[str] = []
        self._cell: tuple[str, str | None] | None = None
        self._script_attrs: dict[str, str | None] | None = None
        self._heading: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "table":
            self._table = Table(attributes.get("id"))
            self.tables.append(self._table)
        elif tag in ("th", "td", "caption") or tag in ("h1", "h2", "h3"):
            self._text = []
            if tag in ("th", "td"):
                self._cell = (tag, attributes.get("scope"))
            if tag.startswith("h"):
                self._heading = tag
        elif tag == "tr" and self._table is not None and "thead" not in self._in:
            self._table.rows.append([])
        elif tag == "script":
            self._script_attrs = attributes
            self._text = []
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]
        text = "".join(self._text).strip()
        if tag == "table":
            self._table = None
        elif tag == "caption" and self._table is not None:
            self._table.caption = text
        elif tag in ("th", "td") and self._table is not None and self._cell is not None:
            if "thead" in self._in:
                self._table.head.append((text, self._cell[1]))
            else:
                self._table.rows[-1].append((self._cell[0], text, self._cell[1]))
            self._cell = None
        elif tag in ("h1", "h2", "h3"):
            self.headings.append((tag, text))
        elif tag == "script" and self._script_attrs is not None:
            self.scripts.append((self._script_attrs, "".join(self._text)))
            self._script_attrs = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def table(self, caption_start: str) -> Table:
        matches = [t for t in self.tables if t.caption.startswith(caption_start)]
        assert len(matches) == 1, (caption_start, [t.caption for t in self.tables])
        return matches[0]

    def charts(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if "data-chart" in attrs]

    def data(self) -> Any:
        bodies = [body for attrs, body in self.scripts if attrs.get("id") == "backtest-data"]
        assert len(bodies) == 1
        return json.loads(bodies[0])


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return sample_result()


@pytest.fixture(scope="module")
def html(result: dict[str, Any]) -> str:
    return render_html(result)


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    return Page(html)


def test_summary_table_shows_every_metric_with_the_exact_decimal_strings(result: dict[str, Any], page: Page) -> None:
    summary = page.table("Summary metrics")
    assert summary.caption == "Summary metrics (amounts in ETH)"
    values = {row[0][1]: row[1][1] for row in summary.rows}
    assert values["Total profit"] == result["summary"]["total_profit"]
    assert values["Final equity"] == result["summary"]["final_equity"]
    assert values["Fees paid"] == result["summary"]["fees_paid"]
    assert values["Expectancy per trade"] == result["summary"]["expectancy"]
    assert values["Trades"] == str(result["summary"]["trades"])
    assert values["Sharpe"] == "1.842"
    assert values["Max drawdown duration"] == "3h 25m"
    assert values["Start"] == "2019-10-11 00:00:00"
    assert len(summary.rows) == len(html_report.SUMMARY_ROWS)
    # Every metric name is a row header, every value a plain cell.
    assert all(row[0][0] == "th" and row[0][2] == "row" and row[1][0] == "td" for row in summary.rows)


def test_breakdown_period_and_trade_tables_have_one_row_per_entry(result: dict[str, Any], page: Page) -> None:
    per_symbol = page.table("Per symbol")
    assert [row[0][1] for row in per_symbol.rows] == ["XRPETH", "LTCETH"]
    assert per_symbol.rows[0][5][1] == result["per_symbol"][0]["total_profit"]
    per_strategy = page.table("Per strategy")
    assert [row[0][1] for row in per_strategy.rows] == ["bollinger_revert", "ema_cross"]
    exits = page.table("Trades by exit reason")
    counts = sorted(result["exit_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(row[0][1], row[1][1]) for row in exits.rows] == [(k, str(v)) for k, v in counts]
    for unit in ("day", "week", "month"):
        table = page.table(f"Profit per {unit}")
        assert [(r[0][1], r[1][1]) for r in table.rows] == [(p["period"], p["profit"]) for p in result["periods"][unit]]
    trades = page.table("Closed trades")
    assert len(trades.rows) == len(result["trades"])
    first = result["trades"][0]
    assert [c[1] for c in trades.rows[0]][:3] == ["1", first["strategy"], first["symbol"]]
    assert first["profit"] in [c[1] for c in trades.rows[0]]
    assert len(page.table("Fills").rows) == len(result["fills"])
    denials = page.table("Risk denials")
    assert [(r[0][1], r[1][1]) for r in denials.rows] == [("MAX_POSITION", "4"), ("ORDER_RATE", "2")]


def test_one_candlestick_chart_per_symbol_plus_equity_and_drawdown(page: Page) -> None:
    charts = page.charts()
    assert [(c["data-chart"], c.get("data-symbol")) for c in charts] == [
        ("candles", "LTCETH"),
        ("candles", "XRPETH"),
        ("equity", None),
        ("drawdown", None),
    ]
    assert all(c.get("role") == "img" and c.get("aria-label") for c in charts)


def test_page_is_accessible_without_javascript(page: Page, html: str) -> None:
    assert '<html lang="en">' in html
    assert [h for h in page.headings if h[0] == "h1"] == [("h1", "Backtest xrp-eth 2019-10-11 to 2019-10-14")]
    assert {text for tag, text in page.headings if tag == "h2"} >= {"Summary", "Charts", "Trades", "By period"}
    for table in page.tables:
        assert table.caption, "every table has a caption"
        assert table.head and all(scope == "col" for _, scope in table.head), table.caption
    assert "<noscript>" in html


def test_page_is_self_contained_and_fetches_nothing(page: Page, html: str) -> None:
    for tag, attrs in page.elements:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base"), tag
        assert "src" not in attrs, (tag, attrs)
        href = attrs.get("href")
        if href is not None:
            assert href.startswith("#") or href == "https://www.tradingview.com/", href
    policies = [a["content"] for t, a in page.elements if a.get("http-equiv") == "Content-Security-Policy"]
    assert policies == [html_report.CONTENT_SECURITY_POLICY]
    assert "default-src 'none'" in html_report.CONTENT_SECURITY_POLICY
    assert "@import" not in html and "@font-face" not in html
    # The vendored library is inlined verbatim, as are the report's own script and style.
    scripts = [body for attrs, body in page.scripts if "type" not in attrs]
    assert scripts[0].strip() == asset_text(LIGHTWEIGHT_CHARTS_JS).strip()
    assert scripts[0].lstrip().startswith("/*!\n * @license\n * TradingView Lightweight Charts™ v5.")
    assert scripts[1].strip() == asset_text(html_report.REPORT_JS).strip()
    assert asset_text(html_report.REPORT_CSS).strip() in html


def test_embedded_json_is_the_result(result: dict[str, Any], page: Page) -> None:
    assert page.data() == result


def test_same_dict_renders_the_same_bytes_whatever_its_key_order(result: dict[str, Any], html: str) -> None:
    def reorder(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reorder(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reorder(v) for v in value]
        return value

    assert render_html(copy.deepcopy(result)) == html
    assert render_html(reorder(result)) == html


def test_no_trades_renders_a_full_page_with_empty_tables() -> None:
    result = sample_result(with_trades=False)
    page = Page(render_html(result))
    assert page.table("Closed trades").rows == [
        [("td", "No trades: the strategies closed no position in this run.", None)]
    ]
    assert page.table("Per symbol").rows[0][0][1] == "No symbols traded."
    assert page.table("Trades by exit reason").rows[0][0][1] == "No trades closed."
    assert page.table("Risk denials").rows[0][0][1] == "No orders were denied."
    values = {row[0][1]: row[1][1] for row in page.table("Summary metrics").rows}
    assert values["Total profit"] == "0"
    assert values["Profit factor"] == "—"  # null: no losses
    assert len(page.charts()) == 4  # the candles and equity still chart
    assert page.data()["trades"] == []


def test_single_symbol_short_run_says_why_cagr_is_zero_and_missing_series_say_so() -> None:
    result = sample_result(("XRPETH",), n_bars=90)
    page = Page(render_html(result))
    assert [c.get("data-symbol") for c in page.charts() if c["data-chart"] == "candles"] == ["XRPETH"]
    assert "CAGR is reported as 0.0: the run is shorter than one day." in render_html(result)
    result["equity"] = []
    result["candles"]["XRPETH"]["bars"] = []
    html = render_html(result)
    assert Page(html).charts() == []
    assert "No equity samples in the result." in html and "No 1m bars for XRPETH." in html


def test_hostile_strings_cannot_break_out_of_the_data_or_the_markup() -> None:
    result = hostile_result()
    html = render_html(result)
    page = Page(html)
    # Exactly the three scripts the page ships: data, library, report.
    assert [attrs.get("type") for attrs, _ in page.scripts] == ["application/json", None, None]
    data_body = next(body for attrs, body in page.scripts if attrs.get("id") == "backtest-data")
    assert "<" not in data_body and ">" not in data_body and "&" not in data_body
    assert page.data() == result
    assert "<img" not in html and "<b>path</b>" not in html
    assert not any(tag == "img" for tag, _ in page.elements)
    exits = page.table("Trades by exit reason")
    assert exits.rows[0][0][1] == result["trades"][0]["exit_reason"]
    errors = page.table("Strategies that raised")
    assert errors.rows[0][0][1] == "<img src=x onerror=alert(1)>"
    assert ("h2", "Strategy errors") in page.headings


def test_non_finite_floats_are_embedded_as_null_and_shown_as_text() -> None:
    result = sample_result(("XRPETH",), n_bars=60)
    result["summary"]["sortino"] = math.inf
    result["summary"]["calmar"] = math.nan
    page = Page(render_html(result))
    values = {row[0][1]: row[1][1] for row in page.table("Summary metrics").rows}
    assert values["Sortino"] == "∞" and values["Calmar"] == "n/a"
    assert page.data()["summary"]["sortino"] is None and page.data()["summary"]["calmar"] is None


def test_an_asset_that_would_close_its_element_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_report, "asset_text", lambda path: "var x = '</script>';")
    with pytest.raises(ValueError, match="cannot be inlined"):
        render_html(sample_result(("XRPETH",), n_bars=10))


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0 ms"), (850, "850 ms"), (247_000, "4m 07s"), (7_500_000, "2h 05m"), (93_780_000, "1d 02h 03m")],
)
def test_durations_read_as_days_hours_minutes(ms: int, text: str) -> None:
    assert html_report._duration(ms) == text


def test_timestamps_are_utc_with_milliseconds_only_when_present() -> None:
    assert html_report._timestamp(1_570_752_000_000) == "2019-10-11 00:00:00"
    assert html_report._timestamp(1_570_752_000_250) == "2019-10-11 00:00:00.250"

"""Render a backtest result dict as one self-contained HTML page.

The page carries everything inline: its CSS, the vendored TradingView Lightweight Charts
library, the report script and the result itself as JSON in a ``<script
type="application/json">`` tag. It opens from disk with no network (a Content-Security-Policy
forbids every fetch), and the tables are plain HTML, readable without JavaScript. The same
dict always renders to the same bytes: nothing here reads a clock or depends on hash order.

The input is the RESULT DICT of ``daemon/backtest/result.py`` (schema ``aaiti.backtest/1``):
money and sizes are decimal strings shown exactly as given, ratios are floats, times are
epoch milliseconds shown in UTC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from pathlib import PurePath
from typing import Any, Literal

from daemon.web import LIGHTWEIGHT_CHARTS_JS, asset_text

__all__ = ["render_html"]

REPORT_JS = "report/backtest_report.js"
REPORT_CSS = "report/backtest_report.css"

# Only inline scripts and styles may run; no request of any kind may leave the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

Kind = Literal["text", "code", "int", "money", "profit", "pct", "profit_pct", "ratio", "days", "duration", "ts"]
# "profit" and "profit_pct" are coloured by sign; "money" and "pct" (fees, prices, win rate) are not.
Column = tuple[str, str, Kind]  # (header, key in the row dict, how to format the value)

NONE_TEXT = "—"

SUMMARY_ROWS: tuple[Column, ...] = (
    ("Start", "start_ms", "ts"),
    ("End", "end_ms", "ts"),
    ("Days", "days", "days"),
    ("Starting equity", "starting_equity", "money"),
    ("Final equity", "final_equity", "money"),
    ("Total profit", "total_profit", "profit"),
    ("Total profit %", "total_profit_pct", "profit_pct"),
    ("CAGR %", "cagr_pct", "profit_pct"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("Calmar", "calmar", "ratio"),
    ("Max drawdown", "max_drawdown", "money"),
    ("Max drawdown %", "max_drawdown_pct", "pct"),
    ("Max drawdown duration", "max_drawdown_duration_ms", "duration"),
    ("Trades", "trades", "int"),
    ("Wins", "wins", "int"),
    ("Losses", "losses", "int"),
    ("Win rate %", "win_rate_pct", "pct"),
    ("Profit factor", "profit_factor", "ratio"),
    ("Expectancy per trade", "expectancy", "profit"),
    ("Average holding time", "avg_holding_ms", "duration"),
    ("Fees paid", "fees_paid", "money"),
    ("Orders", "orders", "int"),
    ("Fills", "fills", "int"),
)

BREAKDOWN_COLUMNS: tuple[Column, ...] = (
    ("Trades", "trades", "int"),
    ("Wins", "wins", "int"),
    ("Losses", "losses", "int"),
    ("Win rate %", "win_rate_pct", "pct"),
    ("Total profit", "total_profit", "profit"),
    ("Profit factor", "profit_factor", "ratio"),
    ("Expectancy", "expectancy", "profit"),
    ("Fees paid", "fees_paid", "money"),
    ("Avg holding", "avg_holding_ms", "duration"),
)

PERIOD_COLUMNS: tuple[Column, ...] = (
    ("Period", "period", "text"),
    ("Profit", "profit", "profit"),
    ("Trades", "trades", "int"),
)

TRADE_COLUMNS: tuple[Column, ...] = (
    ("Strategy", "strategy", "text"),
    ("Symbol", "symbol", "text"),
    ("Side", "side", "text"),
    ("Entry time", "entry_ts_ms", "ts"),
    ("Exit time", "exit_ts_ms", "ts"),
    ("Entry price", "entry_price", "money"),
    ("Exit price", "exit_price", "money"),
    ("Size", "size", "money"),
    ("Profit", "profit", "profit"),
    ("Profit %", "profit_pct", "profit_pct"),
    ("Fees", "fees", "money"),
    ("Exit reason", "exit_reason", "text"),
    ("Holding", "holding_ms", "duration"),
)

FILL_COLUMNS: tuple[Column, ...] = (
    ("Time", "ts_ms", "ts"),
    ("Client order id", "client_order_id", "code"),
    ("Strategy", "strategy", "text"),
    ("Symbol", "symbol", "text"),
    ("Side", "side", "text"),
    ("Price", "price", "money"),
    ("Size", "size", "money"),
    ("Fee", "fee", "money"),
    ("Fee asset", "fee_asset", "text"),
    ("Liquidity", "liquidity", "text"),
)


def render_html(result: Mapping[str, Any]) -> str:
    """Return the backtest report for ``result`` (a RESULT DICT) as one self-contained HTML page.

    Deterministic: the same dict gives the same string. Missing sections render as empty
    tables with a note, so a run without trades (or without bars) still gives a full page.
    """
    manifest: Mapping[str, Any] = result.get("manifest") or {}
    summary: Mapping[str, Any] = result.get("summary") or {}
    quote = str(manifest.get("quote_asset", ""))
    title = _title(manifest)
    body = "\n".join(
        (
            '<a class="skip" href="#main">Skip to the report</a>',
            _header(title, str(result.get("schema", "")), manifest),
            _nav(),
            '<main id="main">',
            _strategy_errors(summary),
            _summary_section(summary, quote),
            _charts_section(result),
            _breakdowns_section(result, quote),
            _periods_section(result.get("periods") or {}, quote),
            _trades_section(result, quote),
            "</main>",
            _footer(manifest),
        )
    )
    return "\n".join(
        (
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>\n{_inline_asset(REPORT_CSS, 'style')}</style>",
            "</head>",
            "<body>",
            body,
            f'<script type="application/json" id="backtest-data">{_embedded_json(result)}</script>',
            f"<script>\n{_inline_asset(LIGHTWEIGHT_CHARTS_JS, 'script')}</script>",
            f"<script>\n{_inline_asset(REPORT_JS, 'script')}</script>",
            "</body>",
            "</html>",
            "",
        )
    )


# --- page sections ------------------------------------------------------------------------


def _title(manifest: Mapping[str, Any]) -> str:
    stem = PurePath(str(manifest.get("config_path", "backtest"))).stem or "backtest"
    span = ""
    if isinstance(manifest.get("from_ms"), int) and isinstance(manifest.get("to_ms"), int):
        span = f" {_date(manifest['from_ms'])} to {_date(manifest['to_ms'])}"
    return f"Backtest {stem}{span}"


def _header(title: str, schema: str, manifest: Mapping[str, Any]) -> str:
    items: tuple[Column, ...] = (
        ("Config", "config_path", "code"),
        ("Config SHA-256", "config_sha256", "code"),
        ("From", "from_ms", "ts"),
        ("To", "to_ms", "ts"),
        ("Quote asset", "quote_asset", "text"),
        ("Seed", "seed", "int"),
        ("aaiti version", "aaiti_version", "text"),
        ("Code version", "code_version", "code"),
        ("Result schema", "_schema", "text"),
    )
    values = {**manifest, "_schema": schema}
    entries = "".join(
        f"<dt>{escape(label)}</dt><dd>{_cell(kind, values.get(key))[0]}</dd>" for label, key, kind in items
    )
    files = _table(
        "Data files",
        (("File", "path", "code"), ("Rows", "rows", "int"), ("SHA-256", "sha256", "code")),
        manifest.get("data_files") or [],
        empty="No data files recorded.",
    )
    essentials = " · ".join(
        (
            f"{_cell('ts', manifest.get('from_ms'))[0]} to {_cell('ts', manifest.get('to_ms'))[0]} UTC",
            f"quote {_cell('text', manifest.get('quote_asset'))[0]}",
            f"seed {_cell('int', manifest.get('seed'))[0]}",
            f"config {_cell('code', manifest.get('config_path'))[0]}",
            f"aaiti {_cell('text', manifest.get('aaiti_version'))[0]} "
            f"({_cell('code', str(manifest.get('code_version', ''))[:12])[0]})",
        )
    )
    return (
        f'<header>\n<h1>{escape(title)}</h1>\n<p class="subtitle">{essentials}</p>\n'
        f"<details>\n<summary>Run manifest: config, data files and their hashes</summary>\n"
        f'<dl class="manifest">{entries}</dl>\n{files}\n</details>\n</header>'
    )


def _nav() -> str:
    links = (
        ("summary", "Summary"),
        ("charts", "Charts"),
        ("breakdowns", "By symbol and strategy"),
        ("periods", "By period"),
        ("trades", "Trades"),
    )
    items = "".join(f'<li><a href="#{anchor}">{escape(text)}</a></li>' for anchor, text in links)
    return f'<nav aria-label="Report sections"><ul>{items}</ul></nav>'


def _strategy_errors(summary: Mapping[str, Any]) -> str:
    errors = summary.get("strategy_errors") or []
    if not errors:
        return ""
    table = _table(
        "Strategies that raised",
        (("Strategy", "strategy", "text"), ("Error", "error", "code"), ("Restarts", "restarts", "int")),
        errors,
        empty="",
    )
    return (
        '<section class="warning" aria-labelledby="errors-h">\n'
        '<h2 id="errors-h">Strategy errors</h2>\n'
        "<p>These strategies raised during the run; their results are incomplete.</p>\n"
        f"{table}\n</section>"
    )


def _summary_section(summary: Mapping[str, Any], quote: str) -> str:
    metrics = _key_value_table(
        f"Summary metrics{_in_quote(quote)}",
        ("Metric", "Value"),
        [(label, _cell(kind, summary.get(key))) for label, key, kind in SUMMARY_ROWS],
        table_id="summary-table",
    )
    note = ""
    days = summary.get("days")
    if isinstance(days, int | float) and days < 1:
        note = '<p class="empty">CAGR is reported as 0.0: the run is shorter than one day.</p>'
    denials = _counts_table("Risk denials by reason", "Reason", summary.get("denials") or {}, "No orders were denied.")
    return (
        '<section id="summary" aria-labelledby="summary-h">\n<h2 id="summary-h">Summary</h2>\n'
        f'<div class="grid">\n<div>{metrics}{note}</div>\n<div>{denials}</div>\n</div>\n</section>'
    )


def _charts_section(result: Mapping[str, Any]) -> str:
    candles: Mapping[str, Any] = result.get("candles") or {}
    trades = result.get("trades") or []
    parts = [
        '<section id="charts" aria-labelledby="charts-h">',
        '<h2 id="charts-h">Charts</h2>',
        '<noscript><p class="empty">The charts need JavaScript; every number is in the tables.</p></noscript>',
    ]
    for symbol in sorted(candles):
        series = candles[symbol] or {}
        bars = series.get("bars") or []
        timeframe = str(series.get("timeframe", ""))
        symbol_trades = sum(1 for t in trades if t.get("symbol") == symbol)
        parts.append(f"<h3>{escape(symbol)} price</h3>")
        if not bars:
            parts.append(f'<p class="empty">No {escape(timeframe)} bars for {escape(symbol)}.</p>')
            continue
        label = f"Candlestick chart of {symbol} {timeframe} bars with the entries and exits of {symbol_trades} trades"
        parts.append(
            _figure(
                f'data-chart="candles" data-symbol="{escape(symbol)}"',
                label,
                f"{symbol}, {len(bars)} {timeframe} bars, {symbol_trades} trades: "
                "blue up-arrows are entries; down-arrows are exits, green for a profit and red for a loss, "
                "labelled with the exit reason; grey dots are fills outside closed trades.",
            )
        )
    if not candles:
        parts.append('<p class="empty">No candles in the result.</p>')
    parts.append("<h3>Equity and drawdown</h3>")
    if result.get("equity"):
        parts.append(
            _figure(
                'data-chart="equity"', "Line chart of account equity over time", "Equity, marked to each bar close."
            )
        )
        parts.append(
            _figure(
                'data-chart="drawdown"',
                "Area chart of drawdown from the equity peak, in percent",
                "Drawdown from the running peak, %.",
            )
        )
    else:
        parts.append('<p class="empty">No equity samples in the result.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _figure(chart_attrs: str, label: str, caption: str) -> str:
    return (
        f'<figure>\n<div class="chart" {chart_attrs} role="img" aria-label="{escape(label)}"></div>\n'
        f"<figcaption>{escape(caption)}</figcaption>\n</figure>"
    )


def _breakdowns_section(result: Mapping[str, Any], quote: str) -> str:
    per_symbol = _table(
        f"Per symbol{_in_quote(quote)}",
        (("Symbol", "symbol", "text"), *BREAKDOWN_COLUMNS),
        result.get("per_symbol") or [],
        empty="No symbols traded.",
        row_header=True,
    )
    per_strategy = _table(
        f"Per strategy{_in_quote(quote)}",
        (("Strategy", "strategy", "text"), *BREAKDOWN_COLUMNS),
        result.get("per_strategy") or [],
        empty="No strategies traded.",
        row_header=True,
    )
    exits = _counts_table("Trades by exit reason", "Exit reason", result.get("exit_reasons") or {}, "No trades closed.")
    return (
        '<section id="breakdowns" aria-labelledby="breakdowns-h">\n'
        '<h2 id="breakdowns-h">By symbol and strategy</h2>\n'
        f"{per_symbol}\n{per_strategy}\n{exits}\n</section>"
    )


def _periods_section(periods: Mapping[str, Any], quote: str) -> str:
    tables = "\n".join(
        "<div>"
        + _table(
            f"Profit per {unit}{_in_quote(quote)}",
            PERIOD_COLUMNS,
            periods.get(unit) or [],
            empty=f"No trades closed in any {unit}.",
            row_header=True,
        )
        + "</div>"
        for unit in ("day", "week", "month")
    )
    return (
        '<section id="periods" aria-labelledby="periods-h">\n<h2 id="periods-h">By period</h2>\n'
        "<p>Closed trades' profit, by the UTC period of their exit.</p>\n"
        f'<div class="grid">\n{tables}\n</div>\n</section>'
    )


def _trades_section(result: Mapping[str, Any], quote: str) -> str:
    trades = result.get("trades") or []
    fills = result.get("fills") or []
    trade_table = _table(
        f"Closed trades, in order of entry{_in_quote(quote)}",
        (("#", "_n", "int"), *TRADE_COLUMNS),
        [{"_n": n, **t} for n, t in enumerate(trades, start=1)],
        empty="No trades: the strategies closed no position in this run.",
        row_header=True,
        table_id="trades-table",
    )
    fill_table = _table("Fills, in time order", FILL_COLUMNS, fills, empty="No fills.")
    return (
        '<section id="trades" aria-labelledby="trades-h">\n<h2 id="trades-h">Trades</h2>\n'
        f"{trade_table}\n<details>\n<summary>All {len(fills)} fills</summary>\n{fill_table}\n</details>\n</section>"
    )


def _footer(manifest: Mapping[str, Any]) -> str:
    version = escape(str(manifest.get("aaiti_version", "")))
    return (
        f"<footer>\n<p>Made by aaiti {version} from the run's result.json; the page works offline.</p>\n"
        "<p>Charts: TradingView Lightweight Charts™, Copyright (c) TradingView, Inc. "
        '<a href="https://www.tradingview.com/">https://www.tradingview.com/</a>, '
        "licensed under the Apache License 2.0.</p>\n</footer>"
    )


# --- tables -------------------------------------------------------------------------------


def _table(
    caption: str,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    empty: str,
    row_header: bool = False,
    table_id: str | None = None,
) -> str:
    """A data table: a header row of ``columns``, then one row per mapping (first cell a row header if asked)."""
    head = "".join(
        f'<th scope="col"{_class_attr("num" if _is_numeric(kind) else "")}>{escape(label)}</th>'
        for label, _, kind in columns
    )
    body_rows = []
    for row in rows:
        cells = []
        for index, (_, key, kind) in enumerate(columns):
            text, css = _cell(kind, row.get(key))
            tag = "th" if row_header and index == 0 else "td"
            scope = ' scope="row"' if tag == "th" else ""
            cells.append(f"<{tag}{scope}{_class_attr(css)}>{text}</{tag}>")
        body_rows.append(f"<tr>{''.join(cells)}</tr>")
    if not body_rows:
        body_rows.append(f'<tr><td class="empty" colspan="{len(columns)}">{escape(empty)}</td></tr>')
    id_attr = f' id="{table_id}"' if table_id else ""
    return (
        f'<div class="table-wrap"><table{id_attr}>\n<caption>{escape(caption)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body_rows) + "\n</tbody>\n</table></div>"
    )


def _key_value_table(
    caption: str, headers: tuple[str, str], rows: Sequence[tuple[str, tuple[str, str]]], *, table_id: str
) -> str:
    """A two-column table whose first column names each row (``<th scope="row">``)."""
    body = "\n".join(
        f'<tr><th scope="row">{escape(label)}</th><td{_class_attr(css)}>{text}</td></tr>' for label, (text, css) in rows
    )
    return (
        f'<div class="table-wrap"><table id="{table_id}">\n<caption>{escape(caption)}</caption>\n'
        f'<thead><tr><th scope="col">{escape(headers[0])}</th><th scope="col" class="num">{escape(headers[1])}</th>'
        f"</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _counts_table(caption: str, label: str, counts: Mapping[str, Any], empty: str) -> str:
    """Counts by name, largest first (ties by name, so the order never depends on the dict's)."""
    ordered = sorted(counts.items(), key=lambda item: (-_as_int(item[1]), str(item[0])))
    return _table(
        caption,
        ((label, "name", "text"), ("Count", "count", "int")),
        [{"name": name, "count": count} for name, count in ordered],
        empty=empty,
        row_header=True,
    )


# --- cell formatting ----------------------------------------------------------------------


def _cell(kind: Kind, value: Any) -> tuple[str, str]:
    """Escaped display text and CSS class of one value. Decimal strings are shown exactly as given."""
    css = "num" if _is_numeric(kind) else ""
    if value is None or value == "":
        return NONE_TEXT, css
    text: str
    if kind == "ts":
        text = _timestamp(value)
    elif kind == "duration":
        text = _duration(value)
    elif kind in ("pct", "profit_pct"):
        text = _float(value, 2)
    elif kind == "ratio":
        text = _float(value, 3)
    elif kind == "days":
        text = _float(value, 2)
    elif kind == "int":
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    else:
        text = str(value)
    if kind in ("profit", "profit_pct"):
        css = f"{css} {_sign_class(value)}".strip()
    html_text = escape(text)
    if kind == "code":
        html_text = f"<code>{html_text}</code>"
    return html_text, css


def _is_numeric(kind: Kind) -> bool:
    return kind in ("int", "money", "profit", "pct", "profit_pct", "ratio", "days", "duration")


def _sign_class(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return ""
    if number.is_nan() or number == 0:
        return ""
    return "pos" if number > 0 else "neg"


def _float(value: Any, decimals: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "∞" if value > 0 else ("-∞" if value < 0 else "n/a")
    return f"{value:,.{decimals}f}"


def _timestamp(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if value % 1000:
        text += f".{value % 1000:03d}"
    return text


def _date(value: int) -> str:
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d")


def _duration(value: Any) -> str:
    """Milliseconds as ``1d 02h 03m``, ``2h 05m``, ``4m 07s`` or ``850 ms``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)
    ms = int(value)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    seconds = ms // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s"


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _class_attr(css: str) -> str:
    return f' class="{css}"' if css else ""


def _in_quote(quote: str) -> str:
    return f" (amounts in {quote})" if quote else ""


# --- embedding ----------------------------------------------------------------------------


def _embedded_json(result: Mapping[str, Any]) -> str:
    """The result as JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` in the text.

    JSON allows ``\\u003c`` wherever ``<`` occurs (only inside strings), so a value holding
    ``</script>`` or ``<!--`` cannot end the element early. Non-finite floats become null
    (JSON.parse rejects NaN and Infinity).
    """
    text = json.dumps(_finite(result), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _inline_asset(relative_path: str, element: Literal["script", "style"]) -> str:
    """The text of a shipped asset, checked not to close its enclosing element early."""
    text = asset_text(relative_path)
    if f"</{element}" in text.lower():
        raise ValueError(f"asset {relative_path} contains '</{element}' and cannot be inlined")
    return text if text.endswith("\n") else text + "\n"

"""The terminal summary of a backtest result dict: plain text, fixed-width columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["render_table"]

_COLUMNS = ("trades", "wins", "losses", "win %", "profit", "PF", "expectancy", "fees", "avg hold")


def _when(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _num(text: str, places: int = 8) -> str:
    """A decimal string shortened for reading (the file keeps every digit)."""
    d = Decimal(text)
    shown = format(round(d, places).normalize(), "f") if d else "0"
    return shown


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{mins:02d}m"


def _pf(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return ["  " + fmt.format(*header), *("  " + fmt.format(*r) for r in rows)]


def _group_row(name: str, g: Mapping[str, Any]) -> list[str]:
    return [name, str(g["trades"]), str(g["wins"]), str(g["losses"]), f"{g['win_rate_pct']:.1f}",
            _num(g["total_profit"]), _pf(g["profit_factor"]), _num(g["expectancy"]), _num(g["fees_paid"]),
            _duration(g["avg_holding_ms"])]


def render_table(result: Mapping[str, Any]) -> str:
    """The summary a trader reads after ``aaiti backtest``: totals, ratios, per strategy and symbol."""
    man, s = result["manifest"], result["summary"]
    q = man["quote_asset"]
    lines = [
        f"Backtest of {man['config_path']}",
        f"  data          {_when(s['start_ms'])} .. {_when(s['end_ms'])} UTC ({s['days']:.2f} days)",
        f"  equity        {_num(s['starting_equity'])} -> {_num(s['final_equity'])} {q}",
        f"  profit        {_num(s['total_profit'])} {q} ({s['total_profit_pct']:+.4f} %), CAGR {s['cagr_pct']:.2f} %",
        f"  max drawdown  {_num(s['max_drawdown'])} {q} ({s['max_drawdown_pct']:.4f} %), longest "
        f"{_duration(s['max_drawdown_duration_ms'])}",
        f"  ratios        Sharpe {s['sharpe']:.3f}  Sortino {s['sortino']:.3f}  Calmar {s['calmar']:.3f}",
        f"  activity      {s['orders']} orders, {s['fills']} fills, {s['trades']} trades, "
        f"fees {_num(s['fees_paid'])} {q}",
        f"  denials       {', '.join(f'{k} {v}' for k, v in s['denials'].items()) or 'none'}",
        "",
    ]
    # The TOTAL row sums closed trades like the rows above it; the profit line above is the
    # change in marked equity, which also holds positions still open at the end.
    total = {**s, "total_profit": str(sum((Decimal(g["total_profit"]) for g in result["per_strategy"]), Decimal(0)))}
    lines += _grid(("strategy", *_COLUMNS), [_group_row(g["strategy"], g) for g in result["per_strategy"]]
                   + [_group_row("TOTAL", total)])
    lines.append("")
    lines += _grid(("symbol", *_COLUMNS), [_group_row(g["symbol"], g) for g in result["per_symbol"]])
    if result["exit_reasons"]:
        lines += ["", "  exit reasons  " + ", ".join(f"{k} {v}" for k, v in result["exit_reasons"].items())]
    errors = s["strategy_errors"]
    if errors or s.get("gave_up"):
        lines += ["", "STRATEGY ERRORS"]
        lines += [f"  {e['strategy']}: {e['error']} (restarted {e['restarts']} times)" for e in errors]
        if s.get("gave_up"):
            lines.append(f"  the supervisor gave up, the run stopped early: {s['gave_up']}")
    return "\n".join(lines) + "\n"

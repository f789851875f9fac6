"""Realistic backtest RESULT DICTs (schema aaiti.backtest/1) for the HTML report tests.

Built here from a deterministic price path rather than by the runner, so the report is tested
on its own. The numbers hang together: trades are round trips at bar closes, fills are their
two legs (plus one fill of a position still open at the end), equity is starting equity plus
the closed profit, and the summary and breakdowns are sums of the trades.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

START_MS = 1_570_752_000_000  # 2019-10-11 00:00 UTC, the first day of the bundled data
MINUTE_MS = 60_000
STARTING_EQUITY = Decimal("10")
FEE_RATE = Decimal("0.001")
BASE_PRICE = {"XRPETH": 0.0015, "LTCETH": 0.31, "BNBETH": 0.0935}
TRADE_SIZE = {"XRPETH": Decimal("100"), "LTCETH": Decimal("1"), "BNBETH": Decimal("2")}
STRATEGIES = ("ema_cross", "bollinger_revert")
EXIT_REASONS = ("signal", "take_profit", "signal", "stop_loss")


def sig10(x: float) -> float:
    """Round to 10 significant digits, as the result dict's floats are."""
    return float(f"{x:.10g}")


def price_path(symbol: str, n_bars: int) -> list[list[float]]:
    """1m bars ``[ts_ms, open, high, low, close, volume]`` following a drifting sine."""
    base = BASE_PRICE[symbol]
    phase = sorted(BASE_PRICE).index(symbol)
    bars: list[list[float]] = []
    prev_close = base
    for k in range(n_bars):
        close = base * (1 + 0.012 * math.sin(k / 14 + phase) + 0.00004 * k)
        open_ = prev_close
        high = max(open_, close) * 1.0008
        low = min(open_, close) * 0.9992
        bars.append([START_MS + k * MINUTE_MS, sig10(open_), sig10(high), sig10(low), sig10(close), 1000.0 + k])
        prev_close = close
    return bars


def _price(x: float) -> Decimal:
    return Decimal(f"{x:.8f}")


def _breakdown(name_key: str, name: str, trades: list[dict[str, Any]]) -> dict[str, Any]:
    profits = [Decimal(t["profit"]) for t in trades]
    wins = sum(1 for p in profits if p > 0)
    gross_win = sum((p for p in profits if p > 0), Decimal(0))
    gross_loss = -sum((p for p in profits if p < 0), Decimal(0))
    return {
        name_key: name,
        "trades": len(trades),
        "wins": wins,
        "losses": len(trades) - wins,
        "win_rate_pct": sig10(100 * wins / len(trades)) if trades else 0.0,
        "total_profit": str(sum(profits, Decimal(0))),
        "profit_factor": sig10(float(gross_win / gross_loss)) if gross_loss else None,
        "expectancy": str(sum(profits, Decimal(0)) / len(trades)) if trades else "0",
        "fees_paid": str(sum((Decimal(t["fees"]) for t in trades), Decimal(0))),
        "avg_holding_ms": sum(t["holding_ms"] for t in trades) // len(trades) if trades else 0,
    }


def _period_rows(trades: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    profit: defaultdict[str, Decimal] = defaultdict(Decimal)
    count: Counter[str] = Counter()
    for t in trades:
        period = datetime.fromtimestamp(t["exit_ts_ms"] / 1000, tz=UTC).strftime(fmt)
        profit[period] += Decimal(t["profit"])
        count[period] += 1
    return [{"period": p, "profit": str(profit[p]), "trades": count[p]} for p in sorted(profit)]


def sample_result(
    symbols: tuple[str, ...] = ("XRPETH", "LTCETH"),
    *,
    n_bars: int = 3 * 24 * 60,
    with_trades: bool = True,
) -> dict[str, Any]:
    """A full result dict over ``n_bars`` 1m bars per symbol; no trades or fills if ``with_trades`` is false."""
    bars_of = {s: price_path(s, n_bars) for s in symbols}
    candles = {s: {"timeframe": "1m", "bars": bars_of[s]} for s in symbols}
    trades: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    order_no = 0
    for s_index, symbol in enumerate(symbols if with_trades else ()):
        bars = bars_of[symbol]
        size = TRADE_SIZE[symbol]
        for t_index, entry_k in enumerate(range(5 + 7 * s_index, n_bars - 30, 45)):
            exit_k = entry_k + 17 + (t_index % 3) * 4
            strategy = STRATEGIES[(t_index + s_index) % 2]
            entry, exit_ = _price(bars[entry_k][4]), _price(bars[exit_k][4])
            entry_fee, exit_fee = entry * size * FEE_RATE, exit_ * size * FEE_RATE
            profit = (exit_ - entry) * size - entry_fee - exit_fee
            entry_ts, exit_ts = int(bars[entry_k][0]) + 60_000, int(bars[exit_k][0]) + 60_000
            trades.append(
                {
                    "strategy": strategy,
                    "symbol": symbol,
                    "side": "long",
                    "entry_ts_ms": entry_ts,
                    "exit_ts_ms": exit_ts,
                    "entry_price": str(entry),
                    "exit_price": str(exit_),
                    "size": str(size),
                    "profit": str(profit),
                    "profit_pct": sig10(float(profit / (entry * size)) * 100),
                    "fees": str(entry_fee + exit_fee),
                    "exit_reason": EXIT_REASONS[t_index % len(EXIT_REASONS)],
                    "holding_ms": exit_ts - entry_ts,
                }
            )
            for side, ts, price, fee in (("buy", entry_ts, entry, entry_fee), ("sell", exit_ts, exit_, exit_fee)):
                order_no += 1
                fills.append(
                    {
                        "ts_ms": ts,
                        "client_order_id": f"bt-{strategy}-{order_no:06d}",
                        "strategy": strategy,
                        "symbol": symbol,
                        "side": side,
                        "price": str(price),
                        "size": str(size),
                        "fee": str(fee),
                        "fee_asset": "ETH",
                        "liquidity": "taker",
                    }
                )
    if with_trades:  # a position still open at the end: a fill without a trade
        symbol = symbols[0]
        last = bars_of[symbol][-5]
        fills.append(
            {
                "ts_ms": int(last[0]) + 60_000,
                "client_order_id": f"bt-{STRATEGIES[0]}-{order_no + 1:06d}",
                "strategy": STRATEGIES[0],
                "symbol": symbol,
                "side": "buy",
                "price": str(_price(last[4])),
                "size": str(TRADE_SIZE[symbol]),
                "fee": str(_price(last[4]) * TRADE_SIZE[symbol] * FEE_RATE),
                "fee_asset": "ETH",
                "liquidity": "taker",
            }
        )
    trades.sort(key=lambda t: (t["entry_ts_ms"], t["symbol"], t["strategy"]))
    fills.sort(key=lambda f: (f["ts_ms"], f["client_order_id"]))

    # Equity: starting equity plus the profit of trades closed by each bar's close.
    equity: list[list[float]] = []
    peak = float(STARTING_EQUITY)
    closed = sorted((t["exit_ts_ms"], Decimal(t["profit"])) for t in trades)
    realised, i = Decimal(0), 0
    for bar in bars_of[symbols[0]]:
        close_ts = int(bar[0]) + 60_000
        while i < len(closed) and closed[i][0] <= close_ts:
            realised += closed[i][1]
            i += 1
        value = float(STARTING_EQUITY + realised)
        peak = max(peak, value)
        equity.append([int(bar[0]), sig10(value), sig10((peak - value) / peak * 100)])

    total = _breakdown("name", "all", trades)
    total_profit = Decimal(total["total_profit"])
    end_ms = START_MS + n_bars * MINUTE_MS
    max_dd_pct = max((e[2] for e in equity), default=0.0)
    summary = {
        "start_ms": START_MS,
        "end_ms": end_ms,
        "days": sig10((end_ms - START_MS) / 86_400_000),
        "starting_equity": str(STARTING_EQUITY),
        "final_equity": str(STARTING_EQUITY + total_profit),
        "total_profit": str(total_profit),
        "total_profit_pct": sig10(float(total_profit / STARTING_EQUITY) * 100),
        "cagr_pct": 0.0,
        "sharpe": 1.842317,
        "sortino": 2.91,
        "calmar": 0.0,
        "max_drawdown": str(Decimal(str(max_dd_pct)) * STARTING_EQUITY / 100),
        "max_drawdown_pct": max_dd_pct,
        "max_drawdown_duration_ms": 3 * 3_600_000 + 25 * MINUTE_MS,
        "trades": total["trades"],
        "wins": total["wins"],
        "losses": total["losses"],
        "win_rate_pct": total["win_rate_pct"],
        "profit_factor": total["profit_factor"],
        "expectancy": total["expectancy"],
        "avg_holding_ms": total["avg_holding_ms"],
        "fees_paid": str(sum((Decimal(f["fee"]) for f in fills), Decimal(0))),
        "orders": len(fills) + (3 if with_trades else 0),
        "fills": len(fills),
        "denials": {"MAX_POSITION": 4, "ORDER_RATE": 2} if with_trades else {},
        "strategy_errors": [],
    }
    return {
        "schema": "aaiti.backtest/1",
        "manifest": {
            "aaiti_version": "0.1.0",
            "code_version": "3f2c1a9e0b7d4c6a8e1f2b3c4d5e6f7a8b9c0d1e",
            "config_path": "examples/xrp-eth.toml",
            "config_sha256": "9b74c9897bac770ffc029102a200c5de7a9e3b1f2f0b4c7e2d1a6b5c4d3e2f10",
            "seed": 7,
            "data_files": [
                {"path": f"data/market/{s}-trades-2019-10-11.csv.gz", "sha256": f"{k:064x}", "rows": 4159 + k}
                for k, s in enumerate(symbols)
            ],
            "from_ms": START_MS,
            "to_ms": end_ms,
            "quote_asset": "ETH",
        },
        "summary": summary,
        "per_symbol": [_breakdown("symbol", s, [t for t in trades if t["symbol"] == s]) for s in symbols]
        if with_trades
        else [],
        "per_strategy": [
            _breakdown("strategy", name, [t for t in trades if t["strategy"] == name])
            for name in sorted({t["strategy"] for t in trades})
        ],
        "exit_reasons": dict(sorted(Counter(t["exit_reason"] for t in trades).items())),
        "periods": {
            "day": _period_rows(trades, "%Y-%m-%d"),
            "week": _period_rows(trades, "%G-W%V"),
            "month": _period_rows(trades, "%Y-%m"),
        },
        "equity": equity,
        "trades": trades,
        "candles": candles,
        "fills": fills,
    }


def hostile_result() -> dict[str, Any]:
    """A one-symbol result whose names try to break out of the page's script and markup."""
    result = sample_result(("XRPETH",), n_bars=120)
    evil = "</script><script>window.__pwned = 1</script><!-- & </style>"
    result["trades"][0]["exit_reason"] = evil
    result["exit_reasons"] = {evil: 1, **{k: v for k, v in result["exit_reasons"].items() if k != evil}}
    result["manifest"]["config_path"] = 'evil"<b>path</b>.toml'
    result["summary"]["strategy_errors"] = [
        {"strategy": "<img src=x onerror=alert(1)>", "error": "ZeroDivisionError: division by zero", "restarts": 3}
    ]
    return result

"""The backtest result dict (``schema: aaiti.backtest/1``) and its files.

``build_result`` turns a ``BacktestRun`` into the RESULT DICT that ``result.json`` holds and
the HTML report renders: money and sizes as exact decimal strings, chart series and ratios
as floats rounded to 10 significant digits, timestamps as epoch ms. Nothing in it depends
on the wall clock or the work directory, so two runs of the same config, data and code
write byte-identical files (``write_result``). Client order ids are shown without their
per-boot random stem (``aa-7k2q-1f`` -> ``aa-1f``), which is the one random part of a run.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.model.orders import Fill
from daemon.backtest import metrics as m
from daemon.backtest.run import BacktestRun
from daemon.backtest.time_range import format_bound

__all__ = ["RESULT_SCHEMA", "TRADE_COLUMNS", "build_result", "default_out_dir", "dump_json", "write_result"]

RESULT_SCHEMA = "aaiti.backtest/1"
TRADE_COLUMNS = ("strategy", "symbol", "side", "entry_ts_ms", "exit_ts_ms", "entry_price", "exit_price", "size",
                 "profit", "profit_pct", "fees", "exit_reason", "holding_ms")
_ZERO = Decimal(0)


def _s(d: Decimal) -> str:
    return format(d, "f")


def _coid(client_order_id: str) -> str:
    parts = client_order_id.split("-")
    return f"{parts[0]}-{parts[2]}" if len(parts) == 3 else client_order_id


def _money(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: _s(v) if isinstance(v, Decimal) else v for k, v in stats.items()}


def _version() -> str:
    from daemon.app import VERSION

    return VERSION


def build_result(run: BacktestRun) -> dict[str, Any]:
    """The result dict of a finished run (see docs/backtest.md for every field)."""
    from daemon.backtest.inputs import code_version

    quote, bases = run.quote_asset, run.base_assets
    tf = m.smallest_timeframe(run.timeframes)
    series = {s: run.bars.get(s, {}).get(tf, []) for s in bases}
    start_eq, points, final_eq = m.equity_curve(series, tf, run.fills, run.initial_balances, quote, bases)
    trades = m.round_trips(run.fills, run.orders, quote, bases)
    strategy_of = {o.client_order_id: o.strategy for o in run.orders}
    start_ms = min((b[0].ts_ms for b in series.values() if b), default=run.first_event_ms)
    end_ms = points[-1].ts_ms if points else run.last_event_ms
    days = (end_ms - start_ms) / m.DAY_MS
    dd = m.drawdown(start_ms, start_eq, points)
    returns = m.daily_returns(start_eq, points)
    cagr = m.cagr_pct(start_eq, final_eq, days)

    def fees(pred: Any) -> Decimal:
        return sum((m.fee_in_quote(f, quote, bases.get(f.symbol, "")) for f in run.fills if pred(f)), _ZERO)

    summary = _money(m.group_stats(trades, fees(lambda f: True)))
    summary.update({
        "start_ms": start_ms,
        "end_ms": end_ms,
        "days": m.sig(days),
        "starting_equity": _s(start_eq),
        "final_equity": _s(final_eq),
        "total_profit": _s(final_eq - start_eq),
        "total_profit_pct": m.sig(float((final_eq - start_eq) / start_eq * 100)) if start_eq else 0.0,
        "cagr_pct": m.sig(cagr),
        "sharpe": m.sig(m.sharpe(returns)),
        "sortino": m.sig(m.sortino(returns)),
        "calmar": m.sig(m.calmar(cagr, dd.max_pct)),
        "max_drawdown": _s(dd.max_abs),
        "max_drawdown_pct": m.sig(dd.max_pct),
        "max_drawdown_duration_ms": dd.max_duration_ms,
        "orders": len(run.orders),
        "fills": len(run.fills),
        "denials": dict(sorted(run.denials.items())),
        "strategy_errors": [{"strategy": e.strategy, "error": e.error, "restarts": e.restarts}
                            for e in run.strategy_errors],
        "gave_up": run.gave_up,
        "lockstep_timeouts": run.lockstep_timeouts,
    })
    per_symbol = [
        {"symbol": s, **_money(m.group_stats([t for t in trades if t.symbol == s],
                                             fees(lambda f, s=s: f.symbol == s)))}
        for s in bases
    ]
    per_strategy = [
        {"strategy": n, **_money(m.group_stats([t for t in trades if t.strategy == n],
                                               fees(lambda f, n=n: strategy_of.get(f.client_order_id) == n)))}
        for n in run.strategies
    ]
    return {
        "schema": RESULT_SCHEMA,
        "manifest": {
            "aaiti_version": _version(),
            "code_version": code_version(),
            "config_path": run.config_path,
            "config_sha256": run.config_sha256,
            "overrides": {k: run.overrides[k] for k in sorted(run.overrides)},
            "seed": run.seed,
            "data_files": [{"path": d.path, "sha256": d.sha256, "rows": d.rows} for d in run.data_files],
            "from_ms": run.from_ms,
            "to_ms": run.to_ms,
            "quote_asset": quote,
        },
        "summary": summary,
        "per_symbol": per_symbol,
        "per_strategy": per_strategy,
        "exit_reasons": dict(sorted(Counter(t.exit_reason for t in trades).items())),
        "periods": {kind: [{"period": p, "profit": _s(profit), "trades": n} for p, profit, n in rows]
                    for kind, rows in m.periods(trades).items()},
        "equity": [[p.ts_ms, m.sig(float(p.equity)), m.sig(p.drawdown_pct)] for p in points],
        "trades": [_trade(t) for t in trades],
        "candles": {s: {"timeframe": tf, "bars": [[b.ts_ms, m.sig(b.open), m.sig(b.high), m.sig(b.low),
                                                    m.sig(b.close), m.sig(b.volume)] for b in bars]}
                    for s, bars in series.items()},
        "fills": [_fill(f, strategy_of.get(f.client_order_id, "")) for f in run.fills],
    }


def _trade(t: m.RoundTrip) -> dict[str, Any]:
    return {
        "strategy": t.strategy, "symbol": t.symbol, "side": "long", "entry_ts_ms": t.entry_ts_ms,
        "exit_ts_ms": t.exit_ts_ms, "entry_price": _s(t.entry_price), "exit_price": _s(t.exit_price),
        "size": _s(t.size), "profit": _s(t.profit), "profit_pct": t.profit_pct, "fees": _s(t.fees),
        "exit_reason": t.exit_reason, "holding_ms": t.holding_ms,
    }


def _fill(f: Fill, strategy: str) -> dict[str, Any]:
    return {
        "ts_ms": f.ts_ms, "client_order_id": _coid(f.client_order_id), "strategy": strategy, "symbol": f.symbol,
        "side": f.side, "price": _s(f.price), "size": _s(f.size), "fee": _s(f.fee), "fee_asset": f.fee_currency,
        "liquidity": f.liquidity,
    }


def dump_json(result: Mapping[str, Any]) -> str:
    """The canonical text of a result: sorted keys, indent 1, UTF-8, one trailing newline."""
    return json.dumps(result, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_result(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write ``result.json`` and ``trades.csv`` into ``out_dir`` (created); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    json_path.write_bytes(dump_json(result).encode("utf-8"))
    csv_path = out_dir / "trades.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        trades: Sequence[Mapping[str, Any]] = result["trades"]
        for t in trades:
            writer.writerow([t[c] for c in TRADE_COLUMNS])
    return [json_path, csv_path]


def default_out_dir(config_path: Path | None, result: Mapping[str, Any]) -> Path:
    """``backtests/<config stem>-<from>-<to>/`` next to the config (the window in UTC, no wall time)."""
    man = result["manifest"]
    stem = config_path.stem if config_path is not None else "defaults"
    base = config_path.parent if config_path is not None else Path.cwd()
    return base / "backtests" / f"{stem}-{format_bound(man['from_ms'])}-{format_bound(man['to_ms'])}"

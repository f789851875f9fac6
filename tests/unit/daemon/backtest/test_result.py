"""The result file's canonical form, client order ids without the random stem, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daemon.backtest.result import _coid, default_out_dir, dump_json, write_result
from daemon.backtest.table import render_table


def test_client_order_ids_lose_only_their_per_boot_stem() -> None:
    assert _coid("aa-1x9k-2f") == "aa-2f"
    assert _coid("odd") == "odd"


def group(name_key: str, name: str) -> dict[str, Any]:
    return {name_key: name, "trades": 2, "wins": 1, "losses": 1, "win_rate_pct": 50.0, "total_profit": "0.5",
            "profit_factor": 1.5, "expectancy": "0.25", "fees_paid": "0.01", "avg_holding_ms": 90 * 60_000}


def result() -> dict[str, Any]:
    summary = {**group("x", "x"), "start_ms": 1_570_752_000_000, "end_ms": 1_570_838_400_000, "days": 1.0,
               "starting_equity": "5", "final_equity": "5.6", "total_profit": "0.6", "total_profit_pct": 12.0,
               "cagr_pct": 1.0, "sharpe": 1.0, "sortino": 2.0, "calmar": 3.0, "max_drawdown": "0.1",
               "max_drawdown_pct": 2.0, "max_drawdown_duration_ms": 3_600_000, "orders": 4, "fills": 4,
               "denials": {"MAX_POSITION": 2}, "strategy_errors": [], "gave_up": None}
    del summary["x"]
    return {"schema": "aaiti.backtest/1",
            "manifest": {"config_path": "/x/aaiti.toml", "quote_asset": "ETH", "from_ms": 1_570_752_000_000,
                         "to_ms": 1_571_011_200_000},
            "summary": summary, "per_strategy": [group("strategy", "ema")], "per_symbol": [group("symbol", "XRP/ETH")],
            "exit_reasons": {"ema.exit": 2}, "trades": [{"strategy": "ema", "symbol": "XRP/ETH", "side": "long",
                                                         "entry_ts_ms": 1, "exit_ts_ms": 2, "entry_price": "1",
                                                         "exit_price": "2", "size": "3", "profit": "3",
                                                         "profit_pct": 100.0, "fees": "0", "exit_reason": "é",
                                                         "holding_ms": 1}]}


def test_files_are_canonical_and_the_default_dir_names_the_window(tmp_path: Path) -> None:
    r = result()
    paths = write_result(r, tmp_path / "out")
    text = paths[0].read_text(encoding="utf-8")
    assert text == dump_json(r) and text.endswith("}\n") and "é" in text and json.loads(text) == r
    assert paths[1].read_text().splitlines()[1] == "ema,XRP/ETH,long,1,2,1,2,3,3,100.0,0,é,1"
    assert default_out_dir(Path("/cfg/my.toml"), r) == Path("/cfg/backtests/my-20191011-20191014")


def test_table_shows_totals_groups_denials_and_errors() -> None:
    r = result()
    text = render_table(r)
    assert "5 -> 5.6 ETH" in text and "MAX_POSITION 2" in text and "ema.exit 2" in text
    assert "  ema " in text and "  XRP/ETH " in text and "1h30m" in text
    assert "STRATEGY ERRORS" not in text
    r["summary"]["strategy_errors"] = [{"strategy": "bad", "error": "RuntimeError('x')", "restarts": 2}]
    assert "  bad: RuntimeError('x') (restarted 2 times)" in render_table(r)

"""``run_backtest`` and ``run_backtest_sync`` in process: strategy errors, overrides, the books."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from config.loader import load_config
from daemon.backtest.result import build_result
from daemon.backtest.runner import BacktestError, run_backtest, run_backtest_sync
from daemon.backtest.table import render_table
from tests.integration.backtest.test_cli import CRASHING, edited
from tests.integration.daemon.paper_state import paper_config


async def test_a_strategy_that_raises_and_is_restarted_is_reported_and_the_run_ends(tmp_path: Path) -> None:
    # Restarts allowed without limit or delay: the crasher is restarted on every bar; the
    # others trade on, and the run reaches the end of the data.
    config = edited(tmp_path, "[reconciler]\n",
                    "[supervisor]\nmax_restarts = 1000\nperiod_s = 0.001\nrestart_delay_s = 0\n\n[reconciler]\n",
                    f'\n[[strategies]]\nname = "crasher"\nstrategy = "{CRASHING}"\nsymbols = ["XRP/ETH"]\n'
                    'timeframe = "1m"\n')
    # Six hours of data: a few hundred bars, each one a failure and a restart.
    start = 1_570_838_400_000
    run = await run_backtest(load_config(config), start_ms=start, end_ms=start + 6 * 3_600_000,
                             workdir=tmp_path / "work")
    assert run.gave_up is None
    [error] = run.strategy_errors
    # The host's wrapper names the callback; the original is in the log (the host has run on since).
    assert error.strategy == "crasher" and error.restarts > 100 and "on_bar (XRP/ETH) raised" in error.error
    result = build_result(run)
    assert result["summary"]["strategy_errors"][0]["restarts"] == error.restarts
    assert result["summary"]["trades"] > 0
    assert f"crasher: {error.error} (restarted {error.restarts} times)" in render_table(result)


async def test_our_books_equal_the_paper_venue_account(tmp_path: Path) -> None:
    run = await run_backtest(load_config(paper_config(tmp_path)), workdir=tmp_path / "work")
    balances = dict(run.initial_balances)
    for f in run.fills:
        base, quote = f.symbol.split("/")
        sign = 1 if f.side == "buy" else -1
        balances[base] = balances.get(base, Decimal(0)) + sign * f.size
        balances[quote] = balances.get(quote, Decimal(0)) - sign * f.size * f.price
        balances[f.fee_currency] -= f.fee
    assert balances == run.final_balances
    # The result's final equity marks exactly these balances at the last close.
    result = build_result(run)
    last_close = Decimal(repr(run.bars["XRP/ETH"]["1m"][-1].close))
    assert Decimal(result["summary"]["final_equity"]) == balances["ETH"] + balances["XRP"] * last_close


def test_sync_runner_for_process_pools_applies_overrides_and_returns_a_picklable_dict(tmp_path: Path) -> None:
    config = str(paper_config(tmp_path))
    base = run_backtest_sync(config)
    tuned = run_backtest_sync(config, {"strategies.0.params.fast": 5, "strategies.0.params.slow": 30})
    assert base["manifest"]["overrides"] == {}
    assert tuned["manifest"]["overrides"] == {"strategies.0.params.fast": 5, "strategies.0.params.slow": 30}
    ema = next(s for s in base["per_strategy"] if s["strategy"] == "ema_cross")
    ema_tuned = next(s for s in tuned["per_strategy"] if s["strategy"] == "ema_cross")
    assert ema["trades"] != ema_tuned["trades"]
    assert pickle.loads(pickle.dumps(tuned)) == tuned

    with pytest.raises(BacktestError) as bad:
        run_backtest_sync(config, {"strategies.0.params.bogus": 1})
    assert bad.value.exit_code == 2 and "bogus" in str(bad.value)
    again = pickle.loads(pickle.dumps(bad.value))
    assert isinstance(again, BacktestError) and again.exit_code == 2
    with pytest.raises(BacktestError) as empty:
        run_backtest_sync(config, None, 1_900_000_000_000, None)
    assert "no market data" in str(empty.value)


async def test_resting_limit_orders_do_not_hold_the_lockstep(tmp_path: Path) -> None:
    # A resting limit order is answered (accepted) and then the order path is quiet: the
    # replay goes on at once instead of waiting out the lockstep timeout on every bar.
    config = edited(tmp_path, "[reconciler]\n", "[reconciler]\n",
                    '\n[[strategies]]\nname = "resting"\n'
                    'strategy = "tests.integration.ops.ops_strategies:RestingBuys"\n'
                    'symbols = ["XRP/ETH"]\ntimeframe = "1m"\nparams = { count = 2, size = "20", discount = 0.995 }\n')
    start = 1_570_838_400_000
    run = await run_backtest(load_config(config), start_ms=start, end_ms=start + 3_600_000,
                             workdir=tmp_path / "work")
    assert run.lockstep_timeouts == 0
    assert any(o.strategy == "resting" for o in run.orders)


async def test_ema_cross_with_bracket_params_exits_only_through_its_stop_and_take_profit(tmp_path: Path) -> None:
    config = edited(tmp_path, 'params = { fast = 10, slow = 20, kind = "ema", size = "500" }',
                    'params = { fast = 10, slow = 20, kind = "ema", size = "500", stop_loss_bps = 40, '
                    'take_profit_bps = 80 }')
    start = 1_570_752_000_000  # the first day of the bundled tape
    run = await run_backtest(load_config(config), start_ms=start, end_ms=start + 86_400_000,
                             workdir=tmp_path / "work")
    ema = [o for o in run.orders if o.strategy == "ema_cross" and o.status.value == "FILLED"]
    entries = [o for o in ema if o.parent and o.side.value == "buy"]
    exits = [o for o in ema if o.parent and o.side.value == "sell"]
    assert entries and exits and not [o for o in ema if not o.parent]  # every order belongs to a bracket
    assert {o.tag for o in exits} <= {"ema_cross.entry:stop_loss", "ema_cross.entry:take_profit"}
    # Each closed bracket sold exactly what its entry bought; at most the last one is still open.
    bought: dict[str, Decimal] = {}
    for o in entries:
        bought[o.parent] = bought.get(o.parent, Decimal(0)) + o.filled
    sold: dict[str, Decimal] = {}
    for o in exits:
        sold[o.parent] = sold.get(o.parent, Decimal(0)) + o.filled
    assert all(sold[p] == bought[p] for p in sold)
    assert len(bought) - len(sold) <= 1

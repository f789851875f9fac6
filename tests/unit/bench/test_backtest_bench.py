"""A short run of the backtest bench (bench/backtest.py): behaviour only, no timing or RSS thresholds.

The backtest path (runner, batched quote replay, bars taken in bulk) must trade exactly
what the replay bench trades on the same quotes (both are lockstepped and deterministic),
and build exactly the bars a bar builder makes from the quotes one by one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.bars import BarBuilder
from adapters.market_data.quotes import read_quotes, write_quotes
from bench.backtest import backtest_config, main, parse_args, run_backtest_once
from bench.pipeline import QuoteWalk

EVENTS = 30_000


def test_backtest_bench_short_trades_what_the_replay_bench_trades(capsys: pytest.CaptureFixture[str]) -> None:
    out = main(["--events", str(EVENTS), "--runs", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == out
    for key in ("events_per_s", "peak_rss_mb", "orders", "fills", "replay_events_per_s", "speedup_vs_replay"):
        assert key in out, key
    assert out["events"] == EVENTS
    assert out["orders"] > 0 and out["orders"] == out["fills"]
    assert out["same_orders_as_replay"] is True
    assert out["lockstep_timeouts"] == 0
    assert out["bars"] == -(-EVENTS // 120)  # 500 ms quotes: 120 per 1m bar, the last one flushed at the end


def test_backtest_bars_equal_a_builder_fed_quote_by_quote(tmp_path: Path) -> None:
    # An uneven interval, so bars close at every position inside a batch of the source.
    args = parse_args(["--events", "5000", "--interval-ms", "777", "--symbol", "X/Y"])
    path = tmp_path / "q.csv"
    write_quotes(path, QuoteWalk(seed=args.seed, interval_ms=args.interval_ms).rows(args.events))
    tape = read_quotes(path)
    run, _ = run_backtest_once(backtest_config(args, tmp_path), tape, "X/Y", tmp_path / "work")
    builder = BarBuilder("X/Y", "1m", mode="mid")
    expected = []
    for i in range(len(tape)):
        ts, bid, ask, _, _ = tape.row(i)
        expected += builder.update(ts, (bid + ask) / 2.0, 0.0)
    expected += builder.flush_all()
    got = run.bars["X/Y"]["1m"]
    fields = ("ts_ms", "open", "high", "low", "close", "volume", "trades")
    assert [tuple(getattr(b, f) for f in fields) for b in got] == [tuple(getattr(b, f) for f in fields)
                                                                   for b in expected]
    assert run.events == args.events and run.first_event_ms == tape.ts_ms[0]
    assert run.last_event_ms == tape.ts_ms[-1]

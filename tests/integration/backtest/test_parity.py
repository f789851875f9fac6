"""Parity: ``aaiti run`` on replayed data trades exactly what the backtest of the same config trades.

The daemon (a real child process, config at speed 0, no loop, stopping at the end of the
tape) and ``run_backtest`` both build through ``daemon.pipeline.build_pipeline``, on a
market clock, with the feed in lockstep. Their state databases must hold the same orders
and fills, every field, to the last decimal (client order ids up to their per-boot random
stem).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from actors.feed import Feed
from actors.kernel.channel import ChannelClosed
from actors.model.market import Bar
from actors.model.orders import Fill
from actors.model.records import OrderRecord
from adapters.market_data.factory import build_source
from adapters.storage.store import Store
from config.loader import LoadedConfig, load_config
from daemon.backtest.inputs import backtest_config
from daemon.backtest.runner import run_backtest
from tests.integration.backtest.bt_config import replay_once_config
from tests.integration.daemon.daemon_process import DaemonProcess

_ALL = 1 << 62


def _coid(coid: str) -> str:
    prefix, _stem, seq = coid.split("-")
    return f"{prefix}-{seq}"


def _order(o: OrderRecord) -> tuple[Any, ...]:
    return (_coid(o.client_order_id), o.venue, o.strategy, o.symbol, o.side, o.type, str(o.size), o.status,
            str(o.price), o.venue_order_id, str(o.filled), str(o.avg_price), str(o.fees), o.tag, o.intent_id,
            o.reason, o.created_ms, o.updated_ms)


def _fill(f: Fill) -> tuple[Any, ...]:
    return (f.venue, f.trade_id, _coid(f.client_order_id), f.venue_order_id, f.symbol, f.side, str(f.price),
            str(f.size), str(f.fee), f.fee_currency, f.liquidity, f.ts_ms)


async def _stored(db: Path) -> tuple[list[OrderRecord], list[Fill]]:
    store = await Store.open(db)
    try:
        return list(reversed(await store.orders(limit=_ALL))), await store.fills(limit=_ALL)
    finally:
        await store.close()


async def _feed_bars(loaded: LoadedConfig) -> dict[str, dict[str, list[Bar]]]:
    """The bars of a second, bare feed over the same tape."""
    feed_cfg = backtest_config(loaded.config).feed
    feed = Feed(feed_cfg, build_source(feed_cfg, loaded.resolve))
    sub = feed.subscribe("check", symbols=feed_cfg.symbols, timeframes=feed_cfg.timeframes)
    import asyncio

    task = asyncio.create_task(feed.main())
    bars: dict[str, dict[str, list[Bar]]] = {}
    while True:
        try:
            bar = await sub.bars.recv()
        except ChannelClosed:
            break
        bars.setdefault(bar.symbol, {}).setdefault(bar.timeframe, []).append(bar)
    await task
    return bars


def _plain(bars: dict[str, dict[str, list[Bar]]]) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    return {s: {tf: [(b.ts_ms, b.open, b.high, b.low, b.close, b.volume, b.trades) for b in series]
                for tf, series in by_tf.items()} for s, by_tf in bars.items()}


async def test_paper_run_of_the_daemon_trades_exactly_what_the_backtest_trades(tmp_path: Path) -> None:
    config = replay_once_config(tmp_path)
    proc = DaemonProcess(config)
    try:
        proc.wait_for_event("daemon.ready", timeout=60)
        ended = proc.wait_for_event("feed.source_ended", timeout=300)
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert [r for r in proc.lines if r.get("level") in ("error", "critical")] == []
    paper_orders, paper_fills = await _stored(tmp_path / "state" / "aaiti-paper-paper.db")

    loaded = load_config(config)
    run = await run_backtest(loaded, workdir=tmp_path / "backtest")
    assert run.lockstep_timeouts == 0 and not run.strategy_errors
    assert run.events == ended["events"]
    assert len(run.fills) > 100  # the tape trades: the comparison below means something
    assert [_order(o) for o in run.orders] == [_order(o) for o in paper_orders]
    assert [_fill(f) for f in run.fills] == [_fill(f) for f in paper_fills]

    # The bars the backtest saw are the feed's own: a second feed over the same trades builds them.
    assert _plain(run.bars) == _plain(await _feed_bars(loaded))

"""Feed: bars built and never dropped, trades/quotes conflated, staleness snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.bars import BarBuilder
from actors.feed import Feed
from actors.model.market import Bar, MarketEvent, Quote, Trade
from adapters.market_data import ReplaySource, SourceStats, SyntheticSource, read_candles, read_trades
from config.schema.market import FeedSection

DATA = Path(__file__).resolve().parents[3] / "data" / "market"
TAPE = DATA / "binance_XRP-ETH_trades_2019-10.csv.gz"


class ListSource:
    """A finite source from a list (test double)."""

    name = "list"

    def __init__(self, events: list[MarketEvent], symbols: tuple[str, ...] = ("A/B",)) -> None:
        self.symbols = symbols
        self._events = events

    async def events(self) -> AsyncIterator[MarketEvent]:
        for ev in self._events:
            yield ev

    def stats(self) -> SourceStats:
        return SourceStats(name=self.name, events=len(self._events))

    async def close(self) -> None:
        return None


async def _drain_bars(ch_bars: object, delay_every: int = 0) -> list[Bar]:
    out: list[Bar] = []
    async for bar in ch_bars:  # type: ignore[attr-defined]
        out.append(bar)
        if delay_every and len(out) % delay_every == 0:
            await asyncio.sleep(0)
    return out


async def test_feed_publishes_every_bar_even_to_a_slow_subscriber() -> None:
    feed_cfg = FeedSection(symbols=("XRP/ETH",), timeframes=("1m", "5m"), on_end="stop")
    feed = Feed(feed_cfg, ReplaySource(read_trades(TAPE), "XRP/ETH"), bar_capacity=1)
    sub = feed.subscribe("s", symbols=["XRP/ETH"], timeframes=["1m", "5m"], trades=True)
    reader = asyncio.create_task(_drain_bars(sub.bars, delay_every=1))
    await asyncio.wait_for(feed.main(), 10)
    bars = await asyncio.wait_for(reader, 10)
    expected = {"1m": 2469, "5m": 706}
    for tf, n in expected.items():
        assert len([b for b in bars if b.timeframe == tf]) == n
    assert sub.bars.stats.dropped == 0
    assert sub.market.stats.dropped == 0 and sub.market.stats.conflated > 10_000  # never read: conflated
    assert sub.market.closed and sub.bars.closed


async def test_feed_bars_equal_a_bar_builder_run_directly() -> None:
    events: list[MarketEvent] = [
        Trade(symbol="A/B", ts_ms=t, price=1.0 + t / 1e6, size=0.1, side="buy") for t in range(0, 600_000, 7_000)
    ]
    feed = Feed(FeedSection(symbols=("A/B",), on_end="stop"), ListSource(events))
    sub = feed.subscribe("s", symbols=["A/B"], timeframes=["1m"])
    await feed.main()
    got = await _drain_bars(sub.bars)
    builder = BarBuilder("A/B", "1m")
    want: list[Bar] = []
    for ev in events:
        want.extend(builder.on_trade(ev))  # type: ignore[arg-type]
    want.extend(builder.flush_all())
    assert [(b.ts_ms, b.open, b.close, b.volume) for b in got] == [(b.ts_ms, b.open, b.close, b.volume) for b in want]
    assert all(b.recv_ns > 0 for b in got)


async def test_feed_conflates_trades_and_quotes_per_symbol_and_type() -> None:
    events: list[MarketEvent] = []
    for i in range(10):
        events.append(Trade(symbol="A/B", ts_ms=i, price=float(i + 1), size=1.0, side="buy"))
        events.append(Quote(symbol="A/B", ts_ms=i, bid=float(i), ask=float(i + 2)))
        events.append(Trade(symbol="C/D", ts_ms=i, price=float(i + 100), size=1.0, side="sell"))
    feed = Feed(FeedSection(symbols=("A/B", "C/D"), on_end="stop"), ListSource(events, ("A/B", "C/D")))
    sub = feed.subscribe("s", symbols=["A/B", "C/D"], trades=True, quotes=True)
    only_trades = feed.subscribe("t", symbols=["A/B"], trades=True)
    await feed.main()
    latest = sub.market.drain(100)
    assert [(type(e).__name__, e.symbol, e.ts_ms) for e in latest] == [
        ("Trade", "A/B", 9), ("Quote", "A/B", 9), ("Trade", "C/D", 9)]
    assert [(type(e).__name__, e.symbol) for e in only_trades.market.drain(100)] == [("Trade", "A/B")]


async def test_feed_counts_unknown_symbols_and_stamps_recv_ns() -> None:
    events: list[MarketEvent] = [
        Trade(symbol="A/B", ts_ms=1, price=1.0, size=1.0, side="buy"),
        Trade(symbol="X/Y", ts_ms=2, price=1.0, size=1.0, side="buy"),
    ]
    feed = Feed(FeedSection(symbols=("A/B",), on_end="stop"), ListSource(events))
    sub = feed.subscribe("s", symbols=["A/B"], trades=True)
    await feed.main()
    snap = feed.snapshot()
    assert snap.unknown_symbol == 1 and snap.events == 1
    (trade,) = sub.market.drain(10)
    assert trade.recv_ns > 0


async def test_snapshot_marks_quiet_symbol_stale_in_feed_time() -> None:
    events: list[MarketEvent] = [Trade(symbol="A/B", ts_ms=0, price=1.0, size=1.0, side="buy")]
    events += [Trade(symbol="C/D", ts_ms=t, price=1.0, size=1.0, side="buy") for t in range(0, 61_000, 1_000)]
    feed = Feed(FeedSection(symbols=("A/B", "C/D", "E/F"), stale_after_s=30.0, on_end="stop"),
                     ListSource(events, ("A/B", "C/D", "E/F")))
    before = feed.snapshot()
    assert not before.live and all(s.stale for s in before.symbols)
    await feed.main()
    snap = feed.snapshot()
    ab, cd, ef = snap.symbol("A/B"), snap.symbol("C/D"), snap.symbol("E/F")
    assert ab is not None and cd is not None and ef is not None
    assert snap.live and snap.ended and snap.feed_time_ms == 60_000
    assert ab.feed_age_ms == 60_000 and ab.stale and ab.trades == 1
    assert cd.feed_age_ms == 0 and not cd.stale and cd.trades == 61
    assert ef.last_ts_ms is None and ef.stale
    assert snap.is_stale("A/B") and not snap.is_stale("C/D") and snap.is_stale("unknown")
    with pytest.raises(AttributeError):
        snap.events = 0  # type: ignore[misc]


async def test_feed_passes_candles_through_and_resamples_longer_timeframes() -> None:
    series = read_candles(DATA / "binance_XRP-ETH_1m_2019-10.csv.gz", "1m", 60_000)
    cfg = FeedSection(symbols=("XRP/ETH",), timeframes=("1m", "5m"), on_end="stop")
    feed = Feed(cfg, ReplaySource(series, "XRP/ETH"), bar_capacity=10_000)
    sub = feed.subscribe("s", symbols=["XRP/ETH"], timeframes=["5m"])
    await feed.main()
    five = read_candles(DATA / "binance_XRP-ETH_5m_2019-10.csv.gz", "5m", 300_000).rows
    got = await _drain_bars(sub.bars)
    assert [(b.ts_ms, b.open, b.high, b.low, b.close, b.volume) for b in got] == [tuple(r) for r in five]


async def test_feed_mid_bars_from_synthetic_quotes() -> None:
    cfg = FeedSection(symbols=("A/B",), bars_from="mid", on_end="stop")
    feed = Feed(cfg, SyntheticSource(("A/B",), tick_interval_ms=1_000, trade_every=0, max_events=600))
    sub = feed.subscribe("s", symbols=["A/B"], timeframes=["1m"])
    await feed.main()
    bars = await _drain_bars(sub.bars)
    assert len(bars) == 10 and all(b.volume == 0.0 and b.trades == 60 for b in bars)


async def test_feed_idles_after_a_finite_source_when_on_end_is_idle() -> None:
    feed = Feed(FeedSection(symbols=("A/B",)), ListSource([]))
    sub = feed.subscribe("s", symbols=["A/B"], timeframes=["1m"])
    task = asyncio.create_task(feed.main())
    await asyncio.sleep(0.01)
    assert not task.done() and feed.snapshot().ended and not sub.bars.closed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_subscribe_rejects_unknown_symbol_or_unbuilt_timeframe() -> None:
    feed = Feed(FeedSection(symbols=("A/B",)), ListSource([]))
    with pytest.raises(ValueError, match=r"not in feed\.symbols"):
        feed.subscribe("s", symbols=["X/Y"])
    with pytest.raises(ValueError, match="not built"):
        feed.subscribe("s", symbols=["A/B"], timeframes=["5m"])
    feed.subscribe("s", symbols=["A/B"])
    with pytest.raises(ValueError, match="already exists"):
        feed.subscribe("s", symbols=["A/B"])

"""CcxtMarketSource against the Binance simulator: flow, drops, stalls, depth gaps."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from actors.kernel.clock import MarketClock
from actors.model.market import BookSnapshot, MarketEvent, Quote, Trade
from actors.ports.capabilities import ReportsConnectionHealth
from actors.ports.market_data import MarketDataSource
from adapters.binance_sim import BinanceSimulator
from adapters.ccxt_venue import CcxtMarketSource
from adapters.ccxt_venue.shared import epoch_ms_or_now
from adapters.market_data.factory import build_source
from config.schema.market import FeedSection
from config.schema.trading import CcxtVenueSection

SYM = "BTC/USDT"
WAIT = 10.0
TRADES = f"trades:{SYM}"
QUOTES = f"quotes:{SYM}"
BOOK = f"book:{SYM}"


def source_config(sim: BinanceSimulator, **overrides: Any) -> CcxtVenueSection:
    base = CcxtVenueSection(
        base_url=sim.base_url,
        request_timeout_s=2.0,
        ws_keepalive_s=5.0,
        stream_idle_timeout_s=2.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.3,
        reconnect_stable_s=1.0,
    )
    return dataclasses.replace(base, **overrides)


class Consumer:
    """Iterates ``source.events()`` in the background; tests await conditions on what arrived."""

    def __init__(self, source: CcxtMarketSource) -> None:
        self.source = source
        self.events: list[MarketEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for ev in self.source.events():
            self.events.append(ev)
            self._changed.set()

    async def wait_for(self, pred: Callable[[], object], timeout: float = WAIT) -> None:
        async def loop() -> None:
            while not pred():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def count(self, kind: type[MarketEvent]) -> int:
        return sum(1 for e in self.events if type(e) is kind)

    async def more(self, kind: type[MarketEvent], n: int = 3) -> None:
        """Wait until ``n`` more events of ``kind`` arrived."""
        target = self.count(kind) + n
        await self.wait_for(lambda: self.count(kind) >= target)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def make_source() -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[CcxtMarketSource, Consumer]] = []

    def factory(sim: BinanceSimulator, **overrides: Any) -> tuple[CcxtMarketSource, Consumer]:
        source = CcxtMarketSource(source_config(sim, **overrides), [SYM], environ={})
        consumer = Consumer(source)
        made.append((source, consumer))
        return source, consumer

    yield factory
    for source, consumer in reversed(made):
        await consumer.stop()
        await source.close()


async def test_trades_and_quotes_flow_normalised_with_recv_ns(
    sim: BinanceSimulator, make_source: Callable[..., Any]
) -> None:
    source, consumer = make_source(sim)
    assert isinstance(source, CcxtMarketSource) and isinstance(consumer.source, MarketDataSource)
    await consumer.wait_for(lambda: consumer.count(Trade) >= 5 and consumer.count(Quote) >= 5)
    for ev in consumer.events:
        assert ev.symbol == SYM and ev.recv_ns > 0 and ev.ts_ms > 0
        if isinstance(ev, Trade):
            assert ev.price > 0 and ev.size > 0 and ev.side in ("buy", "sell") and ev.trade_id > 0
        elif isinstance(ev, Quote):
            assert 0 < ev.bid <= ev.ask and ev.bid_size >= 0 and ev.ask_size >= 0
    ids = [e.trade_id for e in consumer.events if isinstance(e, Trade)]
    assert ids == sorted(set(ids))  # no repeats, in order
    stats = source.stats()
    assert stats.trades == consumer.count(Trade) and stats.connected[TRADES] and stats.reconnects[TRADES] == 0


async def test_ticker_quotes_mode_streams_24h_ticker(sim: BinanceSimulator, make_source: Callable[..., Any]) -> None:
    _, consumer = make_source(sim, quotes="ticker", trades=False)
    await consumer.wait_for(lambda: consumer.count(Quote) >= 3)
    await sim.wait_for_stream("btcusdt@ticker", timeout_s=WAIT)
    assert consumer.count(Trade) == 0


@pytest.mark.parametrize("code", [1001, None])
async def test_socket_drop_resubscribes_and_flow_resumes(
    sim: BinanceSimulator, make_source: Callable[..., Any], code: int | None
) -> None:
    source, consumer = make_source(sim)
    await consumer.more(Trade)
    await sim.wait_for_stream("btcusdt@trade", timeout_s=WAIT)
    assert await sim.drop_market_connections(code=code) >= 2
    await consumer.wait_for(lambda: source.stats().reconnects[TRADES] >= 1 and source.stats().reconnects[QUOTES] >= 1)
    await consumer.more(Trade)
    await consumer.more(Quote)
    await sim.wait_for_stream("btcusdt@trade", timeout_s=WAIT)
    assert sim.market_streams.subscribers("btcusdt@trade") == 1  # no duplicate subscriptions
    assert isinstance(source, ReportsConnectionHealth)
    health = source.connection_health()
    assert health.breakers == () and health.reconnects == source.stats().reconnects
    assert health.reconnects[TRADES] >= 1 and health.reconnects[QUOTES] >= 1


async def test_silent_stall_detected_by_idle_timeout_and_redialled(
    sim: BinanceSimulator, make_source: Callable[..., Any]
) -> None:
    source, consumer = make_source(sim, stream_idle_timeout_s=0.3)
    await consumer.more(Trade)
    assert sim.stall_market_connections(stream_contains="@trade") == 1
    await consumer.wait_for(lambda: source.stats().stalls[TRADES] >= 1)
    await consumer.more(Trade)
    stats = source.stats()
    assert stats.reconnects[TRADES] >= 1 and stats.stalls[QUOTES] == 0
    assert sim.market_streams.subscribers("btcusdt@trade") == 1


async def test_black_hole_detected_by_keepalive_and_redialled(
    sim: BinanceSimulator, make_source: Callable[..., Any]
) -> None:
    source, consumer = make_source(sim, ws_keepalive_s=0.2, stream_idle_timeout_s=30.0)
    await consumer.more(Trade)
    sim.stall_market_connections(stream_contains="@trade", blackhole=True)
    await consumer.wait_for(lambda: source.stats().reconnects[TRADES] >= 1)
    await consumer.more(Trade)


async def test_depth_gap_resyncs_book_and_never_publishes_broken_book(
    sim: BinanceSimulator, make_source: Callable[..., Any]
) -> None:
    source, consumer = make_source(sim, trades=False, quotes="none", order_book=True, order_book_depth=5)
    await consumer.more(BookSnapshot)
    sim.faults.gap_depth(symbol="BTCUSDT")
    await consumer.wait_for(lambda: source.stats().resyncs[BOOK] >= 1)
    await consumer.more(BookSnapshot)
    books = [e for e in consumer.events if isinstance(e, BookSnapshot)]
    for book in books:
        assert book.bids and book.asks and book.bids[0][0] < book.asks[0][0]
        assert len(book.bids) <= 5 and len(book.asks) <= 5
        assert all(a[0] > b[0] for a, b in zip(book.bids, book.bids[1:], strict=False))
    seqs = [b.seq for b in books]
    assert len(sim.requests.find("GET", "/api/v3/depth")) >= 2  # a fresh snapshot after the gap
    assert seqs[-1] > seqs[0]


async def test_book_stream_drop_takes_fresh_snapshot(sim: BinanceSimulator, make_source: Callable[..., Any]) -> None:
    source, consumer = make_source(sim, trades=False, quotes="none", order_book=True)
    await consumer.more(BookSnapshot)
    snapshots = len(sim.requests.find("GET", "/api/v3/depth"))
    sim.faults.deltas_before_ack()  # the stale-book hazard of §4.5 on the reconnect
    await sim.drop_market_connections(code=1001, stream_contains="@depth")
    await consumer.wait_for(lambda: source.stats().reconnects[BOOK] >= 1)
    await consumer.more(BookSnapshot)
    assert len(sim.requests.find("GET", "/api/v3/depth")) > snapshots
    for book in (e for e in consumer.events if isinstance(e, BookSnapshot)):
        assert book.bids[0][0] < book.asks[0][0]


async def test_events_is_resumable_after_interruption(sim: BinanceSimulator) -> None:
    source = CcxtMarketSource(source_config(sim), [SYM], environ={})
    try:
        seen: list[MarketEvent] = []
        async for ev in source.events():
            seen.append(ev)
            if len(seen) == 3:
                break
        async for ev in source.events():
            seen.append(ev)
            if len(seen) == 6:
                break
        trades = [e.trade_id for e in seen if isinstance(e, Trade)]
        assert trades == sorted(set(trades)) and source.stats().events == 6
    finally:
        await source.close()
    assert source.stats().ended


async def test_build_source_ccxt_returns_ccxt_market_source(sim: BinanceSimulator) -> None:
    feed = FeedSection(source="ccxt", symbols=(SYM,))
    source = build_source(feed, Path, ccxt=source_config(sim))
    assert isinstance(source, CcxtMarketSource) and source.symbols == (SYM,)
    await source.close()


def test_source_without_streams_is_refused() -> None:
    with pytest.raises(ValueError):
        CcxtMarketSource(CcxtVenueSection(trades=False, quotes="none"), [SYM])
    with pytest.raises(ValueError):
        CcxtMarketSource(CcxtVenueSection(), [])


def test_items_without_an_exchange_timestamp_take_the_injected_business_clock() -> None:
    clock = MarketClock(1_700_000_000_000)
    for missing in (None, 0, -5, True, "1600000000000"):
        assert epoch_ms_or_now(missing, clock) == 1_700_000_000_000
    assert epoch_ms_or_now(1_600_000_000_000, clock) == 1_600_000_000_000
    source = CcxtMarketSource(CcxtVenueSection(), [SYM], clock=clock)
    stream = source._streams[TRADES]
    trade = source._trade(stream, {"symbol": SYM, "side": "buy", "price": 1.5, "amount": 2.0, "id": "7"}, 1)
    assert trade is not None and trade.ts_ms == 1_700_000_000_000

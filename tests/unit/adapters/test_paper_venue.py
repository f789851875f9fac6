"""PaperVenue: matching, fees, funds, cancels, update stream and a persistent account."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.kernel.clock import perf_ns
from actors.model.market import Bar, Quote, Trade
from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.capabilities import MarketTap
from actors.ports.venue import OrderNotFound, OrderRejected, Venue, VenueUpdate
from adapters.paper_venue import PaperVenue
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
INSTRUMENTS = {
    SYM: InstrumentSection(
        base="XRP",
        quote="ETH",
        tick_size=D("0.00000001"),
        step_size=D("1"),
        min_qty=D("1"),
        max_qty=D("1000000"),
        min_notional=D("0.001"),
    )
}


def config(**kw: Any) -> PaperVenueSection:
    base: dict[str, Any] = {
        "maker_fee_bps": 10.0,
        "taker_fee_bps": 10.0,
        "slippage_bps": 10.0,
        "latency_ms": 0.0,
        "initial_balances": {"ETH": D("10"), "XRP": D("1000")},
        "fsync": False,
    }
    base.update(kw)
    return PaperVenueSection(**base)


class FakeClock:
    """Business time that moves only when a test moves it."""

    simulated = True

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[PaperVenue]:
    v = PaperVenue(tmp_path / "paper.sqlite", config(), INSTRUMENTS, clock=FakeClock())
    await v.start()
    yield v
    await v.close()


def req(cid: str, side: Side, size: str, price: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=SYM,
        side=side,
        type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        size=D(size),
        price=D(price) if price is not None else None,
    )


def quote(bid: float, ask: float) -> Quote:
    return Quote(symbol=SYM, ts_ms=1, bid=bid, ask=ask)


def trade(price: float, size: float) -> Trade:
    return Trade(symbol=SYM, ts_ms=2, price=price, size=size, side="sell")


async def drain(stream: AsyncIterator[VenueUpdate], n: int) -> list[VenueUpdate]:
    return [await asyncio.wait_for(anext(stream), 1.0) for _ in range(n)]


async def test_paper_venue_is_a_venue_protocol_instance(venue: PaperVenue) -> None:
    assert isinstance(venue, Venue)
    assert isinstance(venue, MarketTap)


async def test_market_buy_fills_at_ask_with_slippage_and_taker_fee(venue: PaperVenue) -> None:
    stream = venue.updates()
    venue.on_market(quote(0.00199, 0.002))
    out = await venue.submit(req("c1", Side.BUY, "100"))
    # ask 0.002 moved 10 bps against us = 0.002002; fee 10 bps of 0.2002 in ETH
    assert out.status is OrderStatus.FILLED
    assert out.filled == D("100")
    assert out.avg_price == D("0.00200200")
    bal = await venue.balances()
    assert bal["ETH"].free == D("10") - D("0.2002") - D("0.0002002")
    assert bal["XRP"].free == D("1100")
    fill, update = await drain(stream, 2)
    assert isinstance(fill, Fill)
    assert (fill.liquidity, fill.fee, fill.fee_currency) == ("taker", D("0.0002002"), "ETH")
    assert isinstance(update, VenueOrder)
    assert update.status is OrderStatus.FILLED


async def test_market_sell_fills_at_last_trade_with_slippage(venue: PaperVenue) -> None:
    venue.on_market(trade(0.002, 50))
    out = await venue.submit(req("c1", Side.SELL, "100"))
    assert out.avg_price == D("0.001998")
    bal = await venue.balances()
    assert bal["XRP"].free == D("900")
    assert bal["ETH"].free == D("10") + D("0.1998") - D("0.0001998")


async def test_market_order_without_market_data_rejected(venue: PaperVenue) -> None:
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req("c1", Side.BUY, "10"))
    assert err.value.reason == "NO_MARKET_DATA"


async def test_limit_buy_rests_then_fills_when_traded_through(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    stream = venue.updates()
    out = await venue.submit(req("c1", Side.BUY, "100", "0.0019"))
    assert out.status is OrderStatus.ACCEPTED
    bal = await venue.balances()
    lock = D("100") * D("0.0019") * D("1.001")
    assert (bal["ETH"].free, bal["ETH"].locked) == (D("10") - lock, lock)
    venue.on_market(trade(0.00191, 1000))  # above the limit: nothing
    assert [o.status for o in await venue.open_orders()] == [OrderStatus.ACCEPTED]
    venue.on_market(trade(0.0019, 1000))  # at the limit: fills as maker at the limit
    accepted, fill, filled = await drain(stream, 3)
    assert isinstance(accepted, VenueOrder)
    assert accepted.status is OrderStatus.ACCEPTED
    assert isinstance(fill, Fill)
    assert (fill.price, fill.size, fill.liquidity, fill.fee) == (D("0.0019"), D("100"), "maker", D("0.00019"))
    assert isinstance(filled, VenueOrder)
    assert filled.status is OrderStatus.FILLED
    bal = await venue.balances()
    assert bal["ETH"].free == D("10") - D("0.19") - D("0.00019")
    assert bal["ETH"].locked == 0
    assert bal["XRP"].free == D("1100")
    assert await venue.open_orders() == []


async def test_limit_sell_partial_fill_on_small_print_then_rest_fills(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("s1", Side.SELL, "100", "0.0021"))
    venue.on_market(trade(0.0022, 30))
    q = await venue.query("s1", SYM)
    assert q is not None
    assert (q.status, q.filled) == (OrderStatus.PARTIALLY_FILLED, D("30"))
    bal = await venue.balances()
    assert (bal["XRP"].free, bal["XRP"].locked) == (D("900"), D("70"))
    venue.on_market(trade(0.0021, 500))
    q = await venue.query("s1", SYM)
    assert q is not None
    assert (q.status, q.filled, q.avg_price) == (OrderStatus.FILLED, D("100"), D("0.0021"))
    bal = await venue.balances()
    assert bal["XRP"].locked == 0
    assert bal["ETH"].free == D("10") + D("0.21") - D("0.00021")


async def test_one_print_shared_by_price_then_time_priority(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("b1", Side.BUY, "100", "0.0019"))
    await venue.submit(req("b2", Side.BUY, "100", "0.00195"))
    venue.on_market(trade(0.0019, 150))
    b1, b2 = await venue.query("b1", SYM), await venue.query("b2", SYM)
    assert b1 is not None and b2 is not None
    assert (b2.status, b1.filled) == (OrderStatus.FILLED, D("50"))


async def test_marketable_limit_fills_immediately_as_taker_capped_at_limit(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    out = await venue.submit(req("c1", Side.BUY, "100", "0.002001"))
    assert out.status is OrderStatus.FILLED
    assert out.avg_price == D("0.002001")  # slippage would give 0.002002: capped at the limit
    bal = await venue.balances()
    assert bal["ETH"].locked == 0
    assert bal["ETH"].free == D("10") - D("0.2001") - D("0.0002001")


async def test_cancel_releases_locked_funds_and_second_cancel_not_found(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("c1", Side.BUY, "100", "0.0019"))
    out = await venue.cancel("c1", SYM)
    assert out.status is OrderStatus.CANCELED
    bal = await venue.balances()
    assert (bal["ETH"].free, bal["ETH"].locked) == (D("10"), D("0"))
    venue.on_market(trade(0.0018, 1000))
    q = await venue.query("c1", SYM)
    assert q is not None and q.filled == 0
    with pytest.raises(OrderNotFound):
        await venue.cancel("c1", SYM)


async def test_buy_beyond_free_quote_rejected_insufficient_funds(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req("c1", Side.BUY, "5000", "0.002"))  # 10 ETH + fee > 10 ETH
    assert err.value.reason == "INSUFFICIENT_FUNDS"
    assert await venue.query("c1", SYM) is None


async def test_sell_beyond_free_base_rejected_insufficient_funds(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("s1", Side.SELL, "600", "0.003"))
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req("s2", Side.SELL, "600", "0.003"))  # 400 XRP left free
    assert err.value.reason == "INSUFFICIENT_FUNDS"


async def test_duplicate_open_client_order_id_rejected(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("c1", Side.BUY, "10", "0.0019"))
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req("c1", Side.BUY, "10", "0.0019"))
    assert err.value.reason == "DUPLICATE_CLIENT_ORDER_ID"


async def test_off_step_quantity_rejected_precision_as_the_ccxt_venue_does(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req("c1", Side.BUY, "10.5"))
    assert err.value.reason == "PRECISION"


async def test_query_closed_order_by_client_id_returns_final_state(venue: PaperVenue) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("c1", Side.BUY, "100"))
    q = await venue.query("c1", SYM)
    assert q is not None
    assert (q.status, q.filled, q.venue) == (OrderStatus.FILLED, D("100"), "paper")
    assert await venue.query("never", SYM) is None


async def test_submit_returned_order_is_already_in_the_file(venue: PaperVenue, tmp_path: Path) -> None:
    venue.on_market(quote(0.00199, 0.002))
    await venue.submit(req("c1", Side.BUY, "100", "0.0019"))
    # As if the process were killed now: another connection sees the committed row.
    con = sqlite3.connect(tmp_path / "paper.sqlite")
    try:
        row = con.execute("SELECT status, locked FROM orders WHERE client_order_id='c1'").fetchone()
    finally:
        con.close()
    assert row == ("ACCEPTED", str(D("100") * D("0.0019") * D("1.001")))


async def test_state_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "paper.sqlite"
    v1 = PaperVenue(path, config(), INSTRUMENTS)
    await v1.start()
    v1.on_market(quote(0.00199, 0.002))
    await v1.submit(req("m1", Side.BUY, "100"))
    await v1.submit(req("l1", Side.BUY, "100", "0.0019"))
    bal_before = await v1.balances()
    fills_before = await v1.fills_since(0)
    await v1.close()

    v2 = PaperVenue(path, config(initial_balances={"ETH": D("999")}), INSTRUMENTS)
    await v2.start()
    try:
        assert await v2.balances() == bal_before  # not re-seeded
        assert [o.client_order_id for o in await v2.open_orders()] == ["l1"]
        assert await v2.fills_since(0) == fills_before
        closed = await v2.query("m1", SYM)
        assert closed is not None and closed.status is OrderStatus.FILLED
        # the reloaded resting order still matches, with a fresh trade id
        v2.on_market(trade(0.0019, 1000))
        fills = await v2.fills_since(0)
        assert len(fills) == 2
        assert len({f.trade_id for f in fills}) == 2
        assert (await v2.balances())["ETH"].locked == 0
    finally:
        await v2.close()


async def test_fills_since_filters_by_time_and_symbol(tmp_path: Path) -> None:
    clock = FakeClock()
    v = PaperVenue(tmp_path / "p.sqlite", config(), INSTRUMENTS, clock=clock)
    await v.start()
    try:
        v.on_market(quote(0.00199, 0.002))
        await v.submit(req("a", Side.BUY, "10"))
        clock.ms += 1000
        await v.submit(req("b", Side.BUY, "10"))
        assert [f.client_order_id for f in await v.fills_since(clock.ms)] == ["b"]
        assert [f.client_order_id for f in await v.fills_since(0, SYM)] == ["a", "b"]
        assert await v.fills_since(0, "BTC/ETH") == []
    finally:
        await v.close()


async def test_latency_delays_acknowledgement(tmp_path: Path) -> None:
    v = PaperVenue(tmp_path / "p.sqlite", config(latency_ms=30.0), INSTRUMENTS)
    await v.start()
    try:
        v.on_market(quote(0.00199, 0.002))
        t0 = perf_ns()
        await v.submit(req("a", Side.BUY, "10"))
        assert perf_ns() - t0 >= 30_000_000
    finally:
        await v.close()


async def test_bars_match_resting_orders_only_when_enabled(tmp_path: Path) -> None:
    v = PaperVenue(tmp_path / "p.sqlite", config(match_on_bars=True), INSTRUMENTS)
    await v.start()
    try:
        bar = Bar(symbol=SYM, ts_ms=0, timeframe="1m", open=0.002, high=0.0021, low=0.00185, close=0.002,
                  volume=40.0)
        v.on_market(bar)
        await v.submit(req("b1", Side.BUY, "100", "0.0019"))
        v.on_market(bar)
        q = await v.query("b1", SYM)
        assert q is not None and q.filled == D("40")
    finally:
        await v.close()


async def test_update_stream_ends_on_close(tmp_path: Path) -> None:
    v = PaperVenue(tmp_path / "p.sqlite", config(), INSTRUMENTS)
    await v.start()
    stream = v.updates()
    await v.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 1.0)

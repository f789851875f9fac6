"""The fill model through ``PaperVenue``: market-time latency, partial fills, expiry, filters, as a venue reports."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.kernel.clock import MarketClock, WallClock
from actors.model.market import MarketEvent, Quote
from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import OrderRejected, VenueUpdate
from adapters.paper_venue import PaperVenue
from adapters.paper_venue import venue as venue_module
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
T0 = 1_700_000_000_000
INSTRUMENTS = {
    SYM: InstrumentSection(
        base="XRP", quote="ETH", tick_size=D("0.00000001"), step_size=D("1"), min_qty=D("1"),
        max_qty=D("1000000"), min_notional=D("0.01"),
    )
}


def config(**kw: Any) -> PaperVenueSection:
    base: dict[str, Any] = {
        "maker_fee_bps": 10.0, "taker_fee_bps": 20.0, "slippage_bps": 0.0, "fsync": False,
        "initial_balances": {"ETH": D("10"), "XRP": D("1000")},
    }
    base.update(kw)
    return PaperVenueSection(**base)


class Fed:
    """A paper venue on a market clock, fed events the way the feed does (clock first)."""

    def __init__(self, venue: PaperVenue, clock: MarketClock) -> None:
        self.venue = venue
        self.clock = clock

    def feed(self, event: MarketEvent) -> None:
        self.clock.advance(event.ts_ms)
        self.venue.on_market(event)

    def quote(self, ask: float, ask_size: float = 0.0, at: int = 0) -> None:
        self.feed(Quote(symbol=SYM, ts_ms=T0 + at, bid=0.0019, ask=ask, bid_size=0.0, ask_size=ask_size))


@pytest.fixture
async def opened(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Fed]:
    clock = MarketClock(T0)
    v = PaperVenue(tmp_path / "p.sqlite", config(**getattr(request, "param", {})), INSTRUMENTS, clock=clock)
    await v.start()
    yield Fed(v, clock)
    await v.close()


def market(cid: str, side: Side, size: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=SYM, side=side, type=OrderType.MARKET, size=D(size))


async def drain(stream: AsyncIterator[VenueUpdate], n: int) -> list[VenueUpdate]:
    return [await asyncio.wait_for(anext(stream), 1.0) for _ in range(n)]


def summary(items: list[VenueUpdate]) -> list[tuple[str, Any, Any]]:
    """(kind, size or status, price or filled) of each update."""
    return [("fill", u.size, u.price) if isinstance(u, Fill) else ("order", u.status, u.filled) for u in items]


@pytest.mark.parametrize("opened", [{"latency_ms": 250.0}], indirect=True)
async def test_on_a_market_clock_submit_acknowledges_and_the_fill_follows_on_the_stream(opened: Fed) -> None:
    venue = opened.venue
    stream = venue.updates()
    opened.quote(0.002)
    out = await venue.submit(market("m1", Side.BUY, "100"))
    assert (out.status, out.filled) == (OrderStatus.ACCEPTED, 0)
    assert [o.client_order_id for o in await venue.open_orders()] == ["m1"]
    opened.quote(0.0021, at=249)
    opened.quote(0.0022, at=250)
    updates = await drain(stream, 3)
    assert summary(updates) == [
        ("order", OrderStatus.ACCEPTED, 0), ("fill", D("100"), D("0.0022")), ("order", OrderStatus.FILLED, D("100")),
    ]
    [fill] = await venue.fills_since(0)
    assert (fill.ts_ms, fill.fee, fill.liquidity) == (T0 + 250, D("0.00044"), "taker")
    assert await venue.open_orders() == []


@pytest.mark.parametrize("opened", [{"market_remainder": "partial_then_next_events"}], indirect=True)
async def test_partial_fills_each_carry_their_fee_and_the_order_goes_partially_filled_then_filled(opened: Fed) -> None:
    venue = opened.venue
    stream = venue.updates()
    opened.quote(0.002, 30)
    out = await venue.submit(market("m1", Side.BUY, "100"))
    assert (out.status, out.filled) == (OrderStatus.PARTIALLY_FILLED, D("30"))
    opened.quote(0.0021, 500, at=1)
    updates = await drain(stream, 4)
    assert summary(updates) == [
        ("fill", D("30"), D("0.002")), ("order", OrderStatus.PARTIALLY_FILLED, D("30")),
        ("fill", D("70"), D("0.0021")), ("order", OrderStatus.FILLED, D("100")),
    ]
    fills = await venue.fills_since(0)
    assert [(f.size, f.fee) for f in fills] == [(D("30"), D("0.00012")), (D("70"), D("0.000294"))]
    assert len({f.trade_id for f in fills}) == 2
    q = await venue.query("m1", SYM)
    assert q is not None and (q.status, q.avg_price) == (OrderStatus.FILLED, D("0.00207"))  # 0.207 / 100


@pytest.mark.parametrize("opened", [{"market_remainder": "partial_then_next_events",
                                     "initial_balances": {"ETH": D("0.1")}}], indirect=True)
async def test_a_remainder_expired_by_market_data_is_committed_and_published(opened: Fed) -> None:
    venue = opened.venue
    stream = venue.updates()
    opened.quote(0.002, 10)
    await venue.submit(market("m1", Side.BUY, "40"))  # 10 now, 0.07996 ETH left
    opened.quote(0.003, 100, at=1)  # 26 affordable at 0.003 (+ fee), 4 expire
    updates = await drain(stream, 5)
    assert summary(updates)[2:] == [
        ("fill", D("26"), D("0.003")), ("order", OrderStatus.PARTIALLY_FILLED, D("36")),
        ("order", OrderStatus.EXPIRED, D("36")),
    ]
    q = await venue.query("m1", SYM)
    assert q is not None and (q.status, q.reason) == (OrderStatus.EXPIRED, "INSUFFICIENT_FUNDS")


async def test_filter_failure_is_a_definite_rejection_and_leaves_no_trace(opened: Fed) -> None:
    opened.quote(0.002)
    with pytest.raises(OrderRejected) as err:
        await opened.venue.submit(market("m1", Side.BUY, "4"))  # 4 x 0.002 = 0.008 < 0.01
    assert err.value.reason == "INVALID_ORDER" and "NOTIONAL" in str(err.value)
    assert await opened.venue.query("m1", SYM) is None


@pytest.mark.parametrize("opened", [{"market_remainder": "partial_then_next_events"}], indirect=True)
async def test_a_working_market_order_survives_a_restart_and_fills_on_the_next_events(
    opened: Fed, tmp_path: Path
) -> None:
    opened.feed(Quote(symbol=SYM, ts_ms=T0, bid=0.0019, ask=0.002, bid_size=30.0))
    await opened.venue.submit(market("m1", Side.SELL, "100"))
    await opened.venue.close()
    again = PaperVenue(tmp_path / "p.sqlite", config(market_remainder="partial_then_next_events"), INSTRUMENTS,
                       clock=opened.clock)
    await again.start()
    try:
        assert [(o.client_order_id, o.filled) for o in await again.open_orders()] == [("m1", D("30"))]
        assert (await again.balances())["XRP"].locked == D("70")
        again.on_market(Quote(symbol=SYM, ts_ms=T0 + 5, bid=0.0018, ask=0.002, bid_size=1000.0))
        q = await again.query("m1", SYM)
        assert q is not None and (q.status, q.filled) == (OrderStatus.FILLED, D("100"))
        assert (await again.balances())["XRP"].locked == 0
    finally:
        await again.close()


@pytest.mark.parametrize(("simulated", "waited"), [(True, [0.25]), (False, [0.35])])
async def test_latency_waits_in_real_time_only_on_the_wall_clock_ack_delay_always(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulated: bool, waited: list[float]
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(venue_module, "asyncio", types.SimpleNamespace(sleep=sleep))
    clock = MarketClock(T0) if simulated else WallClock()
    v = PaperVenue(tmp_path / "p.sqlite", config(latency_ms=100.0, ack_delay_ms=250.0), INSTRUMENTS, clock=clock)
    await v.start()
    try:
        v.on_market(Quote(symbol=SYM, ts_ms=T0, bid=0.0019, ask=0.002))
        out: VenueOrder = await v.submit(market("m1", Side.BUY, "10"))
        assert slept == waited
        # on the wall clock the order met the book after the wait; on a market clock it travels
        assert out.status is (OrderStatus.ACCEPTED if simulated else OrderStatus.FILLED)
    finally:
        await v.close()

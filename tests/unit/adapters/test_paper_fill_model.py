"""The paper venue's fill model on the matching engine: latency, the walk, limits, filters, determinism.

Every expected fill is computed by hand in the comments (sizes in XRP, prices in ETH).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.kernel.clock import MarketClock
from actors.model.market import BookDelta, BookSnapshot, MarketEvent, Quote, Trade
from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import OrderRejected
from adapters.paper_venue.matching import MatchingEngine, PaperOrder, Wallet
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
INSTRUMENTS = {
    SYM: InstrumentSection(
        base="XRP", quote="ETH", tick_size=D("0.00000001"), step_size=D("1"), min_qty=D("5"),
        max_qty=D("100000"), min_notional=D("0.01"),
    )
}
T0 = 1_700_000_000_000


class Journal:
    """Records fills and order states as the engine reports them."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.views: list[VenueOrder] = []

    def order_changed(self, order: PaperOrder, view: VenueOrder) -> None:
        self.views.append(view)

    def order_filled(self, order: PaperOrder, fill: Fill, view: VenueOrder) -> None:
        self.fills.append(fill)
        self.views.append(view)

    def balance_changed(self, asset: str, wallet: Wallet) -> None:
        pass

    def order_ids_advanced(self, next_id: int) -> None:
        pass

    def trade_ids_advanced(self, next_id: int) -> None:
        pass

    def executions(self) -> list[tuple[Decimal, Decimal, str]]:
        return [(f.size, f.price, f.liquidity) for f in self.fills]


class Market:
    """An engine on a market clock, fed events the way the feed does (clock first)."""

    def __init__(self, eth: str = "10", xrp: str = "1000", **cfg: Any) -> None:
        base: dict[str, Any] = {"maker_fee_bps": 10.0, "taker_fee_bps": 20.0, "slippage_bps": 0.0, "fsync": False}
        base.update(cfg)
        self.clock = MarketClock(T0)
        self.journal = Journal()
        self.engine = MatchingEngine(PaperVenueSection(**base), INSTRUMENTS, "paper", self.clock, self.journal)
        self.engine.load([], {"ETH": Wallet(D(eth)), "XRP": Wallet(D(xrp))}, 1, 1)

    def feed(self, event: MarketEvent) -> None:
        self.clock.advance(event.ts_ms)
        self.engine.on_market(event)

    def quote(self, bid: float, ask: float, bid_size: float = 0.0, ask_size: float = 0.0, at: int = 0) -> None:
        self.feed(Quote(symbol=SYM, ts_ms=T0 + at, bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size))

    def trade(self, price: float, size: float, at: int = 0) -> None:
        self.feed(Trade(symbol=SYM, ts_ms=T0 + at, price=price, size=size, side="sell"))

    def place(self, cid: str, side: Side, size: str, price: str | None = None) -> VenueOrder:
        return self.engine.place(OrderRequest(
            client_order_id=cid, symbol=SYM, side=side, type=OrderType.LIMIT if price else OrderType.MARKET,
            size=D(size), price=D(price) if price else None,
        ))

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        b = self.engine.balances()[asset]
        return b.free, b.locked


# -- 1. latency in market time -------------------------------------------------------------------
def test_market_order_reaches_the_book_latency_ms_of_market_time_later_and_fills_as_of_that_event() -> None:
    m = Market(latency_ms=100)
    m.quote(0.00199, 0.002)
    out = m.place("m1", Side.BUY, "100")
    assert (out.status, out.filled) == (OrderStatus.ACCEPTED, 0)
    assert m.journal.views == [out]  # acknowledged, nothing filled
    m.quote(0.00199, 0.0021, at=99)  # 1 ms short of the book
    assert m.journal.fills == []
    m.quote(0.00199, 0.0022, at=100)  # reaches the book: the ask of this event
    # 100 x 0.0022 = 0.22 ETH; taker fee 20 bps = 0.00044
    [fill] = m.journal.fills
    assert (fill.size, fill.price, fill.fee, fill.liquidity, fill.ts_ms) == (
        D("100"), D("0.0022"), D("0.00044"), "taker", T0 + 100)
    assert m.journal.views[-1].status is OrderStatus.FILLED
    assert m.balance("ETH") == (D("10") - D("0.22") - D("0.00044"), 0)
    assert m.engine.open == {}


def test_limit_order_checked_for_marketability_when_it_reaches_the_book_not_when_sent() -> None:
    m = Market(latency_ms=50)
    m.quote(0.00199, 0.002)
    out = m.place("b1", Side.BUY, "100", "0.0021")  # marketable now ...
    assert out.status is OrderStatus.ACCEPTED
    m.quote(0.0022, 0.0023, at=60)  # ... but the market moved away before it arrived: it rests
    assert m.journal.fills == [] and list(m.engine.open) == ["b1"]
    m.trade(0.0021, 1000, at=70)  # a print at the limit fills it as maker
    assert m.journal.executions() == [(D("100"), D("0.0021"), "maker")]


def test_order_canceled_on_its_way_to_the_book_never_fills_and_unlocks() -> None:
    m = Market(latency_ms=100)
    m.quote(0.00199, 0.002)
    m.place("b1", Side.BUY, "100", "0.0025")
    assert m.balance("ETH")[1] == D("100") * D("0.0025") * D("1.002")  # locked with the larger fee
    view = m.engine.cancel("b1")
    assert view.status is OrderStatus.CANCELED
    m.quote(0.00199, 0.002, at=200)
    assert m.journal.fills == [] and m.balance("ETH") == (D("10"), 0)


def test_zero_latency_fills_on_submission() -> None:
    m = Market()
    m.quote(0.00199, 0.002)
    assert m.place("m1", Side.BUY, "100").status is OrderStatus.FILLED


# -- 2. market orders walk the available size ------------------------------------------------------
def test_market_buy_takes_the_quoted_size_then_walks_top_size_chunks_depth_step_worse() -> None:
    m = Market(depth_step_bps=50.0)
    m.quote(0.00199, 0.002, 500, 30)
    out = m.place("m1", Side.BUY, "100")
    # 30 at the ask, then chunks of 30 at 0.002 x (1 + k x 0.005): 0.00201, 0.00202, then 10 at 0.00203
    assert m.journal.executions() == [
        (D("30"), D("0.002"), "taker"), (D("30"), D("0.00201"), "taker"),
        (D("30"), D("0.00202"), "taker"), (D("10"), D("0.00203"), "taker"),
    ]
    assert [f.fee for f in m.journal.fills] == [D("0.00012"), D("0.0001206"), D("0.0001212"), D("0.0000406")]
    assert [v.status for v in m.journal.views] == [OrderStatus.PARTIALLY_FILLED] * 3 + [OrderStatus.FILLED]
    assert len({f.trade_id for f in m.journal.fills}) == 4
    # 0.06 + 0.0603 + 0.0606 + 0.0203 = 0.2012 for 100
    assert (out.status, out.filled, out.avg_price) == (OrderStatus.FILLED, D("100"), D("0.002012"))


def test_the_walk_stops_after_depth_levels_and_the_rest_fills_at_the_last_chunk() -> None:
    m = Market(depth_step_bps=50.0, depth_levels=2)
    m.quote(0.00199, 0.002, 500, 30)
    m.place("m1", Side.BUY, "100")
    assert m.journal.executions() == [
        (D("30"), D("0.002"), "taker"), (D("30"), D("0.00201"), "taker"), (D("40"), D("0.00202"), "taker"),
    ]


def test_without_depth_step_the_remainder_fills_at_the_worst_visible_price_in_one_fill() -> None:
    m = Market()
    m.quote(0.00199, 0.002, 500, 30)
    m.place("s1", Side.SELL, "100")  # bid size 500 covers it
    m.place("b1", Side.BUY, "100")  # ask size 30: the rest at the same price, one fill
    assert m.journal.executions() == [(D("100"), D("0.00199"), "taker"), (D("100"), D("0.002"), "taker")]


def test_slippage_moves_every_walked_price_against_us_and_rounds_to_the_tick() -> None:
    m = Market(depth_step_bps=50.0, slippage_bps=10.0)
    m.quote(0.00199, 0.002, 30, 30)
    m.place("b1", Side.BUY, "40")
    # 0.002 x 1.001 = 0.002002; 0.00201 x 1.001 = 0.00201201
    assert m.journal.executions() == [(D("30"), D("0.002002"), "taker"), (D("10"), D("0.00201201"), "taker")]
    m.place("s1", Side.SELL, "40")
    # 0.00199 x 0.999 = 0.00198801; 0.00199 x 0.995 = 0.00198005, x 0.999 = 0.0019780699.. floor 0.00197806
    assert m.journal.executions()[2:] == [(D("30"), D("0.00198801"), "taker"), (D("10"), D("0.00197806"), "taker")]


def test_market_order_walks_the_levels_of_a_book_snapshot_then_of_the_book_after_a_delta() -> None:
    m = Market(depth_step_bps=100.0)
    asks = ((0.002, 30.0), (0.00201, 50.0), (0.00205, 1000.0))
    m.feed(BookSnapshot(symbol=SYM, ts_ms=T0, seq=1, bids=((0.00199, 10.0),), asks=asks))
    m.place("b1", Side.BUY, "100")
    assert m.journal.executions() == [
        (D("30"), D("0.002"), "taker"), (D("50"), D("0.00201"), "taker"), (D("20"), D("0.00205"), "taker"),
    ]
    # the delta removes 0.002 and adds 40 at 0.00203: 50 at 0.00201, 40 at 0.00203, 10 at 0.00205
    m.feed(BookDelta(symbol=SYM, ts_ms=T0 + 1, first_seq=2, last_seq=2, bids=(),
                     asks=((0.002, 0.0), (0.00203, 40.0))))
    m.place("b2", Side.BUY, "100")
    assert m.journal.executions()[3:] == [
        (D("50"), D("0.00201"), "taker"), (D("40"), D("0.00203"), "taker"), (D("10"), D("0.00205"), "taker"),
    ]
    # a later quote sets the touch again: no size, unlimited at its ask
    m.quote(0.0021, 0.0022, at=2)
    m.place("b3", Side.BUY, "100")
    assert m.journal.executions()[6:] == [(D("100"), D("0.0022"), "taker")]


def test_market_order_beyond_the_last_book_level_walks_depth_step_chunks_of_the_first_level() -> None:
    m = Market(depth_step_bps=100.0)
    m.feed(BookSnapshot(symbol=SYM, ts_ms=T0, seq=1, bids=((0.002, 20.0), (0.0019, 20.0)), asks=()))
    m.place("s1", Side.SELL, "70")
    # 20 at 0.002, 20 at 0.0019, then 20-sized chunks at 0.0019 x 0.99 = 0.001881 and x 0.98 = 0.001862
    assert m.journal.executions() == [
        (D("20"), D("0.002"), "taker"), (D("20"), D("0.0019"), "taker"),
        (D("20"), D("0.001881"), "taker"), (D("10"), D("0.001862"), "taker"),
    ]


@pytest.mark.parametrize(("limited", "expected"), [
    (True, [(D("30"), D("0.002"), "taker"), (D("30"), D("0.00201"), "taker"), (D("40"), D("0.00202"), "taker")]),
    (False, [(D("100"), D("0.002"), "taker")]),
])
def test_with_trades_only_the_print_size_is_the_visible_liquidity_when_volume_limited(
    limited: bool, expected: list[tuple[Decimal, Decimal, str]]
) -> None:
    m = Market(depth_step_bps=50.0, depth_levels=2, trade_volume_limited=limited)
    m.trade(0.002, 30)
    m.place("b1", Side.BUY, "100")
    assert m.journal.executions() == expected


def test_partial_mode_takes_the_visible_size_now_and_each_later_quote_until_filled() -> None:
    m = Market(market_remainder="partial_then_next_events")
    m.quote(0.00199, 0.002, 500, 30)
    out = m.place("b1", Side.BUY, "100")
    assert (out.status, out.filled) == (OrderStatus.PARTIALLY_FILLED, D("30"))
    assert list(m.engine.open) == ["b1"]
    m.trade(0.0019, 1000, at=1)  # quotes are the liquidity here: a print takes nothing
    m.quote(0.00199, 0.0021, 500, 50, at=2)
    m.quote(0.00199, 0.0022, 500, 100, at=3)
    assert m.journal.executions() == [
        (D("30"), D("0.002"), "taker"), (D("50"), D("0.0021"), "taker"), (D("20"), D("0.0022"), "taker"),
    ]
    assert [v.status for v in m.journal.views] == [OrderStatus.PARTIALLY_FILLED] * 2 + [OrderStatus.FILLED]
    assert m.engine.open == {}


def test_partial_market_sell_on_prints_locks_what_it_still_owes_and_cancel_releases_it() -> None:
    m = Market(market_remainder="partial_then_next_events")
    m.trade(0.002, 30)
    m.place("s1", Side.SELL, "100")
    assert m.balance("XRP") == (D("900"), D("70"))  # 30 sold, 70 locked for the rest
    m.trade(0.0019, 50, at=1)
    assert m.journal.executions() == [(D("30"), D("0.002"), "taker"), (D("50"), D("0.0019"), "taker")]
    assert m.balance("XRP") == (D("900"), D("20"))
    view = m.engine.cancel("s1")
    assert (view.status, view.filled) == (OrderStatus.CANCELED, D("80"))
    assert m.balance("XRP") == (D("920"), 0)


def test_market_buy_the_account_cannot_pay_for_fills_what_it_can_and_expires() -> None:
    m = Market(eth="0.1", market_remainder="partial_then_next_events")
    m.quote(0.00199, 0.002, 500, 10)
    m.place("b1", Side.BUY, "40")  # needs 40 x 0.002 x 1.002 = 0.08016 ETH: accepted
    # 10 at 0.002 costs 0.02 + 0.00004 fee: 0.07996 ETH left. Then 30 at 0.003 needs 0.09018:
    # 0.07996 / (0.003 x 1.002) = 26.6 -> 26 fill, the other 4 expire.
    m.quote(0.00199, 0.003, 500, 100, at=1)
    assert m.journal.executions() == [(D("10"), D("0.002"), "taker"), (D("26"), D("0.003"), "taker")]
    last = m.journal.views[-1]
    assert (last.status, last.filled, last.reason) == (OrderStatus.EXPIRED, D("36"), "INSUFFICIENT_FUNDS")
    assert m.engine.open == {}
    assert m.balance("ETH")[0] == D("0.07996") - D("0.078") - D("0.000156")


# -- 3. limit orders -----------------------------------------------------------------------------------
def test_through_needs_a_print_strictly_through_the_limit() -> None:
    m = Market(limit_fill="through")
    m.quote(0.00195, 0.002)
    m.place("b1", Side.BUY, "100", "0.0019")
    m.trade(0.0019, 1000, at=1)
    assert m.journal.fills == []
    m.trade(0.00189, 1000, at=2)
    # maker fee 10 bps of 0.19
    assert [(f.size, f.price, f.liquidity, f.fee) for f in m.journal.fills] == [
        (D("100"), D("0.0019"), "maker", D("0.00019"))]


@pytest.mark.parametrize(("mode", "asks", "filled"), [
    ("touch", [0.0019], D("40")),
    ("through", [0.0019], D("0")),
    ("through", [0.0019, 0.00189], D("40")),
])
def test_an_ask_at_or_through_a_resting_buy_fills_it_up_to_the_quoted_size(
    mode: str, asks: list[float], filled: Decimal
) -> None:
    m = Market(limit_fill=mode)
    m.quote(0.00185, 0.002)
    m.place("b1", Side.BUY, "100", "0.0019")
    for i, ask in enumerate(asks):
        m.quote(0.00185, ask, 10, 40, at=i + 1)
    assert sum((f.size for f in m.journal.fills), D(0)) == filled
    assert all((f.price, f.liquidity) == (D("0.0019"), "maker") for f in m.journal.fills)


@pytest.mark.parametrize(("limited", "filled"), [(True, D("30")), (False, D("100"))])
def test_a_quote_without_size_fills_resting_orders_only_without_the_volume_limit(limited: bool, filled: D) -> None:
    m = Market(trade_volume_limited=limited)
    m.quote(0.00185, 0.002)
    m.place("b1", Side.BUY, "100", "0.0019")
    # a print of 30 at the limit, then the quote derived from it (no sizes): the print was all there was
    m.trade(0.0019, 30, at=1)
    m.quote(0.0019, 0.0019, at=1)
    assert sum((f.size for f in m.journal.fills), D(0)) == filled


def test_without_volume_limit_a_small_print_fills_the_whole_resting_order() -> None:
    m = Market(trade_volume_limited=False)
    m.quote(0.00195, 0.002)
    m.place("s1", Side.SELL, "100", "0.0021")
    m.trade(0.0021, 10, at=1)
    assert m.journal.executions() == [(D("100"), D("0.0021"), "maker")]


def test_marketable_limit_walks_as_taker_up_to_its_limit_then_rests_and_fills_as_maker() -> None:
    m = Market(depth_step_bps=50.0)
    m.quote(0.00199, 0.002, 500, 30)
    out = m.place("b1", Side.BUY, "100", "0.00201")
    # 30 at 0.002 and a chunk of 30 at 0.00201 as taker; the next chunk (0.00202) is beyond the limit
    assert (out.status, out.filled) == (OrderStatus.PARTIALLY_FILLED, D("60"))
    assert m.journal.executions() == [(D("30"), D("0.002"), "taker"), (D("30"), D("0.00201"), "taker")]
    m.trade(0.00201, 100, at=1)
    assert m.journal.executions()[2:] == [(D("40"), D("0.00201"), "maker")]
    # paid 0.06 + 0.0603 + 0.0804, taker fees 0.00012 + 0.0001206, maker fee 0.0000804; nothing stays locked
    assert m.balance("ETH") == (D("10") - D("0.2007") - D("0.0002406") - D("0.0000804"), 0)


def test_partial_mode_rests_the_rest_of_a_marketable_limit_at_once() -> None:
    m = Market(market_remainder="partial_then_next_events", depth_step_bps=50.0)
    m.quote(0.00199, 0.002, 500, 30)
    m.place("b1", Side.BUY, "100", "0.0021")
    assert m.journal.executions() == [(D("30"), D("0.002"), "taker")]
    m.quote(0.00199, 0.0021, 500, 100, at=1)  # the ask reaches the resting 70: maker at the limit
    assert m.journal.executions()[1:] == [(D("70"), D("0.0021"), "maker")]


# -- 4. venue filters ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "price", "reason", "detail"), [
    ("0", None, "INVALID_QUANTITY", "size 0"),
    ("10.5", "0.0019", "PRECISION", "step"),
    ("10", "0.001900001", "PRECISION", "tick"),
    ("10", "0", "INVALID_PRICE", "limit price"),
    ("4", "0.003", "INVALID_ORDER", "LOT_SIZE"),
    ("100001", "0.003", "INVALID_ORDER", "LOT_SIZE"),
    ("5", "0.0019", "INVALID_ORDER", "NOTIONAL"),
    ("5", None, "INVALID_ORDER", "NOTIONAL"),
])
def test_filters_reject_with_the_live_venue_reason_before_anything_is_booked(
    size: str, price: str | None, reason: str, detail: str
) -> None:
    m = Market()
    m.quote(0.00189, 0.0019)
    with pytest.raises(OrderRejected) as err:
        m.place("c1", Side.BUY, size, price)
    assert err.value.reason == reason and detail in str(err.value)
    assert m.journal.views == [] and m.engine.open == {}
    assert m.balance("ETH") == (D("10"), 0)
    assert m.place("c2", Side.BUY, "10", "0.0019").venue_order_id == "P1"  # no order id was used


def test_market_order_with_a_price_is_an_invalid_price() -> None:
    m = Market()
    m.quote(0.00189, 0.0019)
    with pytest.raises(OrderRejected) as err:
        m.engine.place(OrderRequest(client_order_id="c1", symbol=SYM, side=Side.BUY, type=OrderType.MARKET,
                                    size=D("10"), price=D("0.002")))
    assert err.value.reason == "INVALID_PRICE"


# -- 5. determinism ----------------------------------------------------------------------------------------
def test_the_same_events_give_the_same_fills() -> None:
    def run() -> list[Fill]:
        m = Market(depth_step_bps=20.0, latency_ms=5, market_remainder="partial_then_next_events")
        for i in range(200):
            px = 0.002 + (i % 7 - 3) * 0.00001
            m.quote(px - 0.00001, px, 40 + i % 5, 25 + i % 3, at=i * 3)
            m.trade(px, 10 + i % 11, at=i * 3 + 1)
            if i % 20 == 0:
                m.place(f"b{i}", Side.BUY, "60")
                m.place(f"l{i}", Side.SELL, "30", "0.00201")
        return m.journal.fills

    first, second = run(), run()
    assert first == second and len(first) > 20

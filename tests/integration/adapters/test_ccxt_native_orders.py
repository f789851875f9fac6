"""Native conditional orders and order lists through the ccxt venue adapter, against the Binance simulator.

Stop / take-profit types (plain and trailing), icebergs, OCO and OTO lists go out through the
unchanged ccxt client over 127.0.0.1; what reaches the simulator is checked on the wire, and
what comes back (replies, queries, open orders, the user stream through ``updates()``) as our
``VenueOrder`` / ``Fill``. The market is static: prices move only when a test prints, so every
trigger is caused by exactly one print. BTCUSDT starts at a last price of 50,000.00.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest

from actors.model.orders import (
    ListKind,
    OrderListRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueOrder,
)
from actors.ports.capabilities import NativeOrders, NativeSupport
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE, OrderRejected, VenueUnavailable
from adapters.binance_sim import BinanceSimulator
from adapters.binance_sim.config import default_symbols
from adapters.binance_sim.faults import RestFault
from adapters.ccxt_venue import CcxtVenue, native_orders, normalize
from tests.integration.adapters.conftest import STATIC_CONFIG, SimFactory
from tests.integration.adapters.test_ccxt_venue import Collector, venue_config

SYM = "BTC/USDT"
SYM_ID = "BTCUSDT"
WAIT = 10.0
ORDER_PATH = "/api/v3/order"
OCO_PATH = "/api/v3/orderList/oco"
OTO_PATH = "/api/v3/orderList/oto"

VenueFactory = Callable[..., Any]


@pytest.fixture
async def static_sim(make_sim: SimFactory) -> BinanceSimulator:
    """Simulator whose market moves only on injected prints."""
    return await make_sim(STATIC_CONFIG)


@pytest.fixture
async def make_venue() -> AsyncIterator[VenueFactory]:
    """Started CcxtVenues against a simulator; closed at teardown (before the simulators)."""
    venues: list[CcxtVenue] = []

    async def factory(sim: BinanceSimulator, **overrides: Any) -> CcxtVenue:
        venue = CcxtVenue(venue_config(sim, **overrides), name="binance", symbols=[SYM], environ={})
        venues.append(venue)
        await venue.start()
        return venue

    yield factory
    for venue in reversed(venues):
        await venue.close()


@pytest.fixture
async def streamed(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> AsyncIterator[tuple[CcxtVenue, Collector]]:
    """A started venue whose ``updates()`` are collected, once the user stream is subscribed."""
    venue: CcxtVenue = await make_venue(static_sim)
    updates = Collector(venue)
    await static_sim.wait_for_user_subscription(timeout_s=WAIT)
    yield venue, updates
    await updates.close()


def order(
    coid: str,
    otype: OrderType,
    side: Side,
    *,
    size: str = "0.01",
    price: str | None = None,
    trigger: str | None = None,
    trailing_bps: int | None = None,
    display: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid, symbol=SYM, side=side, type=otype, size=Decimal(size),
        price=Decimal(price) if price is not None else None,
        trigger_price=Decimal(trigger) if trigger is not None else None,
        trailing_bps=trailing_bps,
        display_size=Decimal(display) if display is not None else None,
    )


def sent(sim: BinanceSimulator, path: str) -> dict[str, str]:
    """The parameters of the last POST to ``path`` (one value each)."""
    return {k: v[0] for k, v in parse_qs(sim.requests.find("POST", path)[-1].body).items()}


def posts(sim: BinanceSimulator, path: str) -> int:
    return len(sim.requests.find("POST", path))


def trade(sim: BinanceSimulator, price: str, side: str = "SELL", qty: str = "0.001") -> None:
    sim.inject_trade(SYM_ID, price, qty, side)


def filled_size(updates: Collector, coid: str) -> Decimal:
    return sum((f.size for f in updates.fills(coid)), Decimal(0))


async def wait_status(updates: Collector, coid: str, status: OrderStatus) -> None:
    await updates.wait_for(lambda: updates.last_status(coid) is status, WAIT)


# --------------------------------------------------------------------------- capability
async def test_venue_is_native_orders_with_binance_spot_support(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    assert isinstance(venue, NativeOrders)
    assert venue.native_support() == NativeSupport(
        order_types=frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT,
                               OrderType.TAKE_PROFIT_LIMIT}),
        trailing_bps=True, iceberg=True, lists=frozenset({ListKind.OCO, ListKind.OTO}),
    )
    other = CcxtVenue(dataclasses.replace(venue_config(static_sim), exchange_id="kraken"), environ={})
    assert other.native_support() == NativeSupport()


# --------------------------------------------------------------------------- conditional types
CONDITIONAL_CASES = [
    # our type, side, limit price, trigger, Binance type, a print just short of the trigger
    (OrderType.STOP_MARKET, Side.SELL, None, "49000", "STOP_LOSS", "49000.01"),
    (OrderType.STOP_LIMIT, Side.SELL, "48900", "49000", "STOP_LOSS_LIMIT", "49000.01"),
    (OrderType.STOP_MARKET, Side.BUY, None, "51000", "STOP_LOSS", "50999.99"),
    (OrderType.TAKE_PROFIT, Side.SELL, None, "51000", "TAKE_PROFIT", "50999.99"),
    (OrderType.TAKE_PROFIT_LIMIT, Side.BUY, "49100", "49000", "TAKE_PROFIT_LIMIT", "49000.01"),
]


@pytest.mark.parametrize(("otype", "side", "price", "trigger", "wire_type", "short"), CONDITIONAL_CASES)
async def test_conditional_type_rests_accepted_then_triggers_and_fills_through_updates(
    static_sim: BinanceSimulator,
    streamed: tuple[CcxtVenue, Collector],
    otype: OrderType,
    side: Side,
    price: str | None,
    trigger: str,
    wire_type: str,
    short: str,
) -> None:
    sim, (venue, updates) = static_sim, streamed
    coid = f"c-{wire_type.lower()}-{side.value}"
    placed = await venue.submit(order(coid, otype, side, price=price, trigger=trigger))

    wire = sent(sim, ORDER_PATH)
    assert (wire["type"], Decimal(wire["stopPrice"]), wire["newClientOrderId"]) == (wire_type, Decimal(trigger), coid)
    assert ("price" in wire) == (price is not None) and "trailingDelta" not in wire
    assert wire.get("timeInForce") == ("GTC" if price is not None else None)
    assert (placed.type, placed.status, placed.size, placed.price) == (
        otype, OrderStatus.ACCEPTED, Decimal("0.01"), Decimal(price) if price else None)

    trade(sim, short)
    resting = await venue.query(coid, SYM)
    assert resting is not None and (resting.type, resting.status, resting.filled) == (otype, OrderStatus.ACCEPTED, 0)
    assert [o.client_order_id for o in await venue.open_orders(SYM)] == [coid]

    trade(sim, trigger)
    await updates.wait_for(
        lambda: updates.last_status(coid) is OrderStatus.FILLED and filled_size(updates, coid) == Decimal("0.01"),
        WAIT,
    )
    assert all(o.type is otype for o in updates.orders(coid))
    done = await venue.query(coid, SYM)
    assert done is not None and (done.type, done.status, done.filled) == (otype, OrderStatus.FILLED, Decimal("0.01"))
    assert await venue.open_orders(SYM) == []


async def test_triggered_stop_limit_resting_on_book_is_triggered(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    # A sell stop at 49,000 whose limit (50,500) is above the book's best ask: once triggered, it rests.
    await venue.submit(order("trg-1", OrderType.STOP_LIMIT, Side.SELL, price="50500", trigger="49000"))
    trade(sim, "49000")
    await wait_status(updates, "trg-1", OrderStatus.TRIGGERED)
    assert [o.status for o in updates.orders("trg-1")] == [OrderStatus.TRIGGERED]  # ACCEPTED came with the reply
    queried = await venue.query("trg-1", SYM)
    assert queried is not None and (queried.status, queried.filled) == (OrderStatus.TRIGGERED, 0)
    [listed] = await venue.open_orders(SYM)
    assert (listed.client_order_id, listed.type, listed.status) == (
        "trg-1", OrderType.STOP_LIMIT, OrderStatus.TRIGGERED)
    canceled = await venue.cancel("trg-1", SYM)
    assert (canceled.type, canceled.status) == (OrderType.STOP_LIMIT, OrderStatus.CANCELED)


# --------------------------------------------------------------------------- trailing stops
async def test_trailing_stop_follows_new_high_and_triggers_on_retrace(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    placed = await venue.submit(order("trail-1", OrderType.STOP_MARKET, Side.SELL, trailing_bps=100))
    wire = sent(sim, ORDER_PATH)
    assert (wire["type"], wire["trailingDelta"]) == ("STOP_LOSS", "100") and "stopPrice" not in wire
    assert (placed.type, placed.status) == (OrderType.STOP_MARKET, OrderStatus.ACCEPTED)
    trade(sim, "50500", "BUY")  # new high: the stop moves to 50,500 * 0.99 = 49,995
    trade(sim, "49995.01")
    still = await venue.query("trail-1", SYM)
    assert still is not None and still.status is OrderStatus.ACCEPTED
    trade(sim, "49995")
    await updates.wait_for(lambda: updates.last_status("trail-1") is OrderStatus.FILLED
                           and filled_size(updates, "trail-1") == Decimal("0.01"), WAIT)


async def test_trailing_take_profit_with_activation_price_sends_stop_price(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    await venue.submit(order("trail-2", OrderType.TAKE_PROFIT, Side.SELL, trigger="51000", trailing_bps=250))
    wire = sent(sim, ORDER_PATH)
    assert (wire["type"], wire["trailingDelta"], Decimal(wire["stopPrice"])) == ("TAKE_PROFIT", "250", 51000)
    trade(sim, "48000")  # before activation a fall does nothing
    trade(sim, "51000", "BUY")  # activation
    trade(sim, "52000", "BUY")  # new high: triggers at 52,000 * 0.975 = 50,700
    trade(sim, "50700.01")
    still = await venue.query("trail-2", SYM)
    assert still is not None and still.status is OrderStatus.ACCEPTED
    trade(sim, "50700")
    await wait_status(updates, "trail-2", OrderStatus.FILLED)


# --------------------------------------------------------------------------- icebergs
async def test_iceberg_limit_rests_with_display_quantity(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    placed = await venue.submit(order("ice-1", OrderType.LIMIT, Side.SELL, size="0.05", price="51000", display="0.01"))
    wire = sent(sim, ORDER_PATH)
    assert (wire["type"], wire["icebergQty"], wire["timeInForce"]) == ("LIMIT", "0.01", "GTC")
    assert (placed.type, placed.status, placed.size) == (OrderType.LIMIT, OrderStatus.ACCEPTED, Decimal("0.05"))
    book = await venue.exchange.fetch_order_book(SYM, 100)
    assert [qty for p, qty, *_ in book["asks"] if p == 51_000] == [0.01]
    trade(sim, "51000", "BUY", "0.02")
    await updates.wait_for(lambda: updates.last_status("ice-1") is OrderStatus.PARTIALLY_FILLED
                           and filled_size(updates, "ice-1") == Decimal("0.01"), WAIT)


# --------------------------------------------------------------------------- OCO
def oco(list_id: str, *legs: OrderRequest) -> OrderListRequest:
    return OrderListRequest(list_client_id=list_id, kind=ListKind.OCO, orders=legs)


def sell_oco_legs(prefix: str) -> tuple[OrderRequest, OrderRequest]:
    """(above, below): a take-profit limit at 51,000, a stop-limit at 49,000 / 48,900."""
    return (
        order(f"{prefix}-tp", OrderType.LIMIT, Side.SELL, price="51000"),
        order(f"{prefix}-sl", OrderType.STOP_LIMIT, Side.SELL, price="48900", trigger="49000"),
    )


async def test_oco_places_both_legs_and_venue_expires_sibling_when_one_fills(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    above, below = sell_oco_legs("oco1")
    legs = await venue.submit_list(oco("oco1", above, below))

    assert sent(sim, OCO_PATH) == {
        "symbol": SYM_ID, "side": "SELL", "quantity": "0.01", "listClientOrderId": "oco1",
        "newOrderRespType": "FULL",
        "aboveType": "LIMIT_MAKER", "aboveClientOrderId": "oco1-tp", "abovePrice": "51000",
        "belowType": "STOP_LOSS_LIMIT", "belowClientOrderId": "oco1-sl", "belowPrice": "48900",
        "belowStopPrice": "49000", "belowTimeInForce": "GTC",
        "timestamp": sent(sim, OCO_PATH)["timestamp"], "recvWindow": sent(sim, OCO_PATH)["recvWindow"],
        "signature": sent(sim, OCO_PATH)["signature"],
    }
    assert [(v.client_order_id, v.type, v.status, v.size) for v in legs] == [
        ("oco1-tp", OrderType.LIMIT, OrderStatus.ACCEPTED, Decimal("0.01")),
        ("oco1-sl", OrderType.STOP_LIMIT, OrderStatus.ACCEPTED, Decimal("0.01")),
    ]
    assert sorted(o.client_order_id for o in await venue.open_orders(SYM)) == ["oco1-sl", "oco1-tp"]
    leg = await venue.query("oco1-sl", SYM)
    assert leg is not None and (leg.type, leg.status, leg.venue_order_id) == (
        OrderType.STOP_LIMIT, OrderStatus.ACCEPTED, legs[1].venue_order_id)

    trade(sim, "51000", "BUY", "1")
    await wait_status(updates, "oco1-tp", OrderStatus.FILLED)
    await wait_status(updates, "oco1-sl", OrderStatus.EXPIRED)
    assert filled_size(updates, "oco1-tp") == Decimal("0.01") and updates.fills("oco1-sl") == []
    expired = await venue.query("oco1-sl", SYM)
    assert expired is not None and expired.status is OrderStatus.EXPIRED
    assert await venue.open_orders(SYM) == []


async def test_oco_stop_leg_triggering_expires_take_profit_and_legs_return_in_request_order(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    above, below = sell_oco_legs("oco2")
    stop_market = msgspec.structs.replace(below, type=OrderType.STOP_MARKET, price=None)
    legs = await venue.submit_list(oco("oco2", stop_market, above))  # below first: placed by price
    wire = sent(sim, OCO_PATH)
    assert (wire["aboveType"], wire["belowType"], wire["belowStopPrice"]) == ("LIMIT_MAKER", "STOP_LOSS", "49000")
    assert "belowPrice" not in wire and "belowTimeInForce" not in wire
    assert [v.client_order_id for v in legs] == ["oco2-sl", "oco2-tp"]
    assert [v.type for v in legs] == [OrderType.STOP_MARKET, OrderType.LIMIT]

    trade(sim, "49000")
    await wait_status(updates, "oco2-sl", OrderStatus.FILLED)
    await wait_status(updates, "oco2-tp", OrderStatus.EXPIRED)
    assert filled_size(updates, "oco2-sl") == Decimal("0.01")


async def test_buy_oco_with_trailing_stop_leg(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    legs = await venue.submit_list(oco(
        "oco3",
        order("oco3-sl", OrderType.STOP_MARKET, Side.BUY, trigger="51000", trailing_bps=100),
        order("oco3-tp", OrderType.TAKE_PROFIT_LIMIT, Side.BUY, price="49100", trigger="49000"),
    ))
    wire = sent(static_sim, OCO_PATH)
    assert (wire["side"], wire["aboveType"], wire["aboveStopPrice"], wire["aboveTrailingDelta"]) == (
        "BUY", "STOP_LOSS", "51000", "100")
    assert (wire["belowType"], wire["belowPrice"], wire["belowTimeInForce"]) == ("TAKE_PROFIT_LIMIT", "49100", "GTC")
    assert [v.status for v in legs] == [OrderStatus.ACCEPTED, OrderStatus.ACCEPTED]


# --------------------------------------------------------------------------- OTO
async def test_oto_pending_order_is_placed_once_working_order_fills(
    static_sim: BinanceSimulator, streamed: tuple[CcxtVenue, Collector]
) -> None:
    sim, (venue, updates) = static_sim, streamed
    working = order("oto1-w", OrderType.LIMIT, Side.BUY, price="49000")
    pending = order("oto1-p", OrderType.LIMIT, Side.SELL, price="52000")
    legs = await venue.submit_list(
        OrderListRequest(list_client_id="oto1", kind=ListKind.OTO, orders=(working, pending)))
    wire = sent(sim, OTO_PATH)
    assert {k: v for k, v in wire.items() if k.startswith(("working", "pending", "list"))} == {
        "listClientOrderId": "oto1",
        "workingType": "LIMIT", "workingSide": "BUY", "workingClientOrderId": "oto1-w", "workingPrice": "49000",
        "workingQuantity": "0.01", "workingTimeInForce": "GTC",
        "pendingType": "LIMIT", "pendingSide": "SELL", "pendingClientOrderId": "oto1-p", "pendingPrice": "52000",
        "pendingQuantity": "0.01", "pendingTimeInForce": "GTC",
    }
    # Binance reports the pending order PENDING_NEW: placed, known by the venue, not yet working.
    assert [(v.client_order_id, v.status) for v in legs] == [
        ("oto1-w", OrderStatus.ACCEPTED), ("oto1-p", OrderStatus.ACCEPTED)]
    book = await venue.exchange.fetch_order_book(SYM, 100)
    assert [p for p, *_ in book["asks"] if p == 52_000] == []

    trade(sim, "48990", "SELL", "1")
    await wait_status(updates, "oto1-w", OrderStatus.FILLED)
    book = await venue.exchange.fetch_order_book(SYM, 100)
    assert [qty for p, qty, *_ in book["asks"] if p == 52_000] == [0.01]
    released = await venue.query("oto1-p", SYM)
    assert released is not None and released.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in await venue.open_orders(SYM)] == ["oto1-p"]

    trade(sim, "52000", "BUY", "1")
    await wait_status(updates, "oto1-p", OrderStatus.FILLED)
    assert filled_size(updates, "oto1-p") == Decimal("0.01")


async def test_oto_with_stop_pending_order(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    too_long = "bracket-" + "x" * 40  # beyond Binance's 36 characters: ccxt names the list
    legs = await venue.submit_list(OrderListRequest(list_client_id=too_long, kind=ListKind.OTO, orders=(
        order("oto2-w", OrderType.LIMIT, Side.BUY, price="49000"),
        order("oto2-p", OrderType.STOP_MARKET, Side.SELL, trigger="48000"),
    )))
    wire = sent(static_sim, OTO_PATH)
    assert (wire["pendingType"], wire["pendingStopPrice"]) == ("STOP_LOSS", "48000")
    assert wire["listClientOrderId"] != too_long
    assert "pendingPrice" not in wire and "pendingTimeInForce" not in wire
    assert [v.type for v in legs] == [OrderType.LIMIT, OrderType.STOP_MARKET]


# --------------------------------------------------------------------------- refusals
async def test_type_the_symbol_does_not_list_is_unsupported_and_unsent(
    make_sim: SimFactory, make_venue: VenueFactory
) -> None:
    plain = ("LIMIT", "LIMIT_MAKER", "MARKET")
    symbols = tuple(dataclasses.replace(s, order_types=plain) if s.symbol == SYM_ID else s for s in default_symbols())
    sim = await make_sim(STATIC_CONFIG, symbols=symbols)
    venue: CcxtVenue = await make_venue(sim)
    for request in (
        order("u-1", OrderType.STOP_MARKET, Side.SELL, trigger="49000"),
        order("u-2", OrderType.TAKE_PROFIT_LIMIT, Side.SELL, price="51000", trigger="51000"),
        order("u-3", OrderType.STOP_MARKET, Side.SELL, trailing_bps=100),
    ):
        with pytest.raises(OrderRejected) as info:
            await venue.submit(request)
        assert info.value.reason == UNSUPPORTED_ORDER_TYPE
    with pytest.raises(OrderRejected) as info:
        await venue.submit_list(oco("u-oco", *sell_oco_legs("u-oco")))
    assert info.value.reason == UNSUPPORTED_ORDER_TYPE
    assert posts(sim, ORDER_PATH) == 0 and posts(sim, OCO_PATH) == 0
    # plain orders still go
    await venue.submit(order("u-ok", OrderType.LIMIT, Side.BUY, price="40000"))


@pytest.mark.parametrize(
    ("path", "code", "msg"),
    [
        (ORDER_PATH, -2010, "Stop loss orders are not supported for this symbol."),
        (ORDER_PATH, -1013, "Stop loss limit orders are not supported for this symbol."),
        (ORDER_PATH, -1116, "Invalid orderType."),
    ],
)
async def test_venue_refusal_of_order_type_is_unsupported(
    static_sim: BinanceSimulator, make_venue: VenueFactory, path: str, code: int, msg: str
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.add_rest_fault(
        RestFault(kind="error", status=400, code=code, msg=msg, path=path, method="POST", exact_path=True))
    with pytest.raises(OrderRejected) as info:
        await venue.submit(order("vr-1", OrderType.STOP_LIMIT, Side.SELL, price="48900", trigger="49000"))
    assert info.value.reason == UNSUPPORTED_ORDER_TYPE and msg in str(info.value)
    assert await venue.query("vr-1", SYM) is None


@pytest.mark.parametrize(
    ("code", "msg"),
    [(-1013, "OCO orders are not supported for this symbol."), (-1158, "Order type not supported in OCO."),
     (-1020, "This operation is not supported.")],
)
async def test_venue_refusal_of_list_is_unsupported(
    static_sim: BinanceSimulator, make_venue: VenueFactory, code: int, msg: str
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.fail_rest(400, code=code, msg=msg, path=OCO_PATH, method="POST")
    with pytest.raises(OrderRejected) as info:
        await venue.submit_list(oco("vr-oco", *sell_oco_legs("vr-oco")))
    assert info.value.reason == UNSUPPORTED_ORDER_TYPE


async def test_other_refusals_keep_their_reasons(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    cases = [
        (order("r-1", OrderType.STOP_MARKET, Side.SELL, size="100", trigger="49000"), "INSUFFICIENT_FUNDS"),
        (order("r-2", OrderType.STOP_MARKET, Side.SELL, trigger="50100"), "WOULD_TAKE"),  # would trigger at once
        (order("r-3", OrderType.STOP_MARKET, Side.SELL, trailing_bps=5000), "BAD_REQUEST"),  # TRAILING_DELTA filter
        (order("r-4", OrderType.LIMIT, Side.SELL, size="0.05", price="51000", display="0.001"), "BAD_REQUEST"),
    ]
    for request, reason in cases:
        with pytest.raises(OrderRejected) as info:
            await venue.submit(request)
        assert info.value.reason == reason, (request.client_order_id, info.value)
    # An OCO whose legs do not bracket the market: refused by the venue's price rule.
    with pytest.raises(OrderRejected) as info:
        await venue.submit_list(oco(
            "r-oco", order("r-oco-tp", OrderType.LIMIT, Side.SELL, price="49900"),
            order("r-oco-sl", OrderType.STOP_MARKET, Side.SELL, trigger="49000")))
    assert info.value.reason == "INVALID_ORDER"
    assert await venue.open_orders(SYM) == []


async def test_malformed_requests_are_refused_unsent(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    cases = [
        (order("m-1", OrderType.STOP_MARKET, Side.SELL, trigger="49000.001"), "PRECISION"),
        (order("m-2", OrderType.STOP_LIMIT, Side.SELL, trigger="49000"), "INVALID_PRICE"),
        (order("m-3", OrderType.STOP_MARKET, Side.SELL, price="48000", trigger="49000"), "INVALID_PRICE"),
        (order("m-4", OrderType.STOP_MARKET, Side.SELL), "INVALID_ORDER"),
        (order("m-5", OrderType.MARKET, Side.SELL, trigger="49000"), "INVALID_ORDER"),
        (order("m-6", OrderType.LIMIT, Side.SELL, price="51000", trailing_bps=100), "INVALID_ORDER"),
        (order("m-7", OrderType.LIMIT, Side.SELL, price="51000", display="0.01"), "INVALID_ORDER"),
        (order("m-8", OrderType.LIMIT, Side.SELL, size="0.05", price="51000", display="0.012345"), "PRECISION"),
        (order("m-9", OrderType.MARKET, Side.SELL, display="0.001"), "INVALID_ORDER"),
    ]
    for request, reason in cases:
        with pytest.raises(OrderRejected) as info:
            await venue.submit(request)
        assert info.value.reason == reason, (request.client_order_id, info.value)
    above, below = sell_oco_legs("m-oco")
    bad_lists = [
        (oco("m-oco", above, msgspec.structs.replace(below, size=Decimal("0.02"))), "INVALID_ORDER_LIST"),
        (oco("m-oco", above, msgspec.structs.replace(below, client_order_id="m-oco-tp")), "INVALID_ORDER_LIST"),
        (oco("m-oco", above), "INVALID_ORDER_LIST"),
        (oco("m-oco", above, order("m-oco-mk", OrderType.MARKET, Side.SELL)), UNSUPPORTED_ORDER_TYPE),
        (OrderListRequest(list_client_id="m-oto", kind=ListKind.OTO, orders=(below, above)), UNSUPPORTED_ORDER_TYPE),
        (OrderListRequest(list_client_id="m-br", kind=ListKind.BRACKET, orders=(above, below)), UNSUPPORTED_ORDER_TYPE),
    ]
    for request_list, reason in bad_lists:
        with pytest.raises(OrderRejected) as info:
            await venue.submit_list(request_list)
        assert info.value.reason == reason, (request_list, info.value)
    assert posts(static_sim, ORDER_PATH) == 0 and posts(static_sim, OCO_PATH) == 0 and posts(static_sim, OTO_PATH) == 0


async def test_lost_list_reply_is_unknown_outcome_resolved_by_leg_queries(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.add_rest_fault(RestFault(kind="lose_response", lose_mode="abort", path=OCO_PATH, method="POST"))
    above, below = sell_oco_legs("lost")
    with pytest.raises(VenueUnavailable):
        await venue.submit_list(oco("lost", above, below))
    assert posts(static_sim, OCO_PATH) == 1  # never resent
    for leg in (above, below):
        found = await venue.query(leg.client_order_id, SYM)
        assert found is not None and (found.type, found.status) == (leg.type, OrderStatus.ACCEPTED)


async def test_list_timeout_is_venue_unavailable(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.fail_rest(504, path=OTO_PATH, method="POST")
    with pytest.raises(VenueUnavailable) as info:
        await venue.submit_list(OrderListRequest(list_client_id="to", kind=ListKind.OTO, orders=(
            order("to-w", OrderType.LIMIT, Side.BUY, price="49000"),
            order("to-p", OrderType.LIMIT, Side.SELL, price="52000"))))
    assert info.value.reason == "TIMEOUT"


# --------------------------------------------------------------------------- mapping functions
@pytest.mark.parametrize(
    ("message", "unsupported"),
    [
        ('binance {"code":-2010,"msg":"Stop loss orders are not supported for this symbol."}', True),
        ('binance {"code":-2010,"msg":"Take profit limit orders are not supported for this symbol."}', True),
        ('binance {"code":-2010,"msg":"Iceberg orders are not supported for this symbol."}', True),
        ('binance {"code":-2010,"msg":"Trailing stop orders are not supported for this symbol."}', True),
        ('binance {"code":-2010,"msg":"OTO orders are not supported for this symbol."}', True),
        ('binance {"code":-1158,"msg":"Order type not supported in OCO."}', True),
        ('binance {"code":-1116,"msg":"Invalid orderType."}', True),
        ("binance This order type is not possible", True),
        ("binance triggerPrice parameter is not allowed for BTC/USDT market orders", True),
        ("binance STOP_LOSS is not a valid order type for the BTC/USDT market", True),
        ("binance Account has insufficient balance for requested action.", False),
        ('binance {"code":-2010,"msg":"Stop price would trigger immediately."}', False),
        ('binance {"code":-2010,"msg":"Unsupported order combination"}', False),
        ('binance {"code":-1013,"msg":"Filter failure: TRAILING_DELTA"}', False),
    ],
)
def test_unsupported_refusal_recognised_by_message(message: str, unsupported: bool) -> None:
    assert native_orders.is_unsupported_refusal(message) is unsupported


def test_native_fields_refused_where_venue_has_no_native_support() -> None:
    for request in (
        order("n-1", OrderType.STOP_MARKET, Side.SELL, trigger="49000"),
        order("n-2", OrderType.LIMIT, Side.SELL, size="0.05", price="51000", display="0.01"),
    ):
        with pytest.raises(OrderRejected) as info:
            native_orders.check_fields(request, NativeSupport())
        assert info.value.reason == UNSUPPORTED_ORDER_TYPE


def _report(otype: str, status: str, *, working: bool, filled: str = "0") -> dict[str, Any]:
    """A ccxt-parsed executionReport (spot: ccxt's own type says only market or limit)."""
    return {
        "id": "7", "clientOrderId": "x-1", "symbol": SYM, "side": "sell", "amount": 0.01, "filled": float(filled),
        "type": "limit" if "LIMIT" in otype else "market", "status": "open", "price": 0.0,
        "info": {"o": otype, "X": status, "w": working, "W": 1 if working else -1},
    }


@pytest.mark.parametrize(
    ("otype", "status", "working", "ours", "our_status"),
    [
        ("STOP_LOSS", "NEW", False, OrderType.STOP_MARKET, OrderStatus.ACCEPTED),
        ("STOP_LOSS", "NEW", True, OrderType.STOP_MARKET, OrderStatus.TRIGGERED),
        ("STOP_LOSS_LIMIT", "NEW", True, OrderType.STOP_LIMIT, OrderStatus.TRIGGERED),
        ("TAKE_PROFIT", "EXPIRED", False, OrderType.TAKE_PROFIT, OrderStatus.EXPIRED),
        ("TAKE_PROFIT_LIMIT", "CANCELED", False, OrderType.TAKE_PROFIT_LIMIT, OrderStatus.CANCELED),
        ("LIMIT_MAKER", "NEW", True, OrderType.LIMIT, OrderStatus.ACCEPTED),
        ("LIMIT", "NEW", True, OrderType.LIMIT, OrderStatus.ACCEPTED),
        ("LIMIT", "PENDING_NEW", False, OrderType.LIMIT, OrderStatus.ACCEPTED),
    ],
)
def test_stream_reports_normalise_to_our_types_and_statuses(
    otype: str, status: str, working: bool, ours: OrderType, our_status: OrderStatus
) -> None:
    vo: VenueOrder = normalize.venue_order("binance", _report(otype, status, working=working), {SYM})
    assert (vo.type, vo.status) == (ours, our_status)

"""Protective and linked orders on the Binance simulator, through the unchanged ccxt client.

Stop / take-profit types (plain and trailing), icebergs, and order lists (OCO, OTO, OTOCO).
The market is static: prices move only when a test injects a trade, so every trigger is
caused by exactly one print. BTCUSDT starts at a last price of 50,000.00.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import ccxt
import pytest

from adapters.binance_sim import BinanceSimulator
from tests.integration.adapters.conftest import Venue
from tests.integration.adapters.user_stream_probe import list_done, user_stream

SYM = "BTC/USDT"
SYM_ID = "BTCUSDT"


def _trade(sim: BinanceSimulator, price: str, side: str = "SELL", qty: str = "0.001") -> None:
    sim.inject_trade(SYM_ID, price, qty, side)


def _last_sent(sim: BinanceSimulator, path: str) -> dict[str, list[str]]:
    return parse_qs(sim.requests.find("POST", path)[-1].body)


async def _status(ex: Any, order_id: str | int) -> str:
    order = await ex.fetch_order(str(order_id), SYM)
    status: str = order["info"]["status"]
    return status


def _oco_params(**overrides: str) -> dict[str, str]:
    """A SELL OCO: LIMIT_MAKER take-profit at 51,000 above, STOP_LOSS_LIMIT 49,000/48,900 below."""
    params = {
        "symbol": SYM_ID,
        "side": "SELL",
        "quantity": "0.01",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "51000",
        "belowType": "STOP_LOSS_LIMIT",
        "belowStopPrice": "49000",
        "belowPrice": "48900",
        "belowTimeInForce": "GTC",
    }
    params.update(overrides)
    return params


# --------------------------------------------------------------------------- stop and take-profit orders
STOP_CASES = [
    # ccxt type, side, limit price, params, Binance type, a price just short of the stop, the stop
    ("market", "sell", None, {"stopLossPrice": 49_000}, "STOP_LOSS", "49000.01", "49000"),
    ("limit", "sell", 48_900, {"stopLossPrice": 49_000}, "STOP_LOSS_LIMIT", "49000.01", "49000"),
    ("market", "buy", None, {"stopLossPrice": 51_000}, "STOP_LOSS", "50999.99", "51000"),
    ("market", "sell", None, {"takeProfitPrice": 51_000}, "TAKE_PROFIT", "50999.99", "51000"),
    ("limit", "buy", 49_100, {"takeProfitPrice": 49_000}, "TAKE_PROFIT_LIMIT", "49000.01", "49000"),
]


@pytest.mark.parametrize(("otype", "side", "price", "params", "wire_type", "short", "stop"), STOP_CASES)
async def test_stop_types_trigger_on_trade_reaching_stop_and_not_before(
    static_venue: Venue,
    otype: str,
    side: str,
    price: float | None,
    params: dict[str, float],
    wire_type: str,
    short: str,
    stop: str,
) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, otype, side, 0.01, price, params)
    sent = _last_sent(sim, "/api/v3/order")
    assert sent["type"] == [wire_type] and Decimal(sent["stopPrice"][0]) == Decimal(stop)
    assert order["status"] == "open" and order["info"]["workingTime"] == -1
    _trade(sim, short)
    waiting = await ex.fetch_order(order["id"], SYM)
    assert waiting["status"] == "open" and waiting["filled"] == 0 and waiting["info"]["isWorking"] is False
    _trade(sim, stop)
    done = await ex.fetch_order(order["id"], SYM)
    assert done["status"] == "closed" and done["filled"] == 0.01
    assert done["info"]["isWorking"] is True and done["info"]["type"] == wire_type


async def test_triggered_stop_reports_new_working_then_trade(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    async with user_stream(sim) as stream:
        order = await ex.create_order(SYM, "market", "sell", 0.01, None, {"stopLossPrice": 49_000})
        _trade(sim, "48999")
        events = await stream.until(lambda evs: any(e.get("X") == "FILLED" for e in evs))
    reports = [(e["x"], e["X"], e["w"]) for e in events if e["i"] == int(order["id"])]
    assert reports == [("NEW", "NEW", False), ("NEW", "NEW", True), ("TRADE", "FILLED", False)]
    assert all(e["o"] == "STOP_LOSS" and e["P"] == "49000.00000000" for e in events)


async def test_stop_price_that_would_trigger_immediately_is_refused(static_venue: Venue) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable, match="Stop price would trigger immediately"):
        await static_venue.ex.create_order(SYM, "market", "sell", 0.01, None, {"stopLossPrice": 50_100})
    with pytest.raises(ccxt.OrderImmediatelyFillable, match="Stop price would trigger immediately"):
        await static_venue.ex.create_order(SYM, "limit", "buy", 0.01, 49_000, {"takeProfitPrice": 50_100})
    assert static_venue.sim.balances()["BTC"] == (Decimal(1), Decimal(0))


async def test_buy_stop_market_reserves_at_stop_price_and_pays_real_cost(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    await ex.create_order(SYM, "market", "buy", 0.01, None, {"stopLossPrice": 51_000})
    assert sim.balances()["USDT"] == (Decimal("99490"), Decimal("510"))
    _trade(sim, "51000", "BUY")  # executes against the book, whose best ask is 50,000.01
    assert sim.balances()["USDT"] == (Decimal("100000") - Decimal("500.0001"), Decimal(0))


# --------------------------------------------------------------------------- trailing stops
async def test_trailing_stop_follows_new_highs_and_triggers_on_retrace(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "STOP_LOSS", "sell", 0.01, None, {"trailingDelta": 100})
    sent = _last_sent(sim, "/api/v3/order")
    assert sent["type"] == ["STOP_LOSS"] and sent["trailingDelta"] == ["100"] and "stopPrice" not in sent
    assert order["info"]["trailingDelta"] == 100 and order["info"]["trailingTime"] > 0  # tracking from placement
    _trade(sim, "50500", "BUY")  # new high: the stop moves to 50,500 * 0.99 = 49,995
    _trade(sim, "49995.01")
    assert await _status(ex, order["id"]) == "NEW"
    _trade(sim, "49995")
    assert await _status(ex, order["id"]) == "FILLED"


async def test_trailing_stop_with_stop_price_tracks_only_after_activation(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(
        SYM, "TAKE_PROFIT", "sell", 0.01, None, {"trailingDelta": 200, "trailingTriggerPrice": 51_000}
    )
    sent = _last_sent(sim, "/api/v3/order")
    assert sent["trailingDelta"] == ["200"] and Decimal(sent["stopPrice"][0]) == 51_000
    _trade(sim, "48000")  # a 4% fall before activation does nothing
    assert (await ex.fetch_order(order["id"], SYM))["info"]["trailingTime"] == -1
    _trade(sim, "51000", "BUY")  # activation: the reference is 51,000
    _trade(sim, "51500", "BUY")  # new high: triggers at 51,500 * 0.98 = 50,470
    _trade(sim, "50470.01")
    tracking = await ex.fetch_order(order["id"], SYM)
    assert tracking["info"]["status"] == "NEW" and tracking["info"]["trailingTime"] > 0
    _trade(sim, "50470")
    assert await _status(ex, order["id"]) == "FILLED"


async def test_buy_trailing_stop_limit_triggers_on_rise_from_lowest_price(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "STOP_LOSS_LIMIT", "buy", 0.01, 49_600, {"trailingDelta": 100})
    _trade(sim, "49000")  # new low: triggers at 49,000 * 1.01 = 49,490
    _trade(sim, "49489.99", "BUY")
    assert await _status(ex, order["id"]) == "NEW"
    _trade(sim, "49490", "BUY")
    assert await _status(ex, order["id"]) == "FILLED"


async def test_trailing_delta_outside_filter_or_on_limit_order_is_refused(static_venue: Venue) -> None:
    ex = static_venue.ex
    with pytest.raises(ccxt.ExchangeError, match="TRAILING_DELTA"):
        await ex.create_order(SYM, "STOP_LOSS", "sell", 0.01, None, {"trailingDelta": 5000})
    with pytest.raises(ccxt.BadRequest, match=r"-1106.*trailingDelta"):
        await ex.private_post_order(
            {"symbol": SYM_ID, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
             "price": "51000", "trailingDelta": "100"}
        )
    with pytest.raises(ccxt.BadRequest, match=r"-1102.*'stopPrice' or 'trailingDelta'"):
        await ex.private_post_order({"symbol": SYM_ID, "side": "SELL", "type": "STOP_LOSS", "quantity": "0.01"})


# --------------------------------------------------------------------------- icebergs
def _level(book: dict[str, Any], side: str, price: float) -> float | None:
    return next((qty for p, qty, *_ in book[side] if p == price), None)


async def test_iceberg_shows_only_display_quantity_and_refills(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "limit", "sell", 0.05, 51_000, {"icebergAmount": 0.01})
    assert _last_sent(sim, "/api/v3/order")["icebergQty"] == ["0.01"]
    assert order["info"]["icebergQty"] == "0.01000000"
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 51_000) == 0.01
    assert sim.balances()["BTC"] == (Decimal("0.95"), Decimal("0.05"))  # the whole order is reserved
    _trade(sim, "51000", "BUY", "0.004")
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 51_000) == 0.006
    _trade(sim, "51000", "BUY", "0.02")  # a print reaches one slice: 0.006 fills, the next 0.01 shows
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 51_000) == 0.01
    after = await ex.fetch_order(order["id"], SYM)
    assert after["filled"] == 0.01 and after["remaining"] == 0.04
    for _ in range(4):
        _trade(sim, "51000", "BUY", "1")
    assert (await ex.fetch_order(order["id"], SYM))["status"] == "closed"
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 51_000) is None


async def test_iceberg_limit_maker_and_refusals(static_venue: Venue) -> None:
    ex = static_venue.ex
    maker = await ex.create_order(SYM, "limit", "buy", 0.03, 49_000, {"postOnly": True, "icebergAmount": 0.01})
    assert maker["info"]["type"] == "LIMIT_MAKER"
    assert _level(await ex.fetch_order_book(SYM, 100), "bids", 49_000) == 0.01
    with pytest.raises(ccxt.InvalidOrder, match="Unsupported order combination"):
        await ex.create_order(SYM, "limit", "buy", 0.03, 49_000, {"icebergAmount": 0.01, "timeInForce": "IOC"})
    with pytest.raises(ccxt.ExchangeError, match="ICEBERG_PARTS"):
        await ex.create_order(SYM, "limit", "buy", 0.05, 49_000, {"icebergAmount": 0.001})
    with pytest.raises(ccxt.InvalidOrder, match="IcebergQty exceeds QTY"):
        await ex.create_order(SYM, "limit", "buy", 0.01, 49_000, {"icebergAmount": 0.01})


# --------------------------------------------------------------------------- OCO
async def test_oco_limit_leg_fill_expires_stop_leg_with_reports_and_list_status(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    async with user_stream(sim) as stream:
        placed = await ex.private_post_orderlist_oco(_oco_params(listClientOrderId="oco-1"))
        list_id = placed["orderListId"]
        assert (placed["contingencyType"], placed["listStatusType"], placed["listOrderStatus"]) == (
            "OCO", "EXEC_STARTED", "EXECUTING")
        assert placed["listClientOrderId"] == "oco-1" and len(placed["orders"]) == 2
        stop, limit = placed["orderReports"]
        assert (stop["type"], stop["workingTime"], stop["stopPrice"]) == ("STOP_LOSS_LIMIT", -1, "49000.00000000")
        assert (limit["type"], limit["status"]) == ("LIMIT_MAKER", "NEW")
        assert {stop["orderListId"], limit["orderListId"]} == {list_id}
        assert sim.balances()["BTC"] == (Decimal("0.99"), Decimal("0.01"))  # one reservation for the pair
        _trade(sim, "51000", "BUY", "1")
        events = await stream.until(list_done(list_id))
    flow = [
        (e["e"], e["i"], e["x"], e["X"], None) if e["e"] == "executionReport" else (e["e"], None, None, None, e["L"])
        for e in events
    ]
    stop_id, limit_id = stop["orderId"], limit["orderId"]
    assert flow == [
        ("executionReport", stop_id, "NEW", "NEW", None),
        ("executionReport", limit_id, "NEW", "NEW", None),
        ("listStatus", None, None, None, "EXECUTING"),
        ("executionReport", limit_id, "TRADE", "FILLED", None),
        ("executionReport", stop_id, "EXPIRED", "EXPIRED", None),
        ("listStatus", None, None, None, "ALL_DONE"),
    ]
    assert all(e["g"] == list_id for e in events)
    assert [o["i"] for o in events[-1]["O"]] == [stop_id, limit_id] and events[-1]["C"] == "oco-1"
    assert sim.balances()["BTC"] == (Decimal("0.99"), Decimal(0))
    queried = await ex.private_get_orderlist({"orderListId": list_id})
    assert (queried["listStatusType"], queried["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")


async def test_oco_stop_leg_trigger_expires_limit_leg_and_takes_reservation(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    placed = await ex.private_post_orderlist_oco(_oco_params())
    stop, limit = placed["orderReports"]
    _trade(sim, "49000")
    assert await _status(ex, stop["orderId"]) == "FILLED"
    assert await _status(ex, limit["orderId"]) == "EXPIRED"
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 51_000) is None
    free, locked = sim.balances()["BTC"]
    assert (free, locked) == (Decimal("0.99"), Decimal(0))
    assert await ex.private_get_openorderlist() == []


async def test_buy_oco_with_take_profit_leg(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    placed = await ex.private_post_orderlist_oco(
        {"symbol": SYM_ID, "side": "BUY", "quantity": "0.01", "aboveType": "STOP_LOSS", "aboveStopPrice": "51000",
         "belowType": "TAKE_PROFIT_LIMIT", "belowStopPrice": "49000", "belowPrice": "49100",
         "belowTimeInForce": "GTC"}
    )
    stop, take = placed["orderReports"]
    assert (stop["type"], take["type"]) == ("STOP_LOSS", "TAKE_PROFIT_LIMIT")
    assert sim.balances()["USDT"][1] == Decimal("510")  # the larger leg's need: 0.01 at 51,000
    _trade(sim, "49050")  # the book follows the price down, so the 49,100 limit can buy once triggered
    _trade(sim, "49000")
    assert await _status(ex, take["orderId"]) == "FILLED"
    assert await _status(ex, stop["orderId"]) == "EXPIRED"
    assert sim.balances()["USDT"][1] == 0


async def test_legacy_oco_endpoint_places_the_same_list(static_venue: Venue) -> None:
    ex = static_venue.ex
    placed = await ex.private_post_order_oco(
        {"symbol": SYM_ID, "side": "SELL", "quantity": "0.01", "price": "51000", "stopPrice": "49000",
         "stopLimitPrice": "48900", "stopLimitTimeInForce": "GTC"}
    )
    assert placed["contingencyType"] == "OCO"
    assert [r["type"] for r in placed["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"aboveType": "LIMIT", "aboveTimeInForce": "GTC"}, "-1158", "Order type not supported in OCO"),
        ({"belowType": "LIMIT_MAKER", "belowPrice": "49000"}, "-1168", "At least one OCO order must be contingent"),
        ({"aboveType": "STOP_LOSS", "aboveStopPrice": "51000"}, "-1197", "stop loss order in a sell OCO must be below"),
        ({"abovePrice": "49900"}, "-2010", "relationship of the prices for the orders is not correct"),
        ({"belowStopPrice": "50100", "belowPrice": "50000"}, "-2010", "relationship of the prices"),
        ({"quantity": "0.000001"}, "-1013", "LOT_SIZE"),
    ],
)
async def test_oco_rule_violations_are_refused(
    static_venue: Venue, overrides: dict[str, str], code: str, message: str
) -> None:
    with pytest.raises(ccxt.ExchangeError, match=f"{code}.*{message}"):
        await static_venue.ex.private_post_orderlist_oco(_oco_params(**overrides))
    assert static_venue.sim.balances()["BTC"] == (Decimal(1), Decimal(0))
    assert await static_venue.ex.private_get_openorderlist() == []


# --------------------------------------------------------------------------- OTO / OTOCO
async def test_oto_working_fill_releases_pending_order(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    placed = await ex.private_post_orderlist_oto(
        {"symbol": SYM_ID, "workingType": "LIMIT", "workingSide": "BUY", "workingPrice": "49000",
         "workingQuantity": "0.01", "workingTimeInForce": "GTC", "pendingType": "LIMIT", "pendingSide": "SELL",
         "pendingPrice": "52000", "pendingQuantity": "0.01", "pendingTimeInForce": "GTC"}
    )
    working, pending = placed["orderReports"]
    assert placed["contingencyType"] == "OTO"
    assert (working["status"], pending["status"], pending["workingTime"]) == ("NEW", "PENDING_NEW", -1)
    assert sim.balances()["BTC"] == (Decimal(1), Decimal(0))  # the pending leg reserves nothing yet
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 52_000) is None
    _trade(sim, "48990", "SELL", "1")
    assert await _status(ex, working["orderId"]) == "FILLED"
    assert await _status(ex, pending["orderId"]) == "NEW"
    assert _level(await ex.fetch_order_book(SYM, 100), "asks", 52_000) == 0.01
    assert len(await ex.private_get_openorderlist()) == 1
    _trade(sim, "52000", "BUY", "1")
    listed = await ex.private_get_orderlist({"orderListId": placed["orderListId"]})
    assert listed["listOrderStatus"] == "ALL_DONE"


async def test_otoco_releases_oco_pair_whose_stop_then_expires_the_limit(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    async with user_stream(sim) as stream:
        placed = await ex.private_post_orderlist_otoco(
            {"symbol": SYM_ID, "workingType": "LIMIT", "workingSide": "BUY", "workingPrice": "49000",
             "workingQuantity": "0.01", "workingTimeInForce": "GTC", "pendingSide": "SELL",
             "pendingQuantity": "0.01", "pendingAboveType": "LIMIT_MAKER", "pendingAbovePrice": "52000",
             "pendingBelowType": "STOP_LOSS", "pendingBelowStopPrice": "48000"}
        )
        _working, stop, limit = placed["orderReports"]
        assert [r["status"] for r in placed["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
        assert (stop["type"], limit["type"]) == ("STOP_LOSS", "LIMIT_MAKER")
        _trade(sim, "48990", "SELL", "1")
        assert await _status(ex, stop["orderId"]) == "NEW" and await _status(ex, limit["orderId"]) == "NEW"
        assert sim.balances()["BTC"][1] == Decimal("0.01")  # one reservation for the released pair
        _trade(sim, "47990")
        events = await stream.until(list_done(placed["orderListId"]))
    assert await _status(ex, stop["orderId"]) == "FILLED"
    assert await _status(ex, limit["orderId"]) == "EXPIRED"
    pending_status = [e["X"] for e in events if e["e"] == "executionReport" and e["i"] == stop["orderId"]]
    assert pending_status[:2] == ["PENDING_NEW", "NEW"] and pending_status[-1] == "FILLED"
    assert [e["L"] for e in events if e["e"] == "listStatus"] == ["EXECUTING", "ALL_DONE"]


async def test_oto_canceling_working_order_expires_pending(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    placed = await ex.private_post_orderlist_oto(
        {"symbol": SYM_ID, "workingType": "LIMIT_MAKER", "workingSide": "BUY", "workingPrice": "49000",
         "workingQuantity": "0.01", "pendingType": "STOP_LOSS", "pendingSide": "SELL",
         "pendingStopPrice": "48000", "pendingQuantity": "0.01"}
    )
    working, pending = placed["orderReports"]
    await ex.cancel_order(str(working["orderId"]), SYM)
    assert await _status(ex, pending["orderId"]) == "EXPIRED"
    assert (await ex.private_get_orderlist({"orderListId": placed["orderListId"]}))["listOrderStatus"] == "ALL_DONE"
    assert sim.balances()["USDT"] == (Decimal(100_000), Decimal(0))


# --------------------------------------------------------------------------- cancel and query lists
async def test_cancel_order_list_cancels_every_leg(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    placed = await ex.private_post_orderlist_oco(_oco_params(listClientOrderId="oco-c"))
    assert [lst["orderListId"] for lst in await ex.private_get_openorderlist()] == [placed["orderListId"]]
    canceled = await ex.private_delete_orderlist({"symbol": SYM_ID, "listClientOrderId": "oco-c"})
    assert (canceled["listStatusType"], canceled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    reports = canceled["orderReports"]
    assert [r["status"] for r in reports] == ["CANCELED", "CANCELED"]
    assert [r["origClientOrderId"] for r in reports] == [o["clientOrderId"] for o in placed["orders"]]
    assert sim.balances()["BTC"] == (Decimal(1), Decimal(0))
    assert await ex.private_get_openorderlist() == []
    with pytest.raises(ccxt.ExchangeError, match=r"-2011.*Unknown order list sent"):
        await ex.private_delete_orderlist({"symbol": SYM_ID, "orderListId": placed["orderListId"]})
    with pytest.raises(ccxt.ExchangeError, match=r"-2013.*Order list does not exist"):
        await ex.private_get_orderlist({"orderListId": 999})
    everything = await ex.private_get_allorderlist()
    assert [lst["listClientOrderId"] for lst in everything] == ["oco-c"]


async def test_canceling_one_leg_ends_the_whole_list(static_venue: Venue) -> None:
    ex = static_venue.ex
    placed = await ex.private_post_orderlist_oco(_oco_params())
    stop, limit = placed["orderReports"]
    await ex.cancel_order(str(limit["orderId"]), SYM)
    assert await _status(ex, stop["orderId"]) == "EXPIRED"
    assert await ex.private_get_openorderlist() == []


async def test_cancel_all_open_orders_includes_lists(static_venue: Venue) -> None:
    ex = static_venue.ex
    single = await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    placed = await ex.private_post_orderlist_oco(_oco_params())
    answer = await ex.private_delete_openorders({"symbol": SYM_ID})
    assert answer[0]["orderId"] == int(single["id"]) and answer[0]["status"] == "CANCELED"
    assert answer[1]["orderListId"] == placed["orderListId"] and len(answer[1]["orderReports"]) == 2
    assert await ex.fetch_open_orders(SYM) == []

"""REST endpoints of the Binance simulator, exercised through the unchanged ccxt client."""

from __future__ import annotations

import itertools
from decimal import Decimal
from urllib.parse import parse_qs

import ccxt
import pytest

from adapters.binance_sim import BinanceSimulator
from tests.integration.adapters.conftest import ClientFactory, Venue

SYM = "BTC/USDT"


async def test_load_markets_sends_only_exchange_info_and_time(
    sim: BinanceSimulator, make_client: ClientFactory
) -> None:
    ex = await make_client(sim)
    assert set(ex.markets) == {"BTC/USDT", "ETH/USDT", "XRP/ETH"}
    market = ex.market(SYM)
    assert market["spot"] and not market["contract"]
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5.0
    sent = [(r.method, r.path) for r in sim.requests if r.method != "WS"]
    assert sent == [("GET", "/api/v3/exchangeInfo"), ("GET", "/api/v3/time")]


async def test_fetch_time_returns_server_time(venue: Venue) -> None:
    server_ms = await venue.ex.fetch_time()
    assert abs(server_ms - venue.sim.clock.now_ms()) < 5_000


async def test_fetch_ticker_returns_last_bid_ask(venue: Venue) -> None:
    ticker = await venue.ex.fetch_ticker(SYM)
    assert ticker["symbol"] == SYM
    assert ticker["bid"] < ticker["ask"]
    assert ticker["last"] > 0 and ticker["baseVolume"] > 0
    assert ticker["timestamp"] is not None


async def test_fetch_tickers_with_and_without_symbols_returns_arrays(venue: Venue) -> None:
    some = await venue.ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(some) == {"BTC/USDT", "ETH/USDT"}
    everything = await venue.ex.fetch_tickers()
    assert set(everything) == {"BTC/USDT", "ETH/USDT", "XRP/ETH"}


async def test_fetch_order_book_returns_sorted_uncrossed_levels(venue: Venue) -> None:
    book = await venue.ex.fetch_order_book(SYM, 5)
    bids, asks = book["bids"], book["asks"]
    assert len(bids) == 5 and len(asks) == 5
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0][0] < asks[0][0]
    assert isinstance(book["nonce"], int)


async def test_fetch_ohlcv_returns_history_and_open_candle(venue: Venue) -> None:
    candles = await venue.ex.fetch_ohlcv(SYM, "1m", limit=50)
    assert len(candles) == 50
    times = [c[0] for c in candles]
    assert times == sorted(times) and all(b - a == 60_000 for a, b in itertools.pairwise(times))
    for _, o, h, low, c, v in candles:
        assert low <= min(o, c) <= max(o, c) <= h and v >= 0
    since = times[10]
    later = await venue.ex.fetch_ohlcv(SYM, "5m", since=since, limit=3)
    assert len(later) == 3 and later[0][0] >= since and later[0][0] % 300_000 == 0


async def test_fetch_balance_returns_free_used_total(venue: Venue) -> None:
    balance = await venue.ex.fetch_balance()
    assert balance["BTC"] == {"free": 1.0, "used": 0.0, "total": 1.0}
    assert balance["USDT"]["free"] == 100_000.0


async def test_create_limit_order_with_client_id_rests_and_locks_funds(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "bot-1"})
    assert order["status"] == "open" and order["clientOrderId"] == "bot-1"
    assert order["filled"] == 0 and order["remaining"] == 0.01 and order["trades"] == []
    assert sim.balances()["USDT"] == (Decimal("99600"), Decimal("400"))
    post = sim.requests.find("POST", "/api/v3/order")[-1]
    body = parse_qs(post.body)
    assert body["newClientOrderId"] == ["bot-1"] and body["newOrderRespType"] == ["FULL"]
    assert post.query == "" and "signature" in body


async def test_create_market_order_fills_as_taker_with_fee(static_venue: Venue) -> None:
    order = await static_venue.ex.create_order(SYM, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["average"] == 50_000.01
    assert order["fee"] == {"currency": "BTC", "cost": 0.00001}
    assert static_venue.sim.balances()["BTC"][0] == Decimal("1.00999")


async def test_create_market_buy_with_cost_sends_quote_order_qty(static_venue: Venue) -> None:
    order = await static_venue.ex.create_market_buy_order_with_cost(SYM, 100)
    sent = parse_qs(static_venue.sim.requests.find("POST", "/api/v3/order")[-1].body)
    assert "quoteOrderQty" in sent and "quantity" not in sent
    assert order["status"] == "closed"
    assert order["filled"] == 0.00199 and order["cost"] <= 100


async def test_create_limit_order_crossing_book_takes_liquidity(static_venue: Venue) -> None:
    order = await static_venue.ex.create_order(SYM, "limit", "buy", 0.01, 50_100)
    assert order["status"] == "closed" and order["average"] == 50_000.01
    # Bought below the limit: the unused part of the reservation is released.
    assert static_venue.sim.balances()["USDT"] == (Decimal("100000") - Decimal("500.0001"), Decimal(0))


async def test_fetch_order_by_id_and_by_client_id_finds_same_order(static_venue: Venue) -> None:
    ex = static_venue.ex
    created = await ex.create_order(SYM, "limit", "sell", 0.01, 60_000, {"clientOrderId": "bot-2"})
    by_id = await ex.fetch_order(created["id"], SYM)
    by_client = await ex.fetch_order(None, SYM, {"clientOrderId": "bot-2"})
    assert by_id["id"] == by_client["id"] == created["id"]
    assert by_client["status"] == "open" and by_client["price"] == 60_000
    sent = static_venue.sim.requests.find("GET", "/api/v3/order")[-1]
    assert "origClientOrderId=bot-2" in sent.query


async def test_cancel_order_returns_cancel_id_and_orig_client_id(static_venue: Venue) -> None:
    ex = static_venue.ex
    created = await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "bot-3"})
    canceled = await ex.cancel_order(created["id"], SYM)
    assert canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == "bot-3"
    assert canceled["clientOrderId"] != "bot-3"
    assert static_venue.sim.balances()["USDT"] == (Decimal("100000"), Decimal(0))
    still = await ex.fetch_order(None, SYM, {"clientOrderId": "bot-3"})
    assert still["status"] == "canceled"


async def test_fetch_open_orders_with_and_without_symbol(static_venue: Venue, make_client: ClientFactory) -> None:
    ex = static_venue.ex
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    await ex.create_order("ETH/USDT", "limit", "buy", 0.1, 2_000)
    assert [o["symbol"] for o in await ex.fetch_open_orders(SYM)] == [SYM]
    everything = await make_client(static_venue.sim, options={"fetchOpenOrders": {"warnWithoutSymbol": False}})
    assert {o["symbol"] for o in await everything.fetch_open_orders()} == {SYM, "ETH/USDT"}


async def test_fetch_my_trades_reports_side_and_liquidity(static_venue: Venue) -> None:
    ex = static_venue.ex
    await ex.create_order(SYM, "market", "buy", 0.01)
    await ex.create_order(SYM, "market", "sell", 0.005)
    trades = await ex.fetch_my_trades(SYM)
    assert [(t["side"], t["takerOrMaker"], t["amount"]) for t in trades] == [
        ("buy", "taker", 0.01),
        ("sell", "taker", 0.005),
    ]
    assert trades[1]["fee"]["currency"] == "USDT"


async def test_order_lifecycle_resting_partial_fill_then_full_fill(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000, {"clientOrderId": "life-1"})
    assert order["status"] == "open"
    sim.inject_trade("BTCUSDT", "48990", "0.004", "SELL")
    partial = await ex.fetch_order(order["id"], SYM)
    assert partial["status"] == "open" and partial["filled"] == 0.004 and partial["remaining"] == 0.006
    assert partial["info"]["status"] == "PARTIALLY_FILLED"
    sim.inject_trade("BTCUSDT", "48990", "0.05", "SELL")
    done = await ex.fetch_order(order["id"], SYM)
    assert done["status"] == "closed" and done["filled"] == 0.01 and done["average"] == 49_000
    trades = await ex.fetch_my_trades(SYM)
    assert [(t["amount"], t["price"], t["takerOrMaker"]) for t in trades] == [
        (0.004, 49_000, "maker"),
        (0.006, 49_000, "maker"),
    ]
    assert sim.balances()["USDT"] == (Decimal("99510"), Decimal(0))
    assert sim.balances()["BTC"] == (Decimal("1.00999"), Decimal(0))


async def test_resting_orders_fill_in_price_time_priority(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    first = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000)
    second = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000)
    better = await ex.create_order(SYM, "limit", "buy", 0.01, 49_500)
    sim.inject_trade("BTCUSDT", "48000", "0.015", "SELL")
    filled = {o["id"]: (await ex.fetch_order(o["id"], SYM))["filled"] for o in (first, second, better)}
    assert filled == {better["id"]: 0.01, first["id"]: 0.005, second["id"]: 0.0}


async def test_ioc_limit_order_expires_unfilled_remainder(static_venue: Venue) -> None:
    order = await static_venue.ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"timeInForce": "IOC"})
    assert order["status"] == "expired" and order["filled"] == 0


async def test_stop_loss_limit_order_triggers_on_print(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "limit", "sell", 0.01, 48_000, {"stopLossPrice": 49_000})
    assert order["info"]["type"] == "STOP_LOSS_LIMIT" and order["status"] == "open"
    sim.inject_trade("BTCUSDT", "48900", "0.001", "SELL")
    after = await ex.fetch_order(order["id"], SYM)
    assert after["status"] == "closed" and after["filled"] == 0.01


async def test_cancel_all_orders_and_fetch_orders(static_venue: Venue) -> None:
    ex = static_venue.ex
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    await ex.create_order(SYM, "limit", "buy", 0.01, 41_000)
    canceled = await ex.cancel_all_orders(SYM)
    assert len(canceled) == 2
    assert [o["status"] for o in await ex.fetch_orders(SYM)] == ["canceled", "canceled"]
    with pytest.raises(ccxt.OrderNotFound):
        await ex.cancel_all_orders(SYM)


async def test_client_order_id_with_reserved_characters_signature_valid(static_venue: Venue) -> None:
    ex = static_venue.ex
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "a/b:c.d-e_f"})
    found = await ex.fetch_order(None, SYM, {"clientOrderId": "a/b:c.d-e_f"})
    assert found["clientOrderId"] == "a/b:c.d-e_f"
    assert "a%2Fb%3Ac" in static_venue.sim.requests.find("GET", "/api/v3/order")[-1].query


async def test_insufficient_balance_raises_insufficient_funds(static_venue: Venue) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await static_venue.ex.create_order(SYM, "limit", "buy", 10, 40_000)


async def test_price_filter_failure_raises_invalid_order(static_venue: Venue) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await static_venue.ex.create_order(SYM, "limit", "sell", 0.01, 2_000_000)


async def test_min_notional_failure_raises_bad_request(static_venue: Venue) -> None:
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await static_venue.ex.create_order(SYM, "limit", "buy", 0.00001, 40_000)


async def test_limit_maker_crossing_raises_order_immediately_fillable(static_venue: Venue) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await static_venue.ex.create_order(SYM, "limit", "buy", 0.01, 50_100, {"postOnly": True})


async def test_duplicate_client_order_id_while_open_raises_invalid_order(static_venue: Venue) -> None:
    ex = static_venue.ex
    first = await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "dup-1"})
    await ex.cancel_order(first["id"], SYM)
    again = await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "dup-1"})
    assert again["id"] != first["id"]


async def test_unknown_order_raises_order_not_found(static_venue: Venue) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await static_venue.ex.fetch_order("999999", SYM)
    with pytest.raises(ccxt.OrderNotFound):
        await static_venue.ex.cancel_order("999999", SYM)


async def test_unknown_symbol_raises_bad_symbol(venue: Venue) -> None:
    with pytest.raises(ccxt.BadSymbol):
        await venue.ex.public_get_ticker_24hr({"symbol": "FOOBAR"})


async def test_missing_mandatory_param_raises_bad_request(venue: Venue) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1102"):
        await venue.ex.private_get_order({"symbol": "BTCUSDT"})


async def test_unsupported_endpoint_raises_bad_request(venue: Venue) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1020"):
        await venue.ex.sapi_get_capital_config_getall()
    assert venue.sim.requests.find("GET", "/sapi/v1/capital/config/getall")


async def test_bad_signature_raises_authentication_error(sim: BinanceSimulator, make_client: ClientFactory) -> None:
    ex = await make_client(sim, secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        await ex.fetch_balance()


async def test_unknown_api_key_raises_authentication_error(sim: BinanceSimulator, make_client: ClientFactory) -> None:
    ex = await make_client(sim, api_key="someone-else")
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await ex.fetch_balance()


async def test_timestamp_outside_recv_window_raises_invalid_nonce(venue: Venue) -> None:
    venue.sim.faults.skew_clock(20_000)
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        await venue.ex.fetch_balance()
    venue.sim.faults.skew_clock(-5_000)
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        await venue.ex.fetch_balance()
    await venue.ex.load_time_difference()
    assert (await venue.ex.fetch_balance())["BTC"]["free"] == 1.0


async def test_every_response_carries_used_weight_header(venue: Venue) -> None:
    await venue.ex.fetch_ticker(SYM)
    assert int(venue.ex.last_response_headers["X-MBX-USED-WEIGHT-1M"]) > 0

"""Market streams and the WS-API user-data stream, through ccxt.pro and through raw websockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import orjson
import pytest

from adapters.binance_sim import BinanceSimulator, MarketSourceConfig, SimulatorConfig, sign
from adapters.binance_sim.tape import load_tape
from tests.integration.adapters.conftest import Venue

SYM = "BTC/USDT"
WAIT = 5.0
TAPE = Path(__file__).resolve().parents[3] / "data" / "market" / "binance_XRP-ETH_trades_2019-10.csv.gz"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session for raw protocol checks."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _recv_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await asyncio.wait_for(ws.receive(), WAIT)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def _recv_until(ws: aiohttp.ClientWebSocketResponse, pred: Any) -> Any:
    while True:
        frame = await _recv_json(ws)
        if pred(frame):
            return frame


async def _subscribe_user_stream(sim: BinanceSimulator, ws: aiohttp.ClientWebSocketResponse) -> None:
    ts = sim.clock.now_ms()
    signature = sign("simsecret", f"apiKey=simkey&recvWindow=10000&timestamp={ts}")
    params = {"apiKey": "simkey", "recvWindow": 10000, "timestamp": ts, "signature": signature}
    await ws.send_str(
        orjson.dumps({"id": "1", "method": "userDataStream.subscribe.signature", "params": params}).decode()
    )
    reply = await _recv_json(ws)
    assert reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}


# --------------------------------------------------------------------------- ccxt.pro watchers
async def test_watch_trades_returns_public_prints(venue: Venue) -> None:
    trades = await asyncio.wait_for(venue.ex.watch_trades(SYM), WAIT)
    assert trades and trades[-1]["symbol"] == SYM
    assert trades[-1]["side"] in ("buy", "sell") and trades[-1]["amount"] > 0
    more = await asyncio.wait_for(venue.ex.watch_trades(SYM), WAIT)
    assert int(more[-1]["id"]) > int(trades[-1]["id"])


async def test_watch_ticker_mini_and_full_ticker_streams(venue: Venue) -> None:
    mini = await asyncio.wait_for(venue.ex.watch_ticker(SYM), WAIT)
    assert mini["last"] > 0 and mini["bid"] is None
    full = await asyncio.wait_for(venue.ex.watch_ticker("ETH/USDT", {"name": "ticker"}), WAIT)
    assert full["bid"] < full["ask"] and full["timestamp"] is not None


async def test_watch_bids_asks_returns_top_of_book(venue: Venue) -> None:
    quotes = await asyncio.wait_for(venue.ex.watch_bids_asks([SYM]), WAIT)
    quote = quotes[SYM]
    assert quote["bid"] < quote["ask"] and quote["bidVolume"] > 0


async def test_watch_order_book_syncs_and_keeps_updating(venue: Venue) -> None:
    book = await asyncio.wait_for(venue.ex.watch_order_book(SYM), WAIT)
    first_nonce = book["nonce"]
    assert book["bids"][0][0] < book["asks"][0][0]
    book = await asyncio.wait_for(venue.ex.watch_order_book(SYM), WAIT)
    assert book["nonce"] > first_nonce
    assert book["bids"][0][0] < book["asks"][0][0]
    snapshot = [r for r in venue.sim.requests if r.path == "/api/v3/depth"]
    assert len(snapshot) == 1 and "limit=1000" in snapshot[0].query


async def test_watch_ohlcv_returns_open_candle(venue: Venue) -> None:
    candles = await asyncio.wait_for(venue.ex.watch_ohlcv(SYM, "1m"), WAIT)
    ts, o, h, low, c, v = candles[-1]
    assert ts % 60_000 == 0 and low <= min(o, c) <= max(o, c) <= h and v >= 0
    seconds = await asyncio.wait_for(venue.ex.watch_ohlcv(SYM, "1s"), WAIT)
    assert seconds[-1][0] % 1_000 == 0


async def test_watch_orders_follows_partial_then_full_fill(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    order = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000, {"clientOrderId": "wo-1"})
    first = await asyncio.wait_for(watcher, WAIT)
    assert (first[-1]["id"], first[-1]["status"], first[-1]["filled"]) == (order["id"], "open", 0)
    sim.inject_trade("BTCUSDT", "48990", "0.004", "SELL")
    partial = await asyncio.wait_for(ex.watch_orders(SYM), WAIT)
    assert (partial[-1]["status"], partial[-1]["filled"]) == ("open", 0.004)
    sim.inject_trade("BTCUSDT", "48990", "1", "SELL")
    done = await asyncio.wait_for(ex.watch_orders(SYM), WAIT)
    assert (done[-1]["status"], done[-1]["filled"], done[-1]["clientOrderId"]) == ("closed", 0.01, "wo-1")


async def test_watch_orders_cancel_keeps_original_client_id(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    order = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000, {"clientOrderId": "wo-2"})
    watcher = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await ex.cancel_order(order["id"], SYM)
    events = await asyncio.wait_for(watcher, WAIT)
    assert (events[-1]["status"], events[-1]["clientOrderId"]) == ("canceled", "wo-2")


async def test_watch_my_trades_reports_each_fill_once(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_my_trades(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await ex.create_order(SYM, "limit", "sell", 0.01, 51_000)
    sim.inject_trade("BTCUSDT", "51010", "0.003", "BUY")
    first = await asyncio.wait_for(watcher, WAIT)
    assert [(t["amount"], t["price"], t["takerOrMaker"], t["side"]) for t in first] == [
        (0.003, 51_000, "maker", "sell")
    ]
    assert first[0]["fee"]["currency"] == "USDT"
    sim.inject_trade("BTCUSDT", "51010", "1", "BUY")
    second = await asyncio.wait_for(ex.watch_my_trades(SYM), WAIT)
    assert [t["amount"] for t in second] == [0.007]


async def test_watch_balance_reports_position_after_fill(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_balance())
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await ex.create_order(SYM, "market", "buy", 0.01)
    balance = await asyncio.wait_for(watcher, WAIT)
    assert balance["BTC"]["free"] == 1.00999 and balance["BTC"]["used"] == 0
    assert balance["USDT"]["total"] == pytest.approx(100_000 - 500.0001)


async def test_deposit_balance_update_applies_delta_in_watch_balance(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_balance())
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.deposit("USDT", "250")
    balance = await asyncio.wait_for(watcher, WAIT)
    # watch_balance keeps no REST snapshot: the balanceUpdate delta lands on an empty cache
    # (the outboundAccountPosition right behind it is checked on the raw socket below).
    assert (balance["USDT"]["free"], balance["USDT"]["used"]) == (250.0, None)


async def test_user_stream_bad_signature_raises_key_error_with_auth_context(
    sim: BinanceSimulator, make_client: Any
) -> None:
    ex = await make_client(sim, secret="wrong")
    with pytest.raises(KeyError) as info:
        await asyncio.wait_for(ex.watch_orders(SYM), WAIT)
    assert isinstance(info.value.__context__, ccxt.AuthenticationError)


async def test_replayed_tape_drives_public_trades(make_sim: Any, make_client: Any) -> None:
    market = MarketSourceConfig(kind="replay", replay_path=str(TAPE), replay_symbol="XRPETH", replay_speed=1000.0)
    sim = await make_sim(market=market)
    sim.pause_market()  # hold the tape at its first trade until the client listens
    ex = await make_client(sim)
    pending = asyncio.ensure_future(ex.watch_trades("XRP/ETH"))
    await sim.wait_for_stream("xrpeth@trade", timeout_s=WAIT)
    sim.resume_market()
    seen: list[dict[str, Any]] = await asyncio.wait_for(pending, WAIT)
    while len(seen) < 4:
        seen = await asyncio.wait_for(ex.watch_trades("XRP/ETH"), WAIT)
    tape = load_tape(TAPE)[:4]
    assert [t["price"] for t in seen[:4]] == [float(t.price) for t in tape]
    assert [t["amount"] for t in seen[:4]] == [float(t.amount) for t in tape]
    assert [t["side"] for t in seen[:4]] == [t.side.lower() for t in tape]
    assert int(seen[0]["id"]) == tape[0].trade_id


async def test_synthetic_market_is_reproducible_from_seed() -> None:
    async def prints(seed: int) -> list[tuple[Decimal, Decimal]]:
        sim = BinanceSimulator(SimulatorConfig(market=MarketSourceConfig(seed=seed, trades_per_tick=5)))
        sim.driver.prepare()
        for _ in range(10):
            await sim.driver.step()
        return [(t.price, t.qty) for t in sim.exchange.symbols["BTCUSDT"].stats.recent]

    first, again, other = await prints(3), await prints(3), await prints(4)
    assert len(first) == 50 and first == again and first != other


# --------------------------------------------------------------------------- raw protocol checks
async def test_subscribe_acks_echo_id_and_repeated_subscribe_keeps_one_feed(
    sim: BinanceSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{sim.ws_url}/7") as ws:
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":41}')
        assert await _recv_json(ws) == {"result": None, "id": 41}
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":42}')
        await _recv_until(ws, lambda f: f.get("id") == 42)
        assert sim.market_streams.subscribers("btcusdt@trade") == 1
        ids = [(await _recv_until(ws, lambda f: f.get("e") == "trade"))["t"] for _ in range(5)]
        assert ids == sorted(set(ids))  # no trade delivered twice
        await ws.send_str('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":43}')
        await _recv_until(ws, lambda f: f.get("id") == 43)
        await ws.send_str('{"method":"SUBSCRIBE","params":["nosuch@trade"],"id":44}')
        error = await _recv_until(ws, lambda f: f.get("id") == 44)
        assert error["error"]["code"] == 2


async def test_depth_events_are_contiguous_and_consistent_with_snapshot(
    sim: BinanceSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{sim.ws_url}/0") as ws:
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}')
        assert await _recv_json(ws) == {"result": None, "id": 1}
        async with http.get(f"{sim.base_url}/api/v3/depth?symbol=BTCUSDT&limit=1000") as resp:
            snapshot = await resp.json()
        assert "T" not in snapshot and "E" not in snapshot
        book = {("b", p): q for p, q in snapshot["bids"]} | {("a", p): q for p, q in snapshot["asks"]}
        nonce = snapshot["lastUpdateId"]
        applied = 0
        prev_u: int | None = None
        while applied < 5:
            event = await _recv_until(ws, lambda f: f.get("e") == "depthUpdate")
            if prev_u is not None:
                assert event["U"] == prev_u + 1
            prev_u = event["u"]
            if event["u"] <= nonce:
                continue
            assert event["U"] - 1 <= nonce <= event["u"] - 1
            nonce = event["u"]
            for side in ("b", "a"):
                for p, q in event[side]:
                    if Decimal(q) == 0:
                        book.pop((side, p), None)
                    else:
                        book[(side, p)] = q
            applied += 1
        async with http.get(f"{sim.base_url}/api/v3/depth?symbol=BTCUSDT&limit=1000") as resp:
            later = await resp.json()
        assert later["lastUpdateId"] >= nonce
        bids = max(Decimal(p) for s, p in book if s == "b")
        asks = min(Decimal(p) for s, p in book if s == "a")
        assert bids < asks


async def test_execution_reports_satisfy_fill_invariants(static_venue: Venue, http: aiohttp.ClientSession) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    async with http.ws_connect(sim.ws_api_url) as ws:
        await _subscribe_user_stream(sim, ws)
        order = await ex.create_order(SYM, "limit", "buy", 0.01, 49_000)
        for qty in ("0.003", "0.003", "1"):
            sim.inject_trade("BTCUSDT", "48990", qty, "SELL")
        reports: list[dict[str, Any]] = []
        while not reports or reports[-1]["X"] != "FILLED":
            frame = await _recv_until(ws, lambda f: f.get("event", {}).get("e") == "executionReport")
            assert frame["subscriptionId"] == 0
            reports.append(frame["event"])
    assert [r["x"] for r in reports] == ["NEW", "TRADE", "TRADE", "TRADE"]
    assert all(r["i"] == int(order["id"]) for r in reports)
    cumulative = [Decimal(r["z"]) for r in reports]
    assert cumulative == sorted(cumulative)
    trades = [r for r in reports if r["x"] == "TRADE"]
    assert sum(Decimal(r["l"]) for r in trades) == Decimal(reports[-1]["z"]) == Decimal("0.01")
    assert sum(Decimal(r["Y"]) for r in trades) == Decimal(reports[-1]["Z"])
    assert len({r["t"] for r in trades}) == 3
    assert [Decimal(r["n"]) for r in trades] == [Decimal("0.000003"), Decimal("0.000003"), Decimal("0.000004")]
    assert all(r["N"] == "BTC" and r["m"] for r in trades)


async def test_deposit_emits_balance_update_then_account_position(
    static_sim: BinanceSimulator, http: aiohttp.ClientSession
) -> None:
    sim = static_sim
    async with http.ws_connect(sim.ws_api_url) as ws:
        await _subscribe_user_stream(sim, ws)
        sim.deposit("USDT", "250")
        first, second = (await _recv_json(ws))["event"], (await _recv_json(ws))["event"]
    assert (first["e"], first["a"], Decimal(first["d"])) == ("balanceUpdate", "USDT", Decimal(250))
    assert second["e"] == "outboundAccountPosition"
    assert second["B"] == [{"a": "USDT", "f": "100250.00000000", "l": "0.00000000"}]

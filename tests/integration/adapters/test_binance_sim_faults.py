"""Fault injection (``adapters.binance_sim.faults``): what the simulator does → what ccxt raises."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ccxt
import pytest

from adapters.binance_sim import BinanceSimulator, FaultConfig, FaultPlan
from tests.integration.adapters.conftest import STATIC_CONFIG, ClientFactory, SimFactory, Venue

SYM = "BTC/USDT"
WAIT = 5.0


def _client_for(ex: Any, stream_key: str) -> Any:
    """The ccxt websocket client whose subscriptions contain ``stream_key``."""
    for client in ex.clients.values():
        if stream_key in client.subscriptions:
            return client
    raise AssertionError(f"no client subscribed to {stream_key}")


# --------------------------------------------------------------------------- REST
async def test_rate_limit_429_raises_ddos_protection_with_headers(venue: Venue) -> None:
    venue.sim.faults.rate_limit(retry_after_s=7, used_weight=6123)
    with pytest.raises(ccxt.DDoSProtection):
        await venue.ex.fetch_ticker(SYM)
    headers = venue.ex.last_response_headers
    assert headers["Retry-After"] == "7" and headers["X-MBX-USED-WEIGHT-1M"] == "6123"
    assert (await venue.ex.fetch_ticker(SYM))["symbol"] == SYM


async def test_weight_limit_escalates_from_429_to_418_ban(make_sim: SimFactory, make_client: ClientFactory) -> None:
    sim = await make_sim(weight_limit_per_minute=10, ban_after_429s=2, ban_seconds=60)
    ex = await make_client(sim, load=False)
    statuses: list[str] = []
    for _ in range(8):
        try:
            await ex.public_get_ticker_24hr({"symbol": "BTCUSDT"})
            statuses.append("ok")
        except ccxt.DDoSProtection as exc:
            statuses.append("418" if "banned until" in str(exc) else "429")
    assert statuses == ["ok"] * 5 + ["429", "429", "418"]
    assert int(ex.last_response_headers["Retry-After"]) > 0
    with pytest.raises(ccxt.DDoSProtection, match="banned"):
        await ex.fetch_time()
    sim.faults.lift_ban()


async def test_injected_ban_418_raises_ddos_protection_until_lifted(venue: Venue) -> None:
    venue.sim.faults.ban(120)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
            await venue.ex.fetch_time()
    assert 115 <= int(venue.ex.last_response_headers["Retry-After"]) <= 120
    venue.sim.faults.lift_ban()
    assert await venue.ex.fetch_time() > 0


@pytest.mark.parametrize(
    ("status", "code", "expected", "network"),
    [
        (503, None, ccxt.ExchangeNotAvailable, True),
        (502, None, ccxt.ExchangeNotAvailable, True),
        (504, None, ccxt.RequestTimeout, True),
        (500, -1001, ccxt.OperationFailed, False),
        (400, -1007, ccxt.RequestTimeout, True),
        (400, 1, ccxt.OnMaintenance, True),
    ],
)
async def test_rest_server_error_raises_mapped_exception(
    venue: Venue, status: int, code: int | None, expected: type[Exception], network: bool
) -> None:
    msg = "System is under maintenance." if code == 1 else "Internal error; unable to process your request."
    venue.sim.faults.fail_rest(status, code=code, msg=msg, path="/api/v3/ticker")
    with pytest.raises(expected) as info:
        await venue.ex.fetch_ticker(SYM)
    assert isinstance(info.value, ccxt.NetworkError) is network


async def test_rest_error_rate_is_reproducible_from_seed() -> None:
    def draws(seed: int) -> list[bool]:
        plan = FaultPlan(FaultConfig(seed=seed, rest_error_rate=0.3))
        return [bool(plan.take_rest_faults("GET", "/api/v3/time")) for _ in range(50)]

    assert draws(5) == draws(5)
    assert 0 < sum(draws(5)) < 50


async def test_order_rate_limit_raises_ddos_protection(make_sim: SimFactory, make_client: ClientFactory) -> None:
    sim = await make_sim(STATIC_CONFIG, order_limit_per_10s=2)
    ex = await make_client(sim)
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    with pytest.raises(ccxt.DDoSProtection, match="-1015"):
        await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    assert ex.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "3"
    assert len(await ex.fetch_open_orders(SYM)) == 2


async def test_slow_response_raises_request_timeout(sim: BinanceSimulator, make_client: ClientFactory) -> None:
    ex = await make_client(sim, timeout_ms=300)
    sim.faults.delay_rest(1.0, path="/api/v3/depth")
    with pytest.raises(ccxt.RequestTimeout):
        await ex.fetch_order_book(SYM)


async def test_lost_order_response_raises_exchange_not_available_and_order_exists(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.faults.lose_order_responses()
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "lost-1"})
    # The venue applied the order and told the user stream about it ...
    events = await asyncio.wait_for(watcher, WAIT)
    assert (events[-1]["clientOrderId"], events[-1]["status"]) == ("lost-1", "open")
    # ... so the daemon finds it by client id, and a blind re-send is refused.
    found = await ex.fetch_order(None, SYM, {"clientOrderId": "lost-1"})
    assert found["status"] == "open" and found["amount"] == 0.01
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "lost-1"})
    assert len(await ex.fetch_open_orders(SYM)) == 1


async def test_lost_order_response_by_timeout_raises_request_timeout(
    static_sim: BinanceSimulator, make_client: ClientFactory
) -> None:
    ex = await make_client(static_sim, timeout_ms=300)
    static_sim.faults.lose_order_responses(mode="timeout", delay_s=2.0)
    with pytest.raises(ccxt.RequestTimeout):
        await ex.create_order(SYM, "market", "buy", 0.01, None, {"clientOrderId": "lost-2"})
    found = await ex.fetch_order(None, SYM, {"clientOrderId": "lost-2"})
    assert found["status"] == "closed" and found["filled"] == 0.01


async def test_listener_down_raises_exchange_not_available_then_recovers(venue: Venue) -> None:
    await venue.sim.suspend_listener()
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await venue.ex.fetch_time()
    await venue.sim.resume_listener()
    assert await venue.ex.fetch_time() > 0


async def test_request_log_keeps_raw_signed_query(venue: Venue) -> None:
    await venue.ex.fetch_balance()
    entry = venue.sim.requests.find("GET", "/api/v3/account")[-1]
    assert entry.query.startswith("timestamp=") and "&recvWindow=10000&signature=" in entry.query
    assert entry.headers["X-MBX-APIKEY"] == "simkey"


# --------------------------------------------------------------------------- market streams
@pytest.mark.parametrize(("code", "shown"), [(1001, "1001"), (1000, "1000"), (1011, "1011"), (None, "1006")])
async def test_market_socket_drop_raises_network_error_then_rewatch_recovers(
    venue: Venue, code: int | None, shown: str
) -> None:
    sim, ex = venue.sim, venue.ex
    await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    sim.pause_market()  # keep the next watch pending until the drop
    pending = asyncio.ensure_future(ex.watch_trades(SYM))
    assert await sim.drop_market_connections(code=code) == 1
    with pytest.raises(ccxt.NetworkError, match=shown):
        await asyncio.wait_for(pending, WAIT)
    sim.resume_market()
    trades = await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    assert trades
    await sim.wait_for_stream("btcusdt@trade", timeout_s=WAIT)
    assert sim.market_streams.subscribers("btcusdt@trade") == 1


async def test_handshake_rejected_raises_network_error(venue: Venue) -> None:
    venue.sim.faults.reject_ws_handshakes(status=429, retry_after_s=1, path_prefix="/stream")
    with pytest.raises(ccxt.NetworkError, match="429"):
        await asyncio.wait_for(venue.ex.watch_trades(SYM), WAIT)


async def test_silent_stall_hangs_watch_until_client_reset(venue: Venue) -> None:
    sim, ex = venue.sim, venue.ex
    await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    assert sim.stall_market_connections(stream_contains="@trade") == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ex.watch_trades(SYM), 0.3)
    await _client_for(ex, "trade::BTC/USDT").close()
    assert await asyncio.wait_for(ex.watch_trades(SYM), WAIT)


async def test_black_hole_raises_request_timeout_from_keepalive(
    sim: BinanceSimulator, make_client: ClientFactory
) -> None:
    ex = await make_client(sim, keep_alive_ms=300)
    await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    sim.stall_market_connections(blackhole=True)
    with pytest.raises(ccxt.RequestTimeout, match="ping-pong"):
        await asyncio.wait_for(ex.watch_trades(SYM), WAIT)


async def test_missing_depth_ack_hangs_watch_order_book(venue: Venue) -> None:
    venue.sim.faults.drop_subscribe_acks(stream_contains="@depth")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(venue.ex.watch_order_book(SYM), 0.5)
    assert not venue.sim.requests.find("GET", "/api/v3/depth")


async def test_subscribe_error_raises_exchange_error(venue: Venue) -> None:
    venue.sim.faults.fail_subscribes(stream_contains="@trade")
    with pytest.raises(ccxt.ExchangeError, match="invalid stream"):
        await asyncio.wait_for(venue.ex.watch_trades(SYM), WAIT)


async def test_depth_gap_raises_checksum_error_then_rewatch_resyncs(venue: Venue) -> None:
    sim, ex = venue.sim, venue.ex
    await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)
    # Resolve once more on a live delta, so the dropped event is one ccxt has not seen yet
    # (dropping a delta the snapshot already covered would not be a gap for the client).
    await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)
    sim.faults.gap_depth(symbol="BTCUSDT")
    with pytest.raises(ccxt.ChecksumError):
        for _ in range(20):
            await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)
    book = await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert len(sim.requests.find("GET", "/api/v3/depth")) == 2


async def test_stale_snapshot_raises_checksum_error(venue: Venue) -> None:
    venue.sim.faults.stale_depth_snapshot(lag=1000)
    with pytest.raises(ccxt.ChecksumError):
        for _ in range(20):
            await asyncio.wait_for(venue.ex.watch_order_book(SYM), WAIT)


async def test_duplicate_depth_events_are_ignored(venue: Venue) -> None:
    venue.sim.faults.duplicate_depth(count=None, symbol="BTCUSDT")
    nonces = []
    for _ in range(5):
        nonces.append((await asyncio.wait_for(venue.ex.watch_order_book(SYM), WAIT))["nonce"])
    assert nonces == sorted(nonces)


async def test_deltas_before_ack_after_reconnect_raise_checksum_error(venue: Venue) -> None:
    sim, ex = venue.sim, venue.ex
    await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)
    await sim.drop_market_connections(code=1001, stream_contains="@depth")
    # The stale book survives in ccxt; deltas that beat the ack are applied to it.
    sim.faults.deltas_before_ack()
    sim.faults.gap_depth(symbol="BTCUSDT")
    with pytest.raises(ccxt.ChecksumError):
        for _ in range(20):
            await asyncio.wait_for(ex.watch_order_book(SYM), WAIT)


# --------------------------------------------------------------------------- user data stream
async def test_user_socket_drop_raises_network_error_on_watch_orders(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    pending = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    assert await sim.drop_user_connections(code=None) == 1
    with pytest.raises(ccxt.NetworkError, match="1006"):
        await asyncio.wait_for(pending, WAIT)
    # Events during the gap are lost; REST reconciliation sees them.
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "gap-1"})
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SYM)] == ["gap-1"]
    watcher = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000, {"clientOrderId": "gap-2"})
    assert (await asyncio.wait_for(watcher, WAIT))[-1]["clientOrderId"] == "gap-2"


async def test_event_stream_terminated_hangs_watch_then_resubscribes(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    pending = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    assert sim.terminate_user_streams() == 1
    await ex.create_order(SYM, "limit", "buy", 0.01, 40_000)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pending), 0.3)
    pending.cancel()
    watcher = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await ex.create_order(SYM, "limit", "buy", 0.01, 41_000, {"clientOrderId": "after-term"})
    assert (await asyncio.wait_for(watcher, WAIT))[-1]["clientOrderId"] == "after-term"
    subscribes = [r for r in sim.requests.find("WS") if "userDataStream.subscribe" in r.body]
    assert len(subscribes) == 2 and len(sim.user_streams.connections) == 1


async def _settle(ex: Any, done: Any) -> None:
    """Let the ccxt websocket reader catch up: frames sent before a REST reply are read by the
    time a few REST round trips completed (a barrier through real I/O, not a timer)."""
    for _ in range(20):
        if done():
            return
        await ex.fetch_time()
    raise AssertionError("condition not reached")


async def test_duplicate_trade_report_deduplicated_but_order_fee_doubled(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    trades_watch = asyncio.ensure_future(ex.watch_my_trades(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.faults.duplicate_exec_reports()
    order = await ex.create_order(SYM, "market", "buy", 0.01)
    await asyncio.wait_for(trades_watch, WAIT)
    fee = order["fee"]["cost"]

    def cached_fee() -> Any:
        cached = ex.orders.hashmap.get(SYM, {}).get(order["id"]) if ex.orders else None
        return cached["fee"]["cost"] if cached and cached.get("fee") else None

    await _settle(ex, lambda: cached_fee() == pytest.approx(2 * fee))
    assert len({t["id"] for t in ex.myTrades}) == 1


async def test_out_of_order_reports_regress_ccxt_order_state(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    pending = asyncio.ensure_future(ex.watch_orders(SYM))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.faults.swap_exec_reports()
    order = await ex.create_order(SYM, "market", "buy", 0.01)
    await asyncio.wait_for(pending, WAIT)
    # TRADE/FILLED went out first, the stale NEW right after it: ccxt keeps the last one.
    await _settle(ex, lambda: ex.orders.hashmap[SYM][order["id"]]["status"] == "open")
    assert ex.orders.hashmap[SYM][order["id"]]["filled"] == 0
    assert (await ex.fetch_order(order["id"], SYM))["status"] == "closed"


async def test_user_stream_clock_skew_raises_key_error_with_invalid_nonce(venue: Venue) -> None:
    venue.sim.faults.skew_clock(-5_000)
    with pytest.raises(KeyError) as info:
        await asyncio.wait_for(venue.ex.watch_balance(), WAIT)
    assert isinstance(info.value.__context__, ccxt.InvalidNonce)


async def test_balance_update_without_position_leaves_used_unknown(static_venue: Venue) -> None:
    sim, ex = static_venue.sim, static_venue.ex
    watcher = asyncio.ensure_future(ex.watch_balance())
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.deposit("ETH", "1.5", with_position=False)
    balance = await asyncio.wait_for(watcher, WAIT)
    assert balance["ETH"] == {"free": 1.5, "used": None, "total": None}
    assert (await ex.fetch_balance())["ETH"]["total"] == 101.5


async def test_periodic_drops_from_config_break_watch_with_network_error(
    make_sim: SimFactory, make_client: ClientFactory
) -> None:
    import dataclasses

    sim = await make_sim(STATIC_CONFIG, faults=dataclasses.replace(FaultConfig(), ws_drop_interval_s=0.2))
    ex = await make_client(sim)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(ex.watch_orders(SYM), WAIT)


async def test_periodic_drops_set_at_run_time_start_and_stop(sim: BinanceSimulator, make_client: ClientFactory) -> None:
    """``faults.set(ws_drop_interval_s=...)`` starts periodic drops at run time; 0 stops them."""
    ex = await make_client(sim)
    await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    sim.faults.set(ws_drop_interval_s=0.2)
    with pytest.raises(ccxt.NetworkError):
        for _ in range(100):
            await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
    sim.faults.set(ws_drop_interval_s=0)
    await asyncio.sleep(0.3)  # let a drop that was already due happen
    for _ in range(3):  # re-dial until a connection made after the switch-off
        with contextlib.suppress(ccxt.NetworkError):
            await asyncio.wait_for(ex.watch_trades(SYM), WAIT)
            break
    deadline = asyncio.get_running_loop().time() + 0.8  # four former drop intervals: no drop
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.wait_for(ex.watch_trades(SYM), WAIT)

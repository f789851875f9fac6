"""CcxtVenue against the Binance simulator (unchanged ccxt client, 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.capabilities import ReportsConnectionHealth
from actors.ports.venue import (
    OrderNotFound,
    OrderRejected,
    Venue,
    VenueAuthenticationError,
    VenueUnavailable,
    VenueUpdate,
)
from adapters.binance_sim import BinanceSimulator, SimulatorConfig
from adapters.ccxt_venue import CcxtVenue, resolve_credentials
from adapters.circuit_breaker import BreakerState
from config.schema.trading import CcxtVenueSection
from tests.integration.adapters.conftest import STATIC_CONFIG, SimFactory
from tests.waiting import wait_until

SYM = "BTC/USDT"
SYM_ID = "BTCUSDT"
WAIT = 10.0

VenueFactory = Callable[..., Any]


class FakeClock:
    """Monotonic seconds moved by the test (breakers, backoff)."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def venue_config(sim: BinanceSimulator, **overrides: Any) -> CcxtVenueSection:
    """Small timeouts so fault scenarios resolve in well under a second."""
    base = CcxtVenueSection(
        base_url=sim.base_url,
        api_key=sim.config.api_key,
        secret=sim.config.api_secret,
        request_timeout_s=2.0,
        ws_keepalive_s=1.0,
        user_stream_idle_timeout_s=5.0,
        dial_timeout_s=3.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.3,
        reconnect_stable_s=1.0,
        poll_interval_s=0.2,
        read_retry_attempts=3,
        read_retry_initial_s=0.01,
        read_retry_max_s=0.05,
        rate_limit_pause_s=1.0,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def make_venue() -> AsyncIterator[VenueFactory]:
    """Build and start CcxtVenues against a simulator; closed at teardown (before the simulators)."""
    venues: list[CcxtVenue] = []

    async def factory(
        sim: BinanceSimulator, *, start: bool = True, monotonic: Any = None, **overrides: Any
    ) -> CcxtVenue:
        kwargs: dict[str, Any] = {"monotonic": monotonic} if monotonic is not None else {}
        venue = CcxtVenue(venue_config(sim, **overrides), name="binance", symbols=[SYM], environ={}, **kwargs)
        venues.append(venue)
        if start:
            await venue.start()
        return venue

    yield factory
    for venue in reversed(venues):
        await venue.close()


@pytest.fixture
async def static_sim(make_sim: SimFactory) -> BinanceSimulator:
    """Simulator whose market moves only on injected prints."""
    return await make_sim(STATIC_CONFIG)


class Collector:
    """Consumes ``venue.updates()`` in the background; tests await conditions on what arrived."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.items: list[VenueUpdate] = []
        self._changed = asyncio.Event()
        self._stream = venue.updates()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for item in self._stream:
            self.items.append(item)
            self._changed.set()

    async def wait_for(self, pred: Callable[[], object], timeout: float = WAIT) -> None:
        async def loop() -> None:
            while not pred():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def fills(self, coid: str | None = None) -> list[Fill]:
        return [u for u in self.items if isinstance(u, Fill) and (coid is None or u.client_order_id == coid)]

    def orders(self, coid: str) -> list[VenueOrder]:
        return [u for u in self.items if isinstance(u, VenueOrder) and u.client_order_id == coid]

    def last_status(self, coid: str) -> OrderStatus | None:
        orders = self.orders(coid)
        return orders[-1].status if orders else None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


@pytest.fixture
async def collectors() -> AsyncIterator[Callable[[CcxtVenue], Collector]]:
    made: list[Collector] = []

    def make(venue: CcxtVenue) -> Collector:
        c = Collector(venue)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def limit(coid: str, size: str = "0.01", price: str = "40000", side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol=SYM, side=side, type=OrderType.LIMIT, size=Decimal(size),
                        price=Decimal(price))


def market(coid: str, size: str = "0.002", side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol=SYM, side=side, type=OrderType.MARKET, size=Decimal(size))


def sim_orders(sim: BinanceSimulator, coid: str) -> list[Any]:
    return [o for o in sim.exchange.orders.all_orders(SYM_ID) if o.client_order_id == coid]


def requests_to(sim: BinanceSimulator, method: str, path: str) -> int:
    return len(sim.requests.find(method, path))


def send_user_frame(sim: BinanceSimulator, frame: str) -> None:
    for conn in sim.user_streams.connections:
        conn.send(frame)


def report(event: dict[str, Any]) -> str:
    return json.dumps({"subscriptionId": 0, "event": event})


# --------------------------------------------------------------------------- every Venue method
async def test_venue_methods_against_simulator_return_venue_truth(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    assert isinstance(venue, Venue)
    balances = await venue.balances()
    assert {a: (b.free, b.locked) for a, b in balances.items()} == static_sim.balances()

    placed = await venue.submit(limit("m-1"))
    assert (placed.client_order_id, placed.status, placed.size, placed.price) == (
        "m-1", OrderStatus.ACCEPTED, Decimal("0.01"), Decimal("40000"))
    body = static_sim.requests.find("POST", "/api/v3/order")[-1].body
    assert "newClientOrderId=m-1" in body

    queried = await venue.query("m-1", SYM)
    assert queried is not None
    assert (queried.venue_order_id, queried.status, queried.size, queried.filled, queried.price) == (
        placed.venue_order_id, OrderStatus.ACCEPTED, Decimal("0.01"), Decimal(0), Decimal("40000"))
    assert [o.client_order_id for o in await venue.open_orders()] == ["m-1"]
    assert [o.client_order_id for o in await venue.open_orders(SYM)] == ["m-1"]
    assert (await venue.balances())["USDT"].locked == Decimal("400")

    cancelled = await venue.cancel("m-1", SYM)
    assert (cancelled.client_order_id, cancelled.status) == ("m-1", OrderStatus.CANCELED)
    assert await venue.open_orders() == []
    with pytest.raises(OrderNotFound):
        await venue.cancel("m-1", SYM)
    assert await venue.query("never-sent", SYM) is None
    assert await venue.query("never-sent", "NOPE/USDT") is None

    filled = await venue.submit(market("m-2"))
    assert filled.status is OrderStatus.FILLED and filled.filled == Decimal("0.002")
    fills = await venue.fills_since(0)
    sim_fills = static_sim.exchange.orders.fills(SYM_ID)
    assert [(f.trade_id, f.client_order_id, f.price, f.size, f.fee, f.fee_currency) for f in fills] == [
        (f"{SYM}:{f.trade_id}", "m-2", f.price, f.qty, f.commission, f.commission_asset) for f in sim_fills
    ]
    assert await venue.fills_since(fills[-1].ts_ms + 1) == []


async def test_fills_of_many_unknown_orders_resolved_by_one_order_list_read(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    """After a restart every fill's order is unknown: one allOrders read, not one query per order."""
    first: CcxtVenue = await make_venue(static_sim)
    for i in range(8):
        await first.submit(market(f"bulk-{i}"))
    restarted: CcxtVenue = await make_venue(static_sim)  # a fresh adapter: no order ids cached
    static_sim.requests.clear()
    fills = await restarted.fills_since(0)
    assert sorted(f.client_order_id for f in fills) == sorted(f"bulk-{i}" for i in range(8))
    assert requests_to(static_sim, "GET", "/api/v3/allOrders") == 1
    assert requests_to(static_sim, "GET", "/api/v3/order") == 0


async def test_size_off_step_is_rejected_before_sending(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    with pytest.raises(OrderRejected) as info:
        await venue.submit(limit("p-1", size="0.000015"))
    assert info.value.reason == "PRECISION"
    with pytest.raises(OrderRejected) as info:
        await venue.submit(limit("p-2", price="40000.005"))
    assert info.value.reason == "PRECISION"
    with pytest.raises(OrderRejected) as info:
        await venue.submit(msgspec.structs.replace(limit("p-3"), symbol="NOPE/USDT"))
    assert info.value.reason == "UNKNOWN_SYMBOL"
    assert requests_to(static_sim, "POST", "/api/v3/order") == 0


async def test_definite_refusal_raises_order_rejected_with_reason(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    with pytest.raises(OrderRejected) as info:
        await venue.submit(limit("big-1", size="100", price="40000"))
    assert info.value.reason == "INSUFFICIENT_FUNDS"
    with pytest.raises(OrderRejected) as info:
        await venue.submit(limit("tiny-1", size="0.0001", price="40000"))  # 4 USDT < NOTIONAL 5
    assert info.value.reason == "BAD_REQUEST"
    assert venue.order_breaker.state is BreakerState.CLOSED


async def test_not_started_venue_raises_venue_unavailable(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim, start=False)
    with pytest.raises(VenueUnavailable) as info:
        await venue.submit(limit("ns-1"))
    assert info.value.reason == "NOT_STARTED"


# --------------------------------------------------------------------------- lifecycle through updates()
async def test_order_lifecycle_through_adapter_matches_simulator(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim)
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)

    # limit resting -> partial fill -> fill
    await venue.submit(limit("life-1", size="0.01", price="40000"))
    sim.inject_trade(SYM_ID, "40000", "0.004")
    await updates.wait_for(lambda: updates.last_status("life-1") is OrderStatus.PARTIALLY_FILLED)
    sim.inject_trade(SYM_ID, "39999", "0.02")
    await updates.wait_for(lambda: updates.last_status("life-1") is OrderStatus.FILLED
                           and len(updates.fills("life-1")) == 2)
    # limit resting -> cancel
    await venue.submit(limit("life-2", size="0.01", price="39000"))
    cancelled = await venue.cancel("life-2", SYM)
    assert cancelled.status is OrderStatus.CANCELED
    # market
    done = await venue.submit(market("life-3", size="0.003", side=Side.SELL))
    await updates.wait_for(lambda: sum(f.size for f in updates.fills("life-3")) == done.filled)

    # the adapter's reported fills equal the simulator's, exactly once each
    sim_fills = {f"{SYM}:{f.trade_id}": f for f in sim.exchange.orders.fills(SYM_ID)}
    reported = updates.fills()
    assert len({f.trade_id for f in reported}) == len(reported)
    assert {f.trade_id for f in reported} == set(sim_fills)
    for f in reported:
        s = sim_fills[f.trade_id]
        assert (f.price, f.size, f.fee, f.fee_currency, f.venue_order_id) == (
            s.price, s.qty, s.commission, s.commission_asset, str(s.order_id))
    # ... and so do the orders' final states (updates, or the submit/cancel replies)
    finals = {"life-1": updates.last_status("life-1"), "life-2": cancelled.status, "life-3": done.status}
    for coid, status in finals.items():
        (order,) = sim_orders(sim, coid)
        assert status is OrderStatus(order.status.value if order.status.value != "NEW" else "ACCEPTED")
    assert (await venue.query("life-1", SYM)).filled == Decimal("0.01")  # type: ignore[union-attr]
    # never regressed: filled is non-decreasing per order in what was emitted
    for coid in finals:
        seq = [o.filled for o in updates.orders(coid)]
        assert seq == sorted(seq)
    assert venue.stats().malformed == 0


# --------------------------------------------------------------------------- ambiguous outcomes
async def test_lost_order_response_raises_unavailable_then_query_finds_single_order(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.lose_order_responses()
    with pytest.raises(VenueUnavailable) as info:
        await venue.submit(limit("lost-1"))
    assert info.value.reason == "NETWORK"
    found = await venue.query("lost-1", SYM)
    assert found is not None and found.status is OrderStatus.ACCEPTED and found.size == Decimal("0.01")
    assert len(sim_orders(static_sim, "lost-1")) == 1
    assert requests_to(static_sim, "POST", "/api/v3/order") == 1  # never resent


async def test_duplicate_client_order_id_is_unknown_outcome_not_rejection(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    await venue.submit(limit("dup-1"))
    with pytest.raises(VenueUnavailable):  # the order with our id exists: resolve by query
        await venue.submit(limit("dup-1"))
    assert (await venue.query("dup-1", SYM)) is not None


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [(503, None, "NETWORK"), (502, None, "NETWORK"), (504, None, "TIMEOUT"), (500, -1001, "VENUE_ERROR"),
     (503, -1008, "EXCHANGE_ERROR")],
)
async def test_server_error_on_submit_raises_venue_unavailable_not_rejected(
    static_sim: BinanceSimulator, make_venue: VenueFactory, status: int, code: int | None, reason: str
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.fail_rest(status, code=code, msg="Internal error.", path="/api/v3/order", method="POST")
    with pytest.raises(VenueUnavailable) as info:
        await venue.submit(limit("5xx-1"))
    assert info.value.reason == reason
    assert requests_to(static_sim, "POST", "/api/v3/order") == 1  # never retried


async def test_order_breaker_latches_after_ambiguous_submits_until_rest_resync(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    venue: CcxtVenue = await make_venue(static_sim, order_breaker_failure_threshold=2, breaker_break_s=0.01)
    static_sim.faults.fail_rest(503, path="/api/v3/order", method="POST", count=2)
    for coid in ("lb-1", "lb-2"):
        with pytest.raises(VenueUnavailable):
            await venue.submit(limit(coid))
    assert venue.order_breaker.latched
    with pytest.raises(OrderRejected) as refused:  # nothing was sent: a definite refusal
        await venue.submit(limit("lb-3"))
    assert refused.value.reason == "CIRCUIT_OPEN"
    assert requests_to(static_sim, "POST", "/api/v3/order") == 2
    # cancels and reads are not behind the order latch
    assert await venue.open_orders() == []
    # the user-data engine re-reads venue state over REST and lifts the latch
    collectors(venue)
    await wait_until(lambda: not venue.order_breaker.latched, WAIT)
    assert (await venue.submit(limit("lb-4"))).status is OrderStatus.ACCEPTED


# --------------------------------------------------------------------------- rate limits, bans, clock
async def test_rate_limit_429_with_retry_after_blocks_calls_until_it_passes(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    clock = FakeClock()
    venue: CcxtVenue = await make_venue(static_sim, monotonic=clock)
    static_sim.faults.rate_limit(retry_after_s=7, path="/api/v3/account")
    with pytest.raises(VenueUnavailable) as info:
        await venue.balances()
    assert info.value.reason == "RATE_LIMITED"
    sent = len(static_sim.requests)
    for call in (venue.balances(), venue.open_orders(), venue.cancel("x", SYM)):
        with pytest.raises(VenueUnavailable) as info:
            await call
        assert info.value.reason == "CIRCUIT_OPEN"
    with pytest.raises(OrderRejected) as refused:  # unsent, refused with the pause's own reason
        await venue.submit(limit("rl-1"))
    assert refused.value.reason == "RATE_LIMITED"
    clock.advance(6.9)
    with pytest.raises(VenueUnavailable):
        await venue.query("rl-1", SYM)
    assert len(static_sim.requests) == sent  # nothing went out while paused
    clock.advance(0.1)
    assert "BTC" in await venue.balances()
    assert venue.stats().rate_limited == 1


async def test_ip_ban_418_forces_breakers_open_until_ban_ends(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    clock = FakeClock()
    venue: CcxtVenue = await make_venue(static_sim, monotonic=clock)
    static_sim.faults.ban(120)
    with pytest.raises(VenueUnavailable) as info:
        await venue.open_orders()
    assert info.value.reason == "IP_BANNED"
    stats = venue.stats()
    assert stats.bans == 1
    for snap in stats.breakers:
        assert snap.state is BreakerState.OPEN and snap.reason == "ip_banned"
        assert snap.open_remaining_s is not None and 115 <= snap.open_remaining_s <= 120
    assert isinstance(venue, ReportsConnectionHealth)
    health = venue.connection_health()
    assert [(b.name, b.state, b.trips, b.latched, b.reason) for b in health.breakers] == [
        ("rest", "open", 1, False, "ip_banned"), ("orders", "open", 1, False, "ip_banned")]
    assert [b.open_remaining_s for b in health.breakers] == [s.open_remaining_s for s in stats.breakers]
    assert health.reconnects == {"user": 0}
    sent = len(static_sim.requests)
    with pytest.raises(OrderRejected) as refused:
        await venue.submit(limit("ban-1"))
    assert refused.value.reason == "IP_BANNED" and len(static_sim.requests) == sent
    static_sim.faults.lift_ban()
    clock.advance(120)
    assert (await venue.submit(limit("ban-2"))).status is OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("arm", "reason"),
    [
        (lambda sim: sim.faults.rate_limit(retry_after_s=7, path="/api/v3/order", method="POST"), "RATE_LIMITED"),
        (lambda sim: sim.faults.ban(7), "IP_BANNED"),
        (lambda sim: sim.faults.fail_rest(400, code=-1015, msg="Too many new orders; current limit is 10 orders "
                                          "per SECOND.", path="/api/v3/order", method="POST"), "RATE_LIMITED"),
    ],
    ids=["429", "418", "-1015"],
)
async def test_rate_limit_or_ban_on_submit_is_a_definite_rejection_and_pauses_submits(
    static_sim: BinanceSimulator, make_venue: VenueFactory, arm: Callable[[BinanceSimulator], object], reason: str
) -> None:
    """Binance places no order when it answers an order POST with 429 / 418 / -1015: a definite
    rejection (never an unknown outcome waiting for a query), and following submits are refused
    unsent, with the same reason, until the Retry-After / ban / pause has passed."""
    clock = FakeClock()
    venue: CcxtVenue = await make_venue(static_sim, monotonic=clock, rate_limit_pause_s=7.0)
    arm(static_sim)
    with pytest.raises(OrderRejected) as refused:
        await venue.submit(limit("rl-s1"))
    assert refused.value.reason == reason
    assert sim_orders(static_sim, "rl-s1") == []
    sent = len(static_sim.requests)
    with pytest.raises(OrderRejected) as again:
        await venue.submit(limit("rl-s2"))
    assert again.value.reason == reason and len(static_sim.requests) == sent  # refused unsent
    orders = venue.stats().breakers[1]
    assert orders.state is BreakerState.OPEN and not orders.latched
    assert orders.open_remaining_s is not None and 6 <= orders.open_remaining_s <= 7
    static_sim.faults.lift_ban()
    clock.advance(7)
    assert (await venue.submit(limit("rl-s3"))).status is OrderStatus.ACCEPTED
    assert not venue.order_breaker.latched


async def test_recv_window_is_configurable_sent_with_signed_requests_and_sets_submit_expiry(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim, recv_window_ms=5_000)
    await venue.submit(limit("rw-1"))
    assert "recvWindow=5000" in static_sim.requests.find("POST", "/api/v3/order")[-1].body
    assert venue.submit_expiry_s == 7.0
    default: CcxtVenue = await make_venue(static_sim)
    assert default.submit_expiry_s == 12.0  # ccxt's Binance default of 10 s, as before


BAD_SECRET = "not-the-simulators-secret-7f3a"


async def test_wrong_credentials_logged_once_then_every_private_call_fails_fast_unsent(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    """A signature the venue refuses (-1022) is definite: one clear error, the breakers held open for
    ``auth_retry_s`` (no call reaches the venue meanwhile), then one trial call."""
    clock = FakeClock()
    with capture_logs() as logs:
        venue: CcxtVenue = await make_venue(static_sim, monotonic=clock, secret=BAD_SECRET, auth_retry_s=60.0)
        with pytest.raises(VenueAuthenticationError) as info:
            await venue.balances()
        sent = len(static_sim.requests)
        for call in (venue.balances(), venue.open_orders(), venue.fills_since(0), venue.cancel("x", SYM),
                     venue.query("x", SYM)):
            with pytest.raises(VenueAuthenticationError):
                await call
        with pytest.raises(OrderRejected) as refused:
            await venue.submit(limit("auth-1"))
        assert len(static_sim.requests) == sent  # nothing left while refused
        clock.advance(60)
        with pytest.raises(VenueAuthenticationError):  # the trial call: refused again
            await venue.balances()
        assert len(static_sim.requests) == sent + 1
        with pytest.raises(VenueAuthenticationError):
            await venue.balances()
        assert len(static_sim.requests) == sent + 1
    error = info.value
    assert error.reason == "AUTHENTICATION" and isinstance(error, VenueUnavailable)
    for text in ("binance", "-1022", "API key and secret", "IP allow-list", "permissions"):
        assert text in str(error)
    assert refused.value.reason == "AUTHENTICATION" and "IP allow-list" in str(refused.value)
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["ccxt_venue.credentials_refused"]
    assert errors[0]["credentials"] == "config" and "-1022" in errors[0]["detail"]
    assert all(BAD_SECRET not in repr(e) for e in logs)
    assert BAD_SECRET not in str(error) and BAD_SECRET not in str(refused.value)
    stats = venue.stats()
    assert stats.credentials_refused is not None and stats.credential_refusals == 2
    health = venue.connection_health()  # what /status shows
    assert [(b.name, b.state) for b in health.breakers] == [("rest", "open"), ("orders", "open")]
    assert all(b.reason.startswith("credentials_refused: -1022") for b in health.breakers)


async def test_credentials_accepted_again_after_the_pause_ends_the_refusal(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    """An allow-list or permission fixed at the venue: the trial call after the pause succeeds."""
    clock = FakeClock()
    venue: CcxtVenue = await make_venue(static_sim, monotonic=clock, auth_retry_s=60.0)
    static_sim.faults.fail_rest(401, code=-2015, msg="Invalid API-key, IP, or permissions for action.",
                                path="/api/v3/account")
    with pytest.raises(VenueAuthenticationError) as info:
        await venue.balances()
    assert "-2015" in str(info.value)
    clock.advance(60)
    assert "USDT" in await venue.balances()
    assert venue.stats().credentials_refused is None
    assert (await venue.submit(limit("auth-ok"))).status is OrderStatus.ACCEPTED


async def test_missing_credentials_refused_without_calling_the_venue(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim, api_key="", secret="")
    with pytest.raises(VenueAuthenticationError) as info:
        await venue.balances()
    assert "apiKey" in str(info.value) and "from none" in str(info.value)
    assert requests_to(static_sim, "GET", "/api/v3/account") == 0


async def test_refused_credentials_end_update_streams_with_the_error(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    """The order manager learns of the refusal from its update stream (it may make no call itself)."""
    venue: CcxtVenue = await make_venue(static_sim, secret=BAD_SECRET)
    stream = venue.updates()  # starts the user-data engine, whose first poll is refused

    async def consume() -> None:
        async for _ in stream:
            pass

    with pytest.raises(VenueAuthenticationError):
        await asyncio.wait_for(consume(), WAIT)
    await stream.aclose()  # type: ignore[attr-defined]
    assert venue.stats().credentials_refused is not None


async def test_clock_skew_1021_resyncs_time_then_succeeds(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.skew_clock(-5_000)  # server 5 s behind: our timestamps are "ahead"
    assert "USDT" in await venue.balances()
    assert venue.stats().time_resyncs == 1
    static_sim.faults.skew_clock(20_000)  # now 20 s ahead: outside recvWindow
    placed = await venue.submit(limit("skew-1"))
    assert placed.status is OrderStatus.ACCEPTED and venue.stats().time_resyncs == 2
    assert len(sim_orders(static_sim, "skew-1")) == 1
    assert venue.order_breaker.state is BreakerState.CLOSED


async def test_rate_limit_429_on_time_resync_pauses_rest_until_it_passes(
    static_sim: BinanceSimulator, make_venue: VenueFactory
) -> None:
    clock = FakeClock()
    venue: CcxtVenue = await make_venue(static_sim, monotonic=clock)
    static_sim.faults.skew_clock(-5_000)  # the next signed read gets -1021: a resync follows
    static_sim.faults.rate_limit(retry_after_s=7, path="/api/v3/time")  # ... and the resync gets a 429
    with pytest.raises(VenueUnavailable) as info:
        await venue.balances()
    assert info.value.reason == "RATE_LIMITED"
    assert venue.stats().time_resyncs == 1 and venue.stats().rate_limited == 1
    sent = len(static_sim.requests)
    for call in (venue.balances(), venue.open_orders()):
        with pytest.raises(VenueUnavailable) as paused:
            await call
        assert paused.value.reason == "CIRCUIT_OPEN"
    with pytest.raises(OrderRejected) as refused:  # unsent: the pause's reason is a definite refusal
        await venue.submit(limit("resync-rl-1"))
    assert refused.value.reason == "RATE_LIMITED"
    assert len(static_sim.requests) == sent  # nothing went out while paused
    static_sim.faults.skew_clock(0)
    clock.advance(7.0)
    assert "USDT" in await venue.balances()


async def test_reads_retry_network_errors_then_succeed(static_sim: BinanceSimulator, make_venue: VenueFactory) -> None:
    venue: CcxtVenue = await make_venue(static_sim)
    static_sim.faults.fail_rest(503, path="/api/v3/openOrders", count=2)
    assert await venue.open_orders() == []
    assert requests_to(static_sim, "GET", "/api/v3/openOrders") == 3
    static_sim.faults.fail_rest(503, path="/api/v3/openOrders", count=3)
    with pytest.raises(VenueUnavailable):
        await venue.open_orders()


# --------------------------------------------------------------------------- user stream robustness
async def test_malformed_duplicate_and_out_of_order_reports_are_skipped_without_crash(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim)
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    base = {"e": "executionReport", "E": 1, "s": SYM_ID, "c": "evil-1", "S": "BUY", "o": "LIMIT", "f": "GTC",
            "q": "0.01000000", "p": "40000.00", "x": "NEW", "X": "NEW", "i": 999, "l": "0", "z": "0", "L": "0",
            "n": "0", "N": None, "T": 1, "t": -1, "O": 1, "Z": "0", "C": ""}
    send_user_frame(sim, '{"subscriptionId":0,"event":{broken')  # bad JSON
    send_user_frame(sim, "garbage")
    send_user_frame(sim, report({**base, "s": "NOPEUSDT", "i": 901}))  # unknown symbol
    send_user_frame(sim, report({**base, "q": "-1", "i": 902}))  # impossible size
    send_user_frame(sim, report({**base, "z": "0.5", "i": 903}))  # filled > size
    send_user_frame(sim, report({**base, "X": "WHATEVER", "i": 904}))  # unknown status
    send_user_frame(sim, report({"e": "executionReport"}))  # missing everything (ccxt ignores it)
    sim.faults.duplicate_exec_reports(count=None)  # every TRADE report twice
    sim.faults.swap_exec_reports(count=1)  # NEW arrives after the first TRADE
    placed = await venue.submit(limit("ok-1", size="0.01", price="40000"))
    sim.inject_trade(SYM_ID, "40000", "0.004")
    sim.inject_trade(SYM_ID, "40000", "0.006")
    await updates.wait_for(lambda: sum(f.size for f in updates.fills("ok-1")) == Decimal("0.01")
                           and updates.last_status("ok-1") is OrderStatus.FILLED)
    # a stale report for the filled order arrives late: ccxt regresses its cache, we do not
    send_user_frame(sim, report({**base, "c": "ok-1", "i": int(placed.venue_order_id), "E": 2}))
    await venue.submit(market("ok-2"))
    await updates.wait_for(lambda: updates.fills("ok-2"))
    fills = updates.fills("ok-1")
    assert len(fills) == len({f.trade_id for f in fills}) == 2
    filled = [o.filled for o in updates.orders("ok-1")]
    assert filled == sorted(filled) and updates.last_status("ok-1") is OrderStatus.FILLED
    stats = venue.stats()
    assert stats.malformed_by_reason.pop("undecodable_frame") == 2
    assert sum(stats.malformed_by_reason.values()) == 4
    assert stats.reconnects["user"] == 0 and stats.stream_connected  # the stream survived all of it
    assert stats.duplicate_fills >= 1 and stats.stale_reports >= 1
    assert not updates.orders("evil-1")


async def test_user_stream_dropped_rest_polling_recovers_missed_fill(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim)
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    placed = await venue.submit(limit("gap-1", size="0.01", price="40000"))
    assert placed.status is OrderStatus.ACCEPTED
    # the stream goes down and cannot come back for now; the order fills meanwhile
    sim.faults.reject_ws_handshakes(count=None, status=503, retry_after_s=None, path_prefix="/ws-api")
    assert await sim.drop_user_connections(code=None) == 1
    sim.inject_trade(SYM_ID, "40000", "0.01")
    await updates.wait_for(lambda: updates.fills("gap-1") and updates.last_status("gap-1") is OrderStatus.FILLED)
    assert sim.user_streams.subscription_count() == 0  # recovered by REST polling alone
    stats = venue.stats()
    assert stats.polls >= 2 and stats.reconnects["user"] >= 1 and not stats.stream_connected
    (fill,) = updates.fills("gap-1")
    assert fill.size == Decimal("0.01") and fill.price == Decimal("40000")
    # the stream comes back and delivers again
    sim.faults.reset()
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await venue.submit(market("gap-2"))
    await updates.wait_for(lambda: updates.fills("gap-2"))


async def test_user_stream_stall_detected_by_idle_timeout_and_redialled(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim, user_stream_idle_timeout_s=0.3)
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    sim.stall_user_connections()  # silent: pending watches hang (spec §6.4)
    await venue.submit(limit("term-1"))
    sim.inject_trade(SYM_ID, "40000", "0.01")
    await updates.wait_for(lambda: updates.last_status("term-1") is OrderStatus.FILLED and updates.fills("term-1"))
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    assert venue.stats().stalls >= 1


async def test_event_stream_terminated_behind_a_report_ends_session_and_polls_at_once(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    """A watch resolved just before ``eventStreamTerminated`` must not be re-armed into a silent
    re-subscription: what executed in between is never sent, so the session ends and REST is polled."""
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim)  # idle timeout 5 s: the fill must come well before it
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    assert (await venue.submit(limit("term-2", size="0.02"))).status is OrderStatus.ACCEPTED
    sim.inject_trade(SYM_ID, "40000", "0.01")  # a report the client gets...
    sim.terminate_user_streams()  # ...then the end of the subscription...
    sim.inject_trade(SYM_ID, "40000", "0.01")  # ...and the fill of the rest, reported to nobody
    await updates.wait_for(
        lambda: updates.last_status("term-2") is OrderStatus.FILLED and len(updates.fills("term-2")) == 2, 2.5)
    assert venue.stats().reconnects["user"] >= 1
    await sim.wait_for_user_subscription(timeout_s=WAIT)


async def test_user_socket_closed_while_no_watch_pending_ends_session_and_polls(
    static_sim: BinanceSimulator, make_venue: VenueFactory, collectors: Callable[[CcxtVenue], Collector]
) -> None:
    """While the engine handles a report no watch is pending: a socket closed then fails nobody, and
    re-arming would re-dial silently. The session must end and REST be polled for what was missed."""
    sim = static_sim
    venue: CcxtVenue = await make_venue(sim)  # idle timeout 5 s: the fill must come well before it
    updates = collectors(venue)
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    assert (await venue.submit(limit("gap-3", size="0.01"))).status is OrderStatus.ACCEPTED
    engine = venue._user_stream
    handle_trades = engine._on_trades
    dropped = False

    async def on_trades(result: Any, *, where: str = "watch_my_trades") -> None:
        nonlocal dropped
        if not dropped and where == "watch_my_trades" and result:
            dropped = True  # a TRADE report resolved both watches: the socket goes, a fill is missed
            assert await sim.drop_user_connections(code=1001) == 1
            sim.inject_trade(SYM_ID, "40000", "0.01")
        await handle_trades(result, where=where)

    engine._on_trades = on_trades  # type: ignore[method-assign]
    await venue.submit(market("gap-4"))
    await updates.wait_for(
        lambda: updates.last_status("gap-3") is OrderStatus.FILLED and updates.fills("gap-3"), 2.5)
    assert dropped and venue.stats().reconnects["user"] >= 1


async def test_credentials_resolve_from_files_then_env_then_config(tmp_path: Path) -> None:
    cfg = CcxtVenueSection(api_key="cfg-key", secret="cfg-secret")
    assert resolve_credentials(cfg, {}).source == "config"  # type: ignore[union-attr]
    env = {"AAITI_API_KEY": "env-key", "AAITI_API_SECRET": "env-secret"}
    creds = resolve_credentials(cfg, env)
    assert creds is not None and (creds.api_key, creds.source) == ("env-key", "env:AAITI_API_KEY,AAITI_API_SECRET")
    (tmp_path / "api_key").write_text("file-key\n")
    (tmp_path / "api_secret").write_text("file-secret\n")
    creds = resolve_credentials(cfg, {**env, "CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert creds is not None and (creds.api_key, creds.secret) == ("file-key", "file-secret")
    assert "file-key" not in repr(creds) and "file-secret" not in repr(creds)
    assert resolve_credentials(CcxtVenueSection(), {}) is None
    sim_creds = resolve_credentials(CcxtVenueSection(start_simulator=True), {})
    assert sim_creds is not None and sim_creds.source == "simulator-defaults"
    # the adapter's copy of the simulator's test keys (it may not import the simulator) is current
    assert (sim_creds.api_key, sim_creds.secret) == (SimulatorConfig().api_key, SimulatorConfig().api_secret)


async def test_start_simulator_config_points_venue_at_loopback_only() -> None:
    from adapters.ccxt_venue.client import ExchangeConfigError, effective_base_url
    from daemon.embedded_simulator import start_simulator

    assert effective_base_url(CcxtVenueSection(start_simulator=True, simulator_port=8765)) == "http://127.0.0.1:8765"
    with pytest.raises(ExchangeConfigError):
        effective_base_url(CcxtVenueSection(start_simulator=True, base_url="https://api.binance.com"))
    assert await start_simulator(CcxtVenueSection()) is None
    sim = await start_simulator(CcxtVenueSection(start_simulator=True, simulator_port=0))
    try:
        cfg = dataclasses.replace(
            CcxtVenueSection(start_simulator=True, base_url=sim.base_url), user_stream_idle_timeout_s=5.0
        )
        venue = CcxtVenue(cfg, name="binance-sim", symbols=[SYM], environ={})
        await venue.start()
        try:
            assert "USDT" in await venue.balances()  # the simulator's default keys were used
        finally:
            await venue.close()
    finally:
        await sim.stop()

"""The order manager and two facts about the venue: when a submit was really sent (in-flight ages
count from there, not from the write-ahead), and a venue that refuses our credentials (trading
HALTED through the risk gate's control channel, the actor stays up, nothing restarts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from actors.kernel.actor import ActorState
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.control import SetTradingState, TradingState
from actors.model.orders import Balance, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.model.records import OrderRecord
from actors.orders import order_loader, order_manager
from actors.orders.order_table import OrderTable
from actors.ports.venue import OrderRejected, VenueAuthenticationError, VenueUpdate
from tests.unit.actors.orders_harness import SYMBOL, Harness, ProxyVenue
from tests.waiting import wait_until

S = OrderStatus
REFUSED = "venue paper refused the API credentials (-2015 Invalid API-key, IP, or permissions for action.)"


class ProcessTime:
    """Process time moved by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class GatedVenue(ProxyVenue):
    """Submits wait at a gate until the test opens it."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.sent: list[str] = []

    async def submit(self, request: OrderRequest) -> VenueOrder:
        self.sent.append(request.client_order_id)
        self.entered.set()
        await self.gate.wait()
        return await super().submit(request)


class RefusingVenue(ProxyVenue):
    """Refuses balance reads while ``refuse`` is set; its update stream fails once ``fail_stream`` is set."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.refuse = True
        self.fail_stream = asyncio.Event()

    async def balances(self) -> dict[str, Balance]:
        if self.refuse:
            self.balances_calls += 1
            raise VenueAuthenticationError(f"balances: {REFUSED}")
        return await super().balances()

    def updates(self) -> AsyncIterator[VenueUpdate]:
        return self._failing()

    async def _failing(self) -> AsyncIterator[VenueUpdate]:
        await self.fail_stream.wait()
        raise VenueAuthenticationError(f"open_orders: {REFUSED}")
        yield  # an async generator


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


def record(coid: str) -> OrderRecord:
    return OrderRecord(client_order_id=coid, venue="paper", strategy="s1", symbol=SYMBOL, side=Side.BUY,
                       type=OrderType.MARKET, size=Decimal(100), status=S.SUBMITTED)


def test_in_flight_age_counts_from_the_send_not_the_write_ahead() -> None:
    process_time = ProcessTime()
    table = OrderTable(clock=MarketClock(1_000_000), process_time=process_time)
    table.add_submitted(record("b"), sent=False)
    process_time.now += 100.0  # queued behind other submits: not late, nothing was sent
    assert [(f.client_order_id, f.age_s) for f in table.in_flight()] == [("b", 0.0)]
    assert table.in_flight(older_than_s=5.0) == []
    table.mark_sent("b")
    process_time.now += 3.0
    assert [(f.client_order_id, f.age_s) for f in table.in_flight(older_than_s=2.0)] == [("b", 3.0)]


async def test_a_submit_queued_behind_another_does_not_age_until_it_is_sent(h: Harness) -> None:
    venue = GatedVenue(h.paper)
    h.venue = venue
    om = await h.start(max_concurrent_requests=1)
    await h.send(size="100")
    await h.send(size="100")
    await asyncio.wait_for(venue.entered.wait(), 5)
    await wait_until(lambda: len(om.open_orders()) == 2)
    (queued,) = [r.client_order_id for r in om.open_orders() if r.client_order_id not in venue.sent]
    assert [f.age_s for f in om.in_flight() if f.client_order_id == queued] == [0.0]
    venue.gate.set()
    await h.until_status(S.FILLED, queued)


async def test_first_start_refused_credentials_halts_trading_and_waits_for_the_venue(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start reads the venue's balances: refused, it must not fail (the supervisor would
    restart it into a loop) but halt trading, stay up and try again with back-off."""
    monkeypatch.setattr(order_loader, "_VENUE_WAIT_FIRST_S", 0.01)
    venue = RefusingVenue(h.paper)
    h.venue = venue
    await venue.start()
    control: Channel[SetTradingState] = Channel("control", 8)
    om_task = asyncio.create_task(_start_unloaded(h, control))
    halt = await asyncio.wait_for(control.recv(), 5)
    assert halt.state is TradingState.HALTED
    assert halt.reason.startswith("first start: AUTHENTICATION: balances:") and "-2015" in halt.reason
    om = h.om
    assert om is not None
    await wait_until(lambda: venue.balances_calls >= 3)  # retried, not failed
    assert om.state is ActorState.RUNNING and not om.loaded.is_set() and om.pending_work() == 0
    venue.refuse = False
    await asyncio.wait_for(om.loaded.wait(), 5)
    assert om.venue_refusal is None and len(control) == 0  # halted once
    assert om.balances() == {a: b.total for a, b in (await venue.balances()).items()}
    assert not om_task.done()


async def _start_unloaded(h: Harness, control: Channel[SetTradingState]) -> None:
    """Like ``Harness.start`` without waiting for the orders to load; runs the actor to its end."""
    from adapters.storage import Store

    h.store = await Store.open(h.db_path)
    h.om = order_manager.OrderManager("order_manager", venue=h.venue, store=h.store, commands=h.commands,
                                      events=h.events, control=control)
    await h.om.main()


async def test_refused_credentials_on_the_update_stream_or_a_submit_halt_trading_once(h: Harness) -> None:
    venue = RefusingVenue(h.paper)
    venue.refuse = False
    h.venue = venue
    control: Channel[SetTradingState] = Channel("control", 8)
    om = await h.start(control=control)
    venue.fail_stream.set()  # the venue starts refusing us: the stream ends with the error
    halt = await asyncio.wait_for(control.recv(), 5)
    assert halt.state is TradingState.HALTED and halt.reason.startswith("update stream: AUTHENTICATION")
    assert om.venue_refusal == halt.reason
    # A submit refused for the same reason: rejected, no second halt request.
    venue.fail_submit = OrderRejected("AUTHENTICATION", REFUSED)
    await h.send(size="100")
    rejected = await h.until_status(S.REJECTED)
    assert rejected.reason == "AUTHENTICATION"
    await om.wait_requests()
    assert len(control) == 0
    # The venue accepts us again (a submit went through); a later refusal halts again.
    venue.fail_stream.clear()
    venue.fail_submit = None
    await h.send(size="100")
    await h.until_status(S.FILLED)
    await om.wait_requests()
    assert om.venue_refusal is None
    venue.fail_submit = OrderRejected("AUTHENTICATION", REFUSED)
    await h.send(size="100")
    await h.until_status(S.REJECTED)
    again = await asyncio.wait_for(control.recv(), 5)
    assert again.state is TradingState.HALTED and again.reason.startswith("submit ")
    assert om.state is ActorState.RUNNING

"""A bracket the risk gate keeps denying after approval: the contingent-order manager gives up on
its entry and the strategy is told once, through the event router, so ``in_flight`` drops.

Real channels, a real store, the real manager and router; the test plays the risk gate (it
denies every release the manager sends) and the strategy host (it hands the strategy what
the router delivers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.contingent.contingency_manager import ContingencyManager, ContingentCommand, ContingentFeedback
from actors.event_router import EventRouter, RoutedEvent
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.contingent import CONTINGENT_GIVEN_UP, ContingentStatus
from actors.model.orders import ApprovedList, CancelOrder, OrderDenied, OrderEvent, OrderIntent, OrderList
from actors.ports.capabilities import NativeSupport
from actors.strategy_api import Strategy, StrategyContext, Submission
from actors.strategy_portfolio import TrackingPortfolio
from adapters.storage.store import Store
from config.schema.trading import OrdersSection

D = Decimal
SYM = "XRP/ETH"
WITHIN_S = 5.0  # a guard against hangs only; every wait is on an event


class Counting(Strategy[Any]):
    """Records every order event and denial it is handed."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.seen: list[OrderEvent | OrderDenied] = []

    def on_order_event(self, event: OrderEvent | OrderDenied) -> None:
        self.seen.append(event)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


async def test_given_up_bracket_entry_reaches_the_strategy_once_and_in_flight_drops(store: Store) -> None:
    out: list[Submission] = []
    strategy = Counting(StrategyContext("s1", (SYM,), "1m"), emitter=out.append, portfolio=TrackingPortfolio())
    lst = strategy.buy(SYM, size=5, stop_loss=0.0018, take_profit=0.0023)
    assert isinstance(lst, OrderList) and strategy.in_flight(SYM) == 1

    events: Channel[RoutedEvent] = Channel("order_events", 64)  # the router's inbox
    to_strategy: Channel[RoutedEvent] = Channel("events.s1", 64)
    feedback: Channel[ContingentFeedback] = Channel("contingent_events", 64)
    inbox: Channel[ContingentCommand] = Channel("contingent", 64)
    intents: Channel[OrderIntent | OrderList] = Channel("intents", 64)
    commands: Channel[CancelOrder] = Channel("commands", 64)
    loaded = asyncio.Event()
    loaded.set()
    cm = ContingencyManager(
        "contingent", inbox=inbox, feedback=feedback, intents=intents, commands=commands, store=store,
        clock=MarketClock(1_700_000_000_000), settings=OrdersSection, support=NativeSupport(), venue_name="paper",
        lookup=lambda _coid: None, orders_loaded=loaded, step_size=lambda _s: D(1), outcomes=events)
    router = EventRouter("router", events, {"s1": to_strategy}, contingent=feedback)
    tasks = [asyncio.create_task(cm.main()), asyncio.create_task(router.main())]
    try:
        await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
        # the risk gate approved the list; then it denies the entry the manager releases (a tight limit)
        await inbox.send(ApprovedList(order_list=lst, sizes=(D(5), None, None), reference_price=D("0.002")))
        entry = await asyncio.wait_for(intents.recv(), WITHIN_S)
        assert isinstance(entry, OrderIntent) and entry.intent_id == lst.orders[0].intent_id and entry.parent
        await events.send(OrderDenied(intent=entry, reason="MAX_POSITION", limit="max_position=1"))
        told = await asyncio.wait_for(to_strategy.recv(), WITHIN_S)
        assert isinstance(told, OrderDenied) and told.reason == CONTINGENT_GIVEN_UP
        strategy.handle_order_event(told)
        assert strategy.in_flight(SYM) == 0 and strategy.seen == [told]
        assert "MAX_POSITION" in told.detail
        row = await store.contingent(entry.parent)
        assert row is not None and row.status is ContingentStatus.FAILED
        # the router handed it to the strategy only: nothing more for either, nothing back to the manager
        assert len(to_strategy) == 0 and len(events) == 0 and len(feedback) == 0
        assert cm.pending_work() == 0 and cm.views() == []
    finally:
        inbox.close()
        events.close()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WITHIN_S)

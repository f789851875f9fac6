"""EventRouter: order events and denials to the owning strategy, and the contingent-order
manager's own orders (``parent`` set) to its channel too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from actors.event_router import EventRouter, RoutedEvent
from actors.kernel.channel import Channel
from actors.model.orders import OrderDenied, OrderEvent, OrderIntent, OrderStatus, Side

SYM = "XRP/ETH"
T = TypeVar("T")


class Rig:
    """A running router with one strategy channel and, optionally, a contingent channel."""

    def __init__(self, with_contingent: bool = True) -> None:
        self.inbox: Channel[RoutedEvent] = Channel("order_events", 64)
        self.strategy: Channel[RoutedEvent] = Channel("events.s1", 64)
        self.contingent: Channel[RoutedEvent] | None = Channel("contingent", 64) if with_contingent else None
        targets: dict[str, Channel[Any]] = {"s1": self.strategy}
        self.router = EventRouter("router", self.inbox, targets, contingent=self.contingent)


async def recv(ch: Channel[T] | None) -> T:
    assert ch is not None
    return await asyncio.wait_for(ch.recv(), 2.0)


async def _run(rig: Rig) -> AsyncIterator[Rig]:
    task = asyncio.create_task(rig.router.main())
    yield rig
    rig.inbox.close()
    await asyncio.wait_for(task, 2.0)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for r in _run(Rig()):
        yield r


@pytest.fixture
async def bare() -> AsyncIterator[Rig]:
    async for r in _run(Rig(with_contingent=False)):
        yield r


def event(parent: str = "", coid: str = "c1") -> OrderEvent:
    return OrderEvent(client_order_id=coid, strategy="s1", symbol=SYM, status=OrderStatus.ACCEPTED, parent=parent,
                      intent_id="s1-1")


def denied(parent: str = "") -> OrderDenied:
    intent = OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, parent=parent, intent_id="i")
    return OrderDenied(intent=intent, reason="MAX_POSITION")


async def test_child_order_event_routed_to_contingent_and_strategy(rig: Rig) -> None:
    ev = event(parent="k1")
    await rig.inbox.send(ev)
    assert await recv(rig.contingent) == ev
    assert await recv(rig.strategy) == ev


async def test_plain_order_event_and_denial_routed_to_strategy_only(rig: Rig) -> None:
    ev, d = event(), denied()
    await rig.inbox.send(ev)
    await rig.inbox.send(d)
    assert [await recv(rig.strategy), await recv(rig.strategy)] == [ev, d]
    assert rig.contingent is not None and rig.contingent.try_recv() is None


async def test_denial_of_child_routed_to_contingent_only(rig: Rig) -> None:
    d, after = denied(parent="k1"), event(coid="after")
    await rig.inbox.send(d)
    await rig.inbox.send(after)
    assert await recv(rig.contingent) == d
    assert await recv(rig.strategy) == after  # the denial never reached the strategy


async def test_without_contingent_channel_children_routed_to_strategy(bare: Rig) -> None:
    ev, d = event(parent="k1"), denied(parent="k1")
    await bare.inbox.send(ev)
    await bare.inbox.send(d)
    assert [await recv(bare.strategy), await recv(bare.strategy)] == [ev, d]


async def test_event_of_unknown_strategy_with_parent_still_reaches_contingent(rig: Rig) -> None:
    ev = OrderEvent(client_order_id="x", strategy="gone", symbol=SYM, status=OrderStatus.FILLED, parent="k1")
    await rig.inbox.send(ev)
    assert await recv(rig.contingent) == ev
    assert rig.strategy.try_recv() is None

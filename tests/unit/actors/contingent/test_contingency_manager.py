"""ContingencyManager at actor level with a real Store and real channels: a stop fires from the
feed tap with its state committed before the child reaches the risk gate's channel, a restart
resumes an armed stop and releases a child that was written ahead but never sent, cancel_all
cancels, and a refused write-ahead sends nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from actors.contingent.base import OrderLookup
from actors.contingent.contingency_manager import (
    ContingencyManager,
    ContingentCommand,
    ContingentFeedback,
    segments,
)
from actors.contingent.effects import Notice, Persist, Release
from actors.contingent.single import StopOrder
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.contingent import ContingentRow, ContingentStatus
from actors.model.orders import CancelAll, CancelOrder, OrderIntent, OrderList, OrderStatus, OrderType, Side
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from adapters.storage.store import Store
from config.schema.trading import OrdersSection

from .trigger_helpers import SYM, Env, approved, denied, event, intent, trade

D = Decimal
S = ContingentStatus
T = TypeVar("T")
WITHIN_S = 5.0  # a guard against hangs only; every wait is on an event


class SpyStore:
    """The real store, with each committed write-ahead announced and an injectable failure."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.fail_next = 0
        self.failed = asyncio.Event()
        self.committed: Channel[tuple[ContingentRow, ...]] = Channel("committed", 1000)
        self.behind: Channel[tuple[ContingentRow, ...]] = Channel("behind", 1000)

    def next_client_order_id(self, prefix: str = "aa") -> str:
        return self.inner.next_client_order_id(prefix)

    async def save_contingents(self, rows: Sequence[ContingentRow]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.failed.set()
            raise OSError("disk full")
        await self.inner.save_contingents(rows)
        self.committed.try_send(tuple(rows))

    def save_contingents_nowait(self, rows: Sequence[ContingentRow]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.failed.set()
            raise OSError("store closed")
        self.inner.save_contingents_nowait(rows)
        self.behind.try_send(tuple(rows))

    async def active_contingents(self) -> list[ContingentRow]:
        return await self.inner.active_contingents()

    async def contingent(self, contingent_id: str) -> ContingentRow | None:
        return await self.inner.contingent(contingent_id)

    async def recent_contingents(self, limit: int = 100, *, active_only: bool = False) -> list[ContingentRow]:
        return await self.inner.recent_contingents(limit, active_only=active_only)


@dataclasses.dataclass
class Rig:
    store: SpyStore
    inbox: Channel[ContingentCommand]
    feedback: Channel[ContingentFeedback]
    intents: Channel[OrderIntent | OrderList]
    commands: Channel[CancelOrder]
    clock: MarketClock
    known: dict[str, OrderRecord]
    triggers: list[int]
    cm: ContingencyManager | None = None
    task: asyncio.Task[None] | None = None
    stored: dict[str, OrderRecord] = dataclasses.field(default_factory=dict)

    async def find_order(self, coid: str) -> OrderRecord | None:
        return self.stored.get(coid)

    def start(self) -> ContingencyManager:
        loaded = asyncio.Event()
        loaded.set()
        lookup: OrderLookup = self.known.get
        self.inbox = Channel("cm.inbox", 100)  # a fresh actor gets fresh channels
        self.cm = ContingencyManager(
            "contingent", inbox=self.inbox, feedback=self.feedback, intents=self.intents, commands=self.commands,
            store=self.store, clock=self.clock, settings=OrdersSection, support=NativeSupport(), venue_name="paper",
            lookup=lookup, orders_loaded=loaded, step_size=lambda _s: D("0.1"), on_trigger=self.triggers.append,
            find_order=self.find_order)
        self.task = asyncio.create_task(self.cm.main())
        return self.cm

    async def stop(self) -> None:
        self.inbox.close()
        assert self.task is not None
        await asyncio.wait_for(self.task, WITHIN_S)


async def recv(ch: Channel[T]) -> T:
    return await asyncio.wait_for(ch.recv(), WITHIN_S)


async def released(r: Rig) -> OrderIntent:
    """The next order the manager handed to the risk gate."""
    item = await recv(r.intents)
    assert isinstance(item, OrderIntent)
    return item


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await Store.open(tmp_path / "state" / "aaiti-paper-paper.db")
    r = Rig(store=SpyStore(store), inbox=Channel("cm.inbox", 100), feedback=Channel("cm.feedback", 100),
            intents=Channel("intents", 100), commands=Channel("commands", 100), clock=MarketClock(1_700_000_000_000),
            known={}, triggers=[])
    try:
        yield r
    finally:
        if r.task is not None and not r.task.done():
            r.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await r.task
        await store.close()


async def add_stop(r: Rig, **kw: Any) -> ContingentRow:
    await r.inbox.send(approved(intent(**kw)))
    (row,) = await recv(r.store.committed)
    return row


def body(row: ContingentRow | None) -> dict[str, Any]:
    assert row is not None
    out: dict[str, Any] = msgspec.json.decode(row.body)
    return out


async def test_stop_fires_from_the_tap_written_ahead_before_release(rig: Rig) -> None:
    cm = rig.start()
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    row = await add_stop(rig)
    assert row.status is S.WORKING and cm.quiet_on("BTC/USDT") and not cm.quiet_on(SYM)
    cm.on_market(trade(100.5))
    cm.on_market(trade(99.5, recv_ns=4242))
    # The trigger's state is queued on the store's one writer before the child is released, so it
    # commits with (or before) the child's own write-ahead at the order manager.
    assert (await recv(rig.store.behind))[0].status is S.TRIGGERED
    child = await released(rig)
    stored = await rig.store.contingent(row.id)  # read back the moment the release arrives
    assert stored is not None and stored.status is S.TRIGGERED
    assert body(stored)["child_id"] == child.client_order_id
    assert child.type is OrderType.MARKET and child.parent == row.id and child.protective
    assert rig.triggers == [4242] and cm.quiet_on(SYM)
    assert cm.counts() == {(row.kind, row.mode, S.TRIGGERED): 1}
    await rig.feedback.send(event(child.client_order_id, OrderStatus.FILLED, "5", parent=row.id))
    (final,) = await recv(rig.store.committed)
    assert final.status is S.DONE and cm.views() == []
    assert (await rig.store.contingent(row.id)).status is S.DONE  # type: ignore[union-attr]
    await rig.stop()


async def test_crossed_trigger_releases_from_the_tap_itself_or_in_order_once_the_gate_has_room(rig: Rig) -> None:
    cm = rig.start()
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    first = await add_stop(rig)
    cm.on_market(trade(99.0))  # nothing ahead of it: out before on_market returns, no task hop
    assert len(rig.intents) == 1 and cm.pending_work() == 0
    assert (await released(rig)).parent == first.id
    # The risk gate's channel is full: the child waits, in order, for the actor's task.
    second = await add_stop(rig, symbol="ETH/BTC")
    for _ in range(100):
        rig.intents.try_send(OrderIntent(strategy="x", symbol=SYM, side=Side.BUY))
    cm.on_market(trade(99.0, symbol="ETH/BTC"))
    assert cm.pending_work() >= 1
    for _ in range(100):
        await recv(rig.intents)
    child = await released(rig)
    assert child.parent == second.id and child.protective
    await rig.stop()


async def test_restart_resumes_an_armed_stop(rig: Rig) -> None:
    cm = rig.start()
    row = await add_stop(rig)
    await rig.stop()
    cm = rig.start()
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    assert [v.id for v in cm.views()] == [row.id] and not cm.quiet_on(SYM)
    cm.on_market(trade(100.0))
    child = await released(rig)
    assert child.parent == row.id
    await rig.stop()


async def test_restart_releases_a_child_written_ahead_but_never_sent(rig: Rig) -> None:
    env = Env()
    order = StopOrder.from_approved(approved(intent()), env.ctx())
    order.start(env.ctx())
    effects = order.on_market(trade(99.0), env.ctx())
    (child,) = [e.intent for e in effects if isinstance(e, Release)]
    await rig.store.inner.save_contingents([order.row()])  # crashed right after the write-ahead
    cm = rig.start()
    again = await released(rig)
    assert again == msgspec.structs.replace(child, origin_ns=0)
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    assert rig.triggers == []  # not a fresh trigger: no latency sample
    await rig.stop()


async def test_restart_does_not_resend_a_child_the_order_manager_knows(rig: Rig) -> None:
    env = Env()
    order = StopOrder.from_approved(approved(intent()), env.ctx())
    order.start(env.ctx())
    (child,) = [e.intent for e in order.on_market(trade(99.0), env.ctx()) if isinstance(e, Release)]
    await rig.store.inner.save_contingents([order.row()])
    rig.known[child.client_order_id] = OrderRecord(
        client_order_id=child.client_order_id, venue="paper", strategy="s1", symbol=SYM, side=Side.SELL,
        type=OrderType.MARKET, size=D("5"), status=OrderStatus.PARTIALLY_FILLED, filled=D("2"), parent=order.id)
    cm = rig.start()
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    (view,) = cm.views()
    assert view.legs[0].filled == "2" and view.status == "TRIGGERED"
    await rig.inbox.send(CancelAll(reason="kill"))
    cancel = await recv(rig.commands)  # effects run in order: a resend would be on intents already
    assert cancel == CancelOrder(client_order_id=child.client_order_id, reason="kill")
    assert len(rig.intents) == 0
    await rig.stop()


async def test_restart_takes_a_child_closed_in_an_earlier_run_from_the_store(rig: Rig) -> None:
    env = Env()
    order = StopOrder.from_approved(approved(intent()), env.ctx())
    order.start(env.ctx())
    (child,) = [e.intent for e in order.on_market(trade(99.0), env.ctx()) if isinstance(e, Release)]
    await rig.store.inner.save_contingents([order.row()])
    rig.stored[child.client_order_id] = OrderRecord(  # filled while we were down; not in the live table
        client_order_id=child.client_order_id, venue="paper", strategy="s1", symbol=SYM, side=Side.SELL,
        type=OrderType.MARKET, size=D("5"), status=OrderStatus.FILLED, filled=D("5"), parent=order.id)
    cm = rig.start()
    (final,) = await recv(rig.store.committed)
    assert final.id == order.id and final.status is S.DONE
    await asyncio.wait_for(cm.resumed.wait(), WITHIN_S)
    assert cm.views() == [] and len(rig.intents) == 0
    await rig.stop()


async def test_cancel_all_cancels_every_order(rig: Rig) -> None:
    cm = rig.start()
    armed = await add_stop(rig)
    fired = await add_stop(rig, symbol="ETH/BTC")
    cm.on_market(trade(99.0, symbol="ETH/BTC"))
    child = await released(rig)
    await recv(rig.store.behind)  # the trigger's state, queued ahead of the child
    await rig.inbox.send(CancelAll(reason="kill"))
    cancel = await recv(rig.commands)
    assert cancel.client_order_id == child.client_order_id and cancel.reason == "kill"
    for row in (armed, fired):
        stored = await rig.store.contingent(row.id)
        assert stored is not None and stored.status is S.CANCELED
    assert cm.views() == [] and cm.quiet_on(SYM)
    assert await rig.store.active_contingents() == []
    await rig.stop()


async def test_cancel_one_by_contingent_id(rig: Rig) -> None:
    cm = rig.start()
    row = await add_stop(rig)
    await rig.inbox.send(CancelOrder(client_order_id=row.id, reason="strategy"))
    (final,) = await recv(rig.store.committed)
    assert final.id == row.id and final.status is S.CANCELED and cm.views() == []
    await rig.stop()


async def test_refused_write_ahead_sends_nothing_and_retries_on_the_next_event(rig: Rig) -> None:
    cm = rig.start()
    row = await add_stop(rig)
    rig.store.fail_next = 1
    cm.on_market(trade(99.0))
    await asyncio.wait_for(rig.store.failed.wait(), WITHIN_S)  # the manager reverts before it yields
    assert len(rig.intents) == 0 and cm.write_ahead_failures == 1
    (view,) = cm.views()
    assert view.status == "WORKING" and not cm.quiet_on(SYM)
    cm.on_market(trade(97.0))
    child = await released(rig)
    stored = await rig.store.contingent(row.id)
    assert stored is not None and body(stored)["child_id"] == child.client_order_id
    assert len(rig.intents) == 0
    await rig.stop()


async def test_denied_child_is_retried_on_business_time(rig: Rig) -> None:
    cm = rig.start()
    await add_stop(rig)
    cm.on_market(trade(99.0))
    child = await released(rig)
    await rig.feedback.send(denied(child))
    await recv(rig.store.behind)  # the retry is noted (saved behind)
    assert cm.book.next_deadline_ms() is not None
    rig.clock.advance(rig.clock.now_ms() + 1000)
    cm.on_market(trade(99.0))  # the tap sees the deadline passed on business time
    again = await released(rig)
    assert again.client_order_id == child.client_order_id and again.origin_ns == 0
    await rig.stop()


def test_segments_split_at_durable_saves() -> None:
    row = ContingentRow(id="c", strategy="s", symbol=SYM, kind=StopOrder.kind, mode=StopOrder.from_approved(
        approved(intent()), Env().ctx()).mode, status=S.WORKING, body="{}")
    a, b = Persist(rows=(row,)), Persist(rows=(row,), durable=False)
    n = Notice(event="x")
    assert segments([n, a, b, n, a]) == [[n], [a, b, n], [a]]

"""Test harness for the order manager and reconciler: real Store, real PaperVenue, real channels."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.kernel.channel import Channel
from actors.model.market import Quote, Trade
from actors.model.orders import (
    ApprovedIntent,
    Balance,
    Fill,
    OrderEvent,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueOrder,
)
from actors.orders.order_manager import OrderCommand, OrderManager
from actors.ports.venue import VenueError, VenueUnavailable, VenueUpdate
from adapters.paper_venue import PaperVenue
from adapters.storage import Store
from config.schema.trading import InstrumentSection, PaperVenueSection

SYMBOL = "XRP/ETH"
INSTRUMENTS = {SYMBOL: InstrumentSection(base="XRP", quote="ETH")}


class ProxyVenue:
    """The real paper venue behind knobs a test can turn (failures, call counts, hooks)."""

    def __init__(self, inner: PaperVenue) -> None:
        self.inner = inner
        self.name = inner.name
        self.submit_calls: list[OrderRequest] = []
        self.fail_submit: VenueError | None = None
        self.submit_reaches_venue = False  # with fail_submit: the order is placed, then the answer is lost
        self.fail_query: VenueError | None = None
        self.before_submit: Callable[[OrderRequest], None] | None = None
        self.mute_updates = False  # the update stream goes silent (a dropped socket)
        self.fail_open_orders = 0  # this many open_orders() calls raise VenueUnavailable
        self.stale_open_orders: list[VenueOrder] | None = None  # open_orders() answers this (an old read)
        self.before_balances: Callable[[int], None] | None = None  # called with the call number (1, 2, ...)
        self.balances_calls = 0
        self.cancel_calls: list[str] = []

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def submit(self, request: OrderRequest) -> VenueOrder:
        self.submit_calls.append(request)
        if self.before_submit is not None:
            self.before_submit(request)
        if self.fail_submit is not None:
            if self.submit_reaches_venue:
                await self.inner.submit(request)
            raise self.fail_submit
        return await self.inner.submit(request)

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        self.cancel_calls.append(client_order_id)
        return await self.inner.cancel(client_order_id, symbol)

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        if self.fail_query is not None:
            raise self.fail_query
        return await self.inner.query(client_order_id, symbol)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        if self.fail_open_orders > 0:
            self.fail_open_orders -= 1
            raise VenueUnavailable("DISCONNECTED", "venue down")
        if self.stale_open_orders is not None:
            return list(self.stale_open_orders)
        return await self.inner.open_orders(symbol)

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        return await self.inner.fills_since(since_ms, symbol)

    async def balances(self) -> dict[str, Balance]:
        self.balances_calls += 1
        if self.before_balances is not None:
            self.before_balances(self.balances_calls)
        return await self.inner.balances()

    def updates(self) -> AsyncIterator[VenueUpdate]:
        return _silent() if self.mute_updates else self.inner.updates()


async def _silent() -> AsyncIterator[VenueUpdate]:
    await asyncio.Event().wait()
    for _ in ():
        yield _


class Harness:
    """One order manager wired to a store and a paper venue."""

    def __init__(
        self, tmp: Path, *, latency_ms: float = 0.0, venue_name: str = "paper", initial_eth: str = "10"
    ) -> None:
        self.tmp = tmp
        self.db_path = tmp / "state" / f"aaiti-paper-{venue_name}.db"
        self.paper = PaperVenue(
            tmp / "paper-account.db", PaperVenueSection(
                latency_ms=latency_ms, fsync=False, initial_balances={"ETH": Decimal(initial_eth), "XRP": Decimal(0)}
            ), INSTRUMENTS,
            venue_name,
        )
        self.venue = ProxyVenue(self.paper)
        self.store: Store | None = None
        self.om: OrderManager | None = None
        self.task: asyncio.Task[None] | None = None
        self.commands: Channel[OrderCommand] = Channel("orders", 256)
        self.events: Channel[OrderEvent] = Channel("order_events", 4096)
        self.seen: list[OrderEvent] = []

    async def start(self, **om_kw: Any) -> OrderManager:
        if not self.paper._started:
            await self.venue.start()
            self.quote(0.00030, 0.00031)
        self.store = await Store.open(self.db_path)
        self.commands = Channel("orders", 256)
        self.events = Channel("order_events", 4096)
        self.om = OrderManager("order_manager", venue=self.venue, store=self.store, commands=self.commands,
                               events=self.events, **om_kw)
        self.task = asyncio.create_task(self.om.main())
        await asyncio.wait_for(self.om.loaded.wait(), 5)
        return self.om

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def close(self) -> None:
        await self.stop()
        await self.venue.close()

    def quote(self, bid: float, ask: float) -> None:
        self.paper.on_market(Quote(symbol=SYMBOL, ts_ms=1, bid=bid, ask=ask))

    def trade(self, price: float, size: float) -> None:
        self.paper.on_market(Trade(symbol=SYMBOL, ts_ms=1, price=price, size=size, side="sell"))

    async def send(
        self, side: Side = Side.BUY, size: str = "100", type_: OrderType = OrderType.MARKET,
        price: str | None = None, strategy: str = "s1",
    ) -> None:
        intent = OrderIntent(strategy=strategy, symbol=SYMBOL, side=side, type=type_, size=Decimal(size),
                             limit_price=Decimal(price) if price else None)
        await self.commands.send(ApprovedIntent(intent=intent, size=Decimal(size), reference_price=Decimal(1)))

    async def until(self, pred: Callable[[OrderEvent], bool], within_s: float = 5.0) -> OrderEvent:
        """Receive events until one matches."""
        async def wait() -> OrderEvent:
            while True:
                ev = await self.events.recv()
                self.seen.append(ev)
                if pred(ev):
                    return ev
        return await asyncio.wait_for(wait(), within_s)

    async def until_status(self, status: OrderStatus, coid: str | None = None) -> OrderEvent:
        return await self.until(lambda e: e.status is status and (coid is None or e.client_order_id == coid))

    def history(self, coid: str) -> list[tuple[OrderStatus | None, OrderStatus]]:
        return [(e.previous, e.status) for e in self.seen if e.client_order_id == coid]

    def committed_status(self, coid: str) -> str | None:
        """Read the state file directly (another connection): only committed rows are visible."""
        con = sqlite3.connect(self.db_path)
        try:
            row = con.execute("SELECT status FROM orders WHERE client_order_id = ?", (coid,)).fetchone()
        finally:
            con.close()
        return row[0] if row else None

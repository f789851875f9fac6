"""Hooks used by lockstep replays and latency metrics: the feed's after_bars, the strategy
host's wait_idle, the order manager's on_submit / last_intent_id, and the risk gate releasing
pending approvals once the order manager has taken them in (even when already filled)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.feed import Feed
from actors.kernel.channel import Channel
from actors.model.market import Bar, MarketEvent, Quote
from actors.model.orders import OrderIntent, OrderStatus, Side
from actors.strategies import EmaCross
from actors.strategy_api import Strategy, StrategyContext
from actors.strategy_host import OrderFeedback, StrategyHost
from adapters.storage.store import Store
from config.schema.market import FeedSection
from config.schema.trading import RiskSection
from tests.unit.actors.orders_harness import Harness
from tests.unit.actors.test_risk_gate import make_rig, size_of

SYM = "XRP/ETH"


class Quotes:
    """A finite source of quotes, one per 30 s of feed time."""

    name = "quotes"
    symbols = (SYM,)

    def __init__(self, n: int) -> None:
        self.n = n

    async def events(self) -> AsyncIterator[MarketEvent]:
        for i in range(self.n):
            yield Quote(symbol=SYM, ts_ms=i * 30_000, recv_ns=i + 1, bid=1.0 + i, ask=1.0 + i)

    def stats(self) -> Any:
        return None

    async def close(self) -> None:
        pass


class Recorder(Strategy[Any]):
    """Records the bars it sees."""

    def on_start(self) -> None:
        self.bars: list[int] = []

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar.ts_ms)


async def test_feed_awaits_after_bars_and_host_wait_idle_sees_each_bar_handled() -> None:
    feed = Feed(FeedSection(symbols=(SYM,), timeframes=("1m",), bars_from="mid", on_end="stop"), Quotes(8))
    events: Channel[OrderFeedback] = Channel("events", 8)
    intents: Channel[OrderIntent] = Channel("intents", 8)
    host = StrategyHost.attach(feed, StrategyContext("rec", (SYM,), "1m"), Recorder, order_events=events,
                               intents=intents)
    handled_at_barrier: list[list[int]] = []

    async def lockstep() -> None:
        await host.wait_idle()
        assert isinstance(host.strategy, Recorder)
        handled_at_barrier.append(list(host.strategy.bars))

    feed.after_bars = lockstep
    host_task = asyncio.create_task(host.main())
    await asyncio.sleep(0)
    await asyncio.wait_for(feed.main(), 5)
    await asyncio.wait_for(host_task, 5)
    # 8 quotes, 30 s apart: bars 0, 60k, 120k close on the way, 180k is flushed at the end.
    assert handled_at_barrier == [[0], [0, 60_000], [0, 60_000, 120_000], [0, 60_000, 120_000, 180_000]]


async def test_wait_idle_returns_when_the_host_stops() -> None:
    feed = Feed(FeedSection(symbols=(SYM,), timeframes=("1m",), bars_from="mid", on_end="stop"), Quotes(0))
    host = StrategyHost.attach(feed, StrategyContext("ema", (SYM,), "1m"), EmaCross,
                               order_events=Channel("e", 8), intents=Channel("i", 8))
    host_task = asyncio.create_task(host.main())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(host.wait_idle())
    await asyncio.sleep(0)
    host_task.cancel()
    await asyncio.gather(host_task, return_exceptions=True)
    await asyncio.wait_for(waiter, 1)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


async def test_on_submit_gets_the_origin_right_before_the_venue_call(h: Harness) -> None:
    order: list[str] = []
    origins: list[int] = []

    def on_submit(origin_ns: int) -> None:
        origins.append(origin_ns)
        order.append("hook")

    h.venue.before_submit = lambda req: order.append("venue")
    om = await h.start(on_submit=on_submit)
    from actors.model.orders import ApprovedIntent

    intent = OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, size=Decimal(100), intent_id="s1-7",
                         origin_ns=123_456)
    await h.commands.send(ApprovedIntent(intent=intent, size=Decimal(100), reference_price=Decimal(1)))
    await h.until_status(OrderStatus.FILLED)
    assert origins == [123_456] and order == ["hook", "venue"]
    assert om.last_intent_id == "s1-7" and om.snapshot().last_intent_id == "s1-7"


async def test_a_failing_on_submit_hook_does_not_stop_the_order(h: Harness) -> None:
    def boom(origin_ns: int) -> None:
        raise RuntimeError("metrics down")

    await h.start(on_submit=boom)
    await h.send(size="100")
    await h.until_status(OrderStatus.FILLED)


async def test_pending_approvals_released_once_taken_in_even_if_already_filled(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_open_orders=1, pending_approval_ttl_s=60.0))

    def buy(intent_id: str) -> OrderIntent:
        return OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, size=Decimal("100"), intent_id=intent_id)

    assert size_of(await rig.gate.submit(buy("a")))
    assert rig.gate.snapshot().open_orders == 1  # pending: not in the snapshot yet
    # The order manager took "a" in and it filled at once: no open order shows it.
    rig.portfolio.publish(balances={"ETH": Decimal("9.8"), "XRP": Decimal(100)}, last_intent_id="a")
    assert rig.gate.snapshot().open_orders == 0
    assert size_of(await rig.gate.submit(buy("b")))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "risk.db")
    yield s
    await s.close()

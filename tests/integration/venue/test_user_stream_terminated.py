"""The venue ends the user-data subscription (``eventStreamTerminated``): the ccxt venue must notice.

ccxt.pro reacts to ``eventStreamTerminated`` by forgetting its subscription record, and the next
``watch_orders``/``watch_my_trades`` to start subscribes again without a word. A watch that the
venue's engine re-armed (after a report) but that the event loop starts only *after* ccxt handled
the end of the stream does exactly that: the session looks intact again, new reports flow, and
whatever executed in between is never sent. Under CPU load this happened in the chaos run (the
engine never logged ``ccxt_venue.user_stream_down``); here the scheduling is forced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors.model.orders import OrderStatus
from adapters.binance_sim import BinanceSimulator
from adapters.ccxt_venue import CcxtVenue
from tests.integration.adapters.conftest import STATIC_CONFIG
from tests.integration.adapters.test_ccxt_venue import SYM, SYM_ID, WAIT, Collector, limit, market, venue_config

#: Far beyond the test's waits: only noticing the end of the subscription can recover the fill.
IDLE_TIMEOUT_S = 600.0


@pytest.fixture
async def sim() -> AsyncIterator[BinanceSimulator]:
    """A simulator whose market moves only on injected prints."""
    simulator = BinanceSimulator(STATIC_CONFIG)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def venue(sim: BinanceSimulator) -> AsyncIterator[CcxtVenue]:
    """A started ccxt venue against ``sim`` whose idle timeout never fires during a test."""
    config = venue_config(sim, user_stream_idle_timeout_s=IDLE_TIMEOUT_S)
    ccxt_venue = CcxtVenue(config, name="binance", symbols=[SYM], environ={})
    await ccxt_venue.start()
    yield ccxt_venue
    await ccxt_venue.close()


@pytest.fixture
async def updates(venue: CcxtVenue) -> AsyncIterator[Collector]:
    """The venue's updates, collected in the background."""
    collector = Collector(venue)
    yield collector
    await collector.close()


async def test_terminated_stream_noticed_when_a_rearmed_watch_starts_after_the_end(
    sim: BinanceSimulator, venue: CcxtVenue, updates: Collector
) -> None:
    ex = venue.exchange
    handle_terminated = ex.handle_event_stream_terminated
    watch_orders = ex.watch_orders
    ended = asyncio.Event()
    start_late = False

    def on_terminated(client: Any, message: Any) -> None:
        handle_terminated(client, message)
        sim.inject_trade(SYM_ID, "40000", "0.01")  # fills the order after the end: reported to nobody
        ended.set()

    async def late_watch_orders(*args: Any, **kwargs: Any) -> Any:
        nonlocal start_late
        if start_late:  # the re-arm after the order's report: it starts only once ccxt handled the end
            start_late = False
            sim.terminate_user_streams()
            await ended.wait()  # unless the session already ended, ccxt now subscribes again, silently
        return await watch_orders(*args, **kwargs)

    ex.handle_event_stream_terminated = on_terminated
    ex.watch_orders = late_watch_orders
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    with capture_logs() as logs:
        start_late = True
        assert (await venue.submit(limit("term-late", size="0.01"))).status is OrderStatus.ACCEPTED
        await updates.wait_for(
            lambda: updates.last_status("term-late") is OrderStatus.FILLED and updates.fills("term-late"))
    assert ended.is_set()
    downs = [e for e in logs if e["event"] == "ccxt_venue.user_stream_down"]
    assert downs and downs[0]["reason"].startswith("terminated:"), downs
    stats = venue.stats()
    assert stats.stalls == 0 and stats.reconnects["user"] >= 1
    # the stream comes back and delivers again
    await sim.wait_for_user_subscription(timeout_s=WAIT)
    await venue.submit(market("term-next"))
    await updates.wait_for(lambda: updates.fills("term-next"))

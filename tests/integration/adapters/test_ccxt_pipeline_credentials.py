"""The daemon's pipeline (``daemon.pipeline.build_pipeline``) over a CcxtVenue whose credentials the
Binance simulator refuses (it checks signatures): trading HALTED with the reason, the order
manager up, no supervisor restart, and the venue no longer called once it refused us."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.kernel.actor import ActorState
from actors.kernel.clock import WallClock
from actors.kernel.supervisor import Supervisor
from actors.model.control import TradingState
from actors.model.market import MarketEvent
from adapters.binance_sim import BinanceSimulator
from adapters.ccxt_venue import CcxtVenue
from adapters.storage.store import Store
from config.loader import parse_config_text
from daemon.pipeline import Pipeline, build_pipeline, supervisor_policy
from tests.integration.adapters.conftest import STATIC_CONFIG, SimFactory
from tests.integration.adapters.test_ccxt_venue import BAD_SECRET, venue_config
from tests.waiting import wait_until

SYM = "BTC/USDT"
WAIT = 10.0
PRIVATE = ("/api/v3/account", "/api/v3/openOrders", "/api/v3/myTrades", "/api/v3/order", "/api/v3/allOrders")

CONFIG = """
[daemon]
mode = "live"

[feed]
source = "synthetic"
symbols = ["BTC/USDT"]
timeframes = ["1m"]

[instruments."BTC/USDT"]
base = "BTC"
quote = "USDT"
tick_size = "0.01"
step_size = "0.00001"
min_qty = "0.00001"
min_notional = "5"

[venue]
kind = "ccxt"
name = "binance-sim"
"""


class NoMarketData:
    """A market-data source that never delivers (the feed waits for reconciliation anyway)."""

    name = "none"
    symbols = (SYM,)

    async def events(self) -> AsyncIterator[MarketEvent]:
        await asyncio.Event().wait()
        for _ in ():
            yield _

    def stats(self) -> None:
        return None

    async def close(self) -> None:
        pass


def private_requests(sim: BinanceSimulator) -> int:
    return sum(1 for path in PRIVATE for method in ("GET", "POST", "DELETE") for _ in sim.requests.find(method, path))


@contextlib.asynccontextmanager
async def running_pipeline(
    sim: BinanceSimulator, state: Path, secret: str
) -> AsyncIterator[tuple[Pipeline, Supervisor]]:
    """The pipeline over a started CcxtVenue with ``secret``, under a root supervisor as the daemon runs it."""
    cfg = parse_config_text(CONFIG, "test")
    venue = CcxtVenue(venue_config(sim, secret=secret), name="binance-sim", symbols=[SYM], environ={})
    await venue.start()
    store = await Store.open(state / "state.db")
    built = build_pipeline(cfg, store=store, venue=venue, source=NoMarketData(), clock=WallClock())
    assert built.order_manager.control is built.control
    root = Supervisor("root", built.children(), supervisor_policy(cfg.supervisor))
    task = asyncio.create_task(root.main())
    try:
        yield built, root
        assert not task.done(), task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
        await store.close()


async def assert_halted_for_credentials(built: Pipeline, root: Supervisor) -> None:
    changed = await asyncio.wait_for(built.state_events.recv(), WAIT)
    assert changed.state is TradingState.HALTED and built.risk_gate.trading_state is TradingState.HALTED
    for text in ("binance-sim", "-1022", "refused the API credentials", "IP allow-list", "permissions"):
        assert text in changed.reason
    assert BAD_SECRET not in changed.reason
    assert built.order_manager.state is ActorState.RUNNING
    assert root.total_restarts == 0 and built.order_path.total_restarts == 0, built.order_path.last_errors


@pytest.fixture
async def sim(make_sim: SimFactory) -> BinanceSimulator:
    return await make_sim(STATIC_CONFIG)


async def test_first_start_with_wrong_credentials_halts_trading_and_keeps_running(
    sim: BinanceSimulator, tmp_path: Path
) -> None:
    async with running_pipeline(sim, tmp_path, BAD_SECRET) as (built, root):
        await assert_halted_for_credentials(built, root)
        assert not built.order_manager.loaded.is_set()  # waiting for the venue, not failing
        assert private_requests(sim) == 1  # the refused balance read, never repeated meanwhile


async def test_restart_with_wrong_credentials_halts_trading_and_stops_calling_the_venue(
    sim: BinanceSimulator, tmp_path: Path
) -> None:
    async with running_pipeline(sim, tmp_path, sim.config.api_secret) as (built, _):
        await asyncio.wait_for(built.reconciler.ready.wait(), WAIT)  # a first start: the ledger is stored
    sim.requests.clear()
    async with running_pipeline(sim, tmp_path, BAD_SECRET) as (built, root):
        await assert_halted_for_credentials(built, root)  # learnt from the venue's update stream
        await wait_until(lambda: built.reconciler.passes >= 2, WAIT)  # calls sent before the refusal are back
        refused = private_requests(sim)
        passes = built.reconciler.passes
        await wait_until(lambda: built.reconciler.passes >= passes + 2, WAIT)  # the reconciler keeps trying...
        assert private_requests(sim) == refused  # ...but nothing reaches the venue any more
        assert root.total_restarts == 0 and built.order_manager.state is ActorState.RUNNING

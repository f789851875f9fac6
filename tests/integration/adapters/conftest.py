"""Fixtures: a Binance simulator on an ephemeral 127.0.0.1 port plus unchanged ccxt.pro clients."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from adapters.binance_sim import BinanceSimulator, MarketSourceConfig, SimulatorConfig

# A lively but cheap market: a print per symbol every 20 ms, tickers/klines every 50 ms.
FAST_CONFIG = SimulatorConfig(
    market=MarketSourceConfig(kind="synthetic", tick_interval_ms=20, history_minutes=120),
    ticker_interval_ms=50,
    kline_interval_ms=50,
)
# Nothing moves unless a test prints: for deterministic order lifecycles.
STATIC_CONFIG = dataclasses.replace(FAST_CONFIG, market=MarketSourceConfig(kind="static", history_minutes=120))

SimFactory = Callable[..., Awaitable[BinanceSimulator]]
ClientFactory = Callable[..., Awaitable[Any]]


@dataclass
class Venue:
    """A running simulator and a ccxt.pro binance client configured against it."""

    sim: BinanceSimulator
    ex: Any


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    """Start simulators (``make_sim(config=None, **overrides)``); all stopped at teardown."""
    sims: list[BinanceSimulator] = []

    async def factory(config: SimulatorConfig | None = None, **overrides: Any) -> BinanceSimulator:
        cfg = dataclasses.replace(config or FAST_CONFIG, **overrides)
        sim = BinanceSimulator(cfg)
        await sim.start()
        sims.append(sim)
        return sim

    yield factory
    for sim in reversed(sims):
        await sim.stop()


@pytest.fixture
async def make_client(make_sim: SimFactory) -> AsyncIterator[ClientFactory]:
    """Build ccxt.pro binance clients for a simulator; closed (before the simulators) at teardown."""
    clients: list[Any] = []

    async def factory(
        sim: BinanceSimulator, *, load: bool = True, enable_rate_limit: bool = False, **kwargs: Any
    ) -> Any:
        ex = ccxtpro.binance(sim.ccxt_config(enable_rate_limit=enable_rate_limit, **kwargs))
        # close() otherwise sleeps 250 ms for TLS shutdown; there is no TLS on loopback.
        ex.timeout_on_exit = 0
        clients.append(ex)
        if load:
            await ex.load_markets()
        return ex

    yield factory
    for ex in reversed(clients):
        await ex.close()


@pytest.fixture
async def sim(make_sim: SimFactory) -> BinanceSimulator:
    """Simulator with a running synthetic market."""
    return await make_sim()


@pytest.fixture
async def static_sim(make_sim: SimFactory) -> BinanceSimulator:
    """Simulator whose market only moves on injected prints."""
    return await make_sim(STATIC_CONFIG)


@pytest.fixture
async def venue(sim: BinanceSimulator, make_client: ClientFactory) -> Venue:
    """Synthetic-market simulator + loaded ccxt.pro client."""
    return Venue(sim, await make_client(sim))


@pytest.fixture
async def static_venue(static_sim: BinanceSimulator, make_client: ClientFactory) -> Venue:
    """Static-market simulator + loaded ccxt.pro client."""
    return Venue(static_sim, await make_client(static_sim))

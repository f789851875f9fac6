"""The in-process Binance simulator the daemon starts when ``venue.ccxt.start_simulator`` asks for it.

The simulator is a test double: production adapters never import it. The process shell is
the one place that may put it next to the ccxt adapter, so a config can run the live code
path end to end on loopback, offline (``start_simulator = true``). The simulator is
imported only when it is started: a daemon that does not ask for it never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.ccxt_venue.client import SIMULATOR_API_KEY, SIMULATOR_API_SECRET
from config.schema.trading import CcxtVenueSection

if TYPE_CHECKING:
    from adapters.binance_sim import BinanceSimulator

__all__ = ["start_simulator"]


async def start_simulator(cfg: CcxtVenueSection) -> BinanceSimulator | None:
    """Start the in-process Binance simulator ``cfg`` asks for (``start_simulator``); None if not asked.

    Binds 127.0.0.1:``simulator_port`` (0 = ephemeral: then point ``base_url`` at the
    returned simulator's ``base_url``). It accepts the fixed test keys the ccxt adapter uses
    when no credentials are configured. The caller stops it (``await sim.stop()``) after the
    venue and the market source are closed.
    """
    if not cfg.start_simulator:
        return None
    from adapters.binance_sim import BinanceSimulator, SimulatorConfig

    sim = BinanceSimulator(
        SimulatorConfig(port=cfg.simulator_port, api_key=SIMULATOR_API_KEY, api_secret=SIMULATOR_API_SECRET)
    )
    await sim.start()
    return sim

"""A Binance SPOT protocol simulator on 127.0.0.1 that the unchanged ccxt client works against.

Wire behaviour follows Binance spot as the unchanged ccxt client speaks it: REST ``/api/v3``, market streams at
``/stream/ws/{n}``, the WebSocket API at ``/ws-api/v3``, Binance error codes, and the
fault-injection checklist of its §7 (see :class:`FaultPlan`).
"""

from adapters.binance_sim.ccxt_support import ccxt_config, loopback_api_urls, point_ccxt_at
from adapters.binance_sim.config import (
    FaultConfig,
    HistoryFile,
    MarketSourceConfig,
    SimulatorConfig,
    SymbolConfig,
    default_balances,
    default_symbols,
)
from adapters.binance_sim.faults import FaultPlan, RestFault
from adapters.binance_sim.requestlog import LoggedRequest, RequestLog
from adapters.binance_sim.server import BinanceSimulator, run_simulator
from adapters.binance_sim.signing import sign

__all__ = [
    "BinanceSimulator",
    "FaultConfig",
    "FaultPlan",
    "HistoryFile",
    "LoggedRequest",
    "MarketSourceConfig",
    "RequestLog",
    "RestFault",
    "SimulatorConfig",
    "SymbolConfig",
    "ccxt_config",
    "default_balances",
    "default_symbols",
    "loopback_api_urls",
    "point_ccxt_at",
    "run_simulator",
    "sign",
]

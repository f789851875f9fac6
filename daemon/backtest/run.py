"""What a finished backtest produced: the plain record ``runner`` fills and ``result`` reads."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from actors.model.market import Bar
from actors.model.orders import Fill
from actors.model.records import OrderRecord
from actors.risk.state import RiskSnapshot

__all__ = ["BacktestRun", "DataFileInfo", "StrategyError"]


@dataclasses.dataclass(frozen=True)
class DataFileInfo:
    """One data file the run read: its path as written in the config, hash and row count."""

    path: str
    sha256: str
    rows: int


@dataclasses.dataclass(frozen=True)
class StrategyError:
    """A strategy instance that raised: its last error and how often it was restarted."""

    strategy: str
    error: str
    restarts: int


@dataclasses.dataclass(frozen=True)
class BacktestRun:
    """Everything a finished backtest produced (inputs to ``daemon.backtest.result``).

    ``orders`` oldest first and ``fills`` in stored order, as in the state store; ``bars``
    symbol -> timeframe -> the bars the feed built, in order; ``from_ms``/``to_ms`` the window
    (bounds not given are the data's first and last day, whole UTC days); ``first_event_ms``/
    ``last_event_ms`` the market events actually replayed; ``final_balances`` the paper
    venue's own account at the end; ``gave_up`` the root supervisor's reason if it gave up.
    """

    config_path: str
    config_sha256: str
    overrides: dict[str, Any]
    seed: int
    data_files: tuple[DataFileInfo, ...]
    from_ms: int
    to_ms: int
    first_event_ms: int
    last_event_ms: int
    events: int
    quote_asset: str
    base_assets: dict[str, str]
    strategies: tuple[str, ...]
    timeframes: tuple[str, ...]
    initial_balances: dict[str, Decimal]
    final_balances: dict[str, Decimal]
    orders: list[OrderRecord]
    fills: list[Fill]
    bars: dict[str, dict[str, list[Bar]]]
    denials: dict[str, int]
    risk: RiskSnapshot
    strategy_errors: tuple[StrategyError, ...]
    gave_up: str | None
    lockstep_timeouts: int

"""The narrow, read-mostly view of the running daemon that the admin API and metrics use.

Reads are published snapshots (each actor's ``snapshot()``, the supervisor tree's
statuses, channel counters, the contingent-order manager's views) or store queries; the
only writes are messages: a trading state command to the risk gate, an order command to
the order manager or to the contingent-order manager, a reload through the one reload
path, a strategy stop/start through its supervisor. Admin and metrics
depend on this Protocol, not on ``App``, so the shell has no import cycle and a test can
serve the admin API from any implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from actors.kernel.channel import ChannelStats
from actors.kernel.supervisor import ChildStatus
from actors.model.contingent import ContingentView
from actors.model.control import HealthVerdict, SetTradingState, TradingState
from actors.model.orders import CancelAll, CancelOrder
from actors.ports.capabilities import ConnectionHealth
from config.loader import LoadedConfig
from config.schema.root import AaitiConfig
from daemon.logging_setup import LogRing
from daemon.reloader import ReloadResult

if TYPE_CHECKING:
    from actors.bar_log import BarHistory
    from actors.contingent.book import CountKey
    from actors.feed_state import FeedSnapshot
    from actors.orders.order_manager import OrderManagerSnapshot
    from actors.risk.risk_gate import RiskSnapshot
    from adapters.storage.store import Store

__all__ = ["DaemonView"]


class DaemonView(Protocol):
    """What the admin API and the metrics exporter may see of, and ask of, the daemon."""

    @property
    def config(self) -> AaitiConfig:
        """The running config."""
        ...

    @property
    def loaded(self) -> LoadedConfig:
        """The running config with its path, version and load time."""
        ...

    @property
    def started_at_ms(self) -> int:
        """Wall-clock start time of the process, epoch ms."""
        ...

    @property
    def store(self) -> Store | None:
        """The state store once open (read queries only)."""
        ...

    @property
    def log_ring(self) -> LogRing:
        """The in-memory ring of recent log records."""
        ...

    def health(self) -> HealthVerdict:
        """The watchdog's latest verdict."""
        ...

    def loop_lag_ms(self) -> float:
        """The watchdog's latest event-loop lag sample."""
        ...

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready, or the reasons why not."""
        ...

    def trading_state(self) -> tuple[TradingState, bool]:
        """The risk gate's trading state and kill switch."""
        ...

    def actor_statuses(self) -> list[ChildStatus]:
        """Every supervised actor's status, depth first."""
        ...

    def channel_stats(self) -> list[ChannelStats]:
        """Counters of every channel between actors."""
        ...

    def connection_health(self) -> ConnectionHealth:
        """Breakers and reconnects of the venue and the market-data source together."""
        ...

    def feed_snapshot(self) -> FeedSnapshot | None:
        """The feed's freshness and counters (None before it is built)."""
        ...

    def order_snapshot(self) -> OrderManagerSnapshot | None:
        """The order manager's published snapshot."""
        ...

    def risk_snapshot(self) -> RiskSnapshot | None:
        """The risk gate's published snapshot."""
        ...

    def reference_price(self, symbol: str) -> Decimal | None:
        """The latest reference (mark) price the risk gate holds for ``symbol``."""
        ...

    def contingent_views(self) -> list[ContingentView]:
        """The contingent-order manager's active orders (empty before the pipeline is built)."""
        ...

    def contingent_counts(self) -> dict[CountKey, int]:
        """Active contingent orders by (kind, mode, status)."""
        ...

    def contingent_completed(self) -> dict[CountKey, int]:
        """Contingent orders finished since the manager (re)started, by (kind, mode, final status)."""
        ...

    def reconcile_discrepancies(self) -> dict[str, int]:
        """Discrepancies found by kind since start."""
        ...

    def reload_counts(self) -> dict[str, int]:
        """Config reloads by result."""
        ...

    def sd_notify_errors(self) -> int:
        """Failed sd_notify sends."""
        ...

    def strategy_names(self) -> Sequence[str]:
        """Configured strategy instances."""
        ...

    def recent_bars(self) -> BarHistory:
        """The newest closed bars per (symbol, timeframe) (empty before the pipeline is built)."""
        ...

    def equity_history(self) -> Sequence[tuple[int, Decimal]]:
        """Sampled ``(wall-clock ms, equity)`` pairs, oldest first, bounded."""
        ...

    async def metrics_exposition(self) -> bytes:
        """The Prometheus text exposition."""
        ...

    async def reload_config(self, source: str) -> ReloadResult:
        """Reload through the one serialized reload path."""
        ...

    async def set_trading_state(self, cmd: SetTradingState) -> TradingState:
        """Send a trading-state command to the risk gate and wait for the new state."""
        ...

    async def send_order_command(self, cmd: CancelOrder | CancelAll) -> None:
        """Send a command to the order manager."""
        ...

    async def send_contingent_command(self, cmd: CancelOrder | CancelAll) -> None:
        """Send a command to the contingent-order manager (``CancelOrder`` by contingent id)."""
        ...

    async def stop_strategy(self, name: str) -> bool:
        """Stop a strategy instance; False if unknown."""
        ...

    def start_strategy(self, name: str) -> bool:
        """Start a stopped strategy instance; False if unknown."""
        ...

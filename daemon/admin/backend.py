"""What the admin server needs from the running daemon: the ``AdminBackend`` protocol.

The composition root (``App``) implements it. Everything is data: reads return plain
mappings / sequences of JSON-able values or msgspec Structs / dataclasses (encoded by
msgspec: ``Decimal`` → string, enums → value), taken from snapshots the actors publish —
the admin never reaches into an actor. Synchronous methods must be cheap (no I/O); the
``async`` ones may query the store or send a command message and await its outcome.

Commands signal refusals by raising an ``AdminError`` subclass (``NotFound``,
``Conflict``, ``KillSwitchEngaged``, ``Unavailable``); the server turns it into
``{"error": code, "message": ...}`` with the matching HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from actors.bar_log import BarHistory
from actors.model.control import HealthVerdict
from actors.model.orders import OrderStatus
from config.loader import LoadedConfig
from config.render import config_to_plain
from daemon.logging_setup import LogRing
from daemon.reloader import ReloadResult

# The value a client must send as {"confirm": ...} to lift an engaged kill switch.
RESUME_CONFIRMATION = "resume-after-kill"

Record = Mapping[str, Any] | msgspec.Struct
"""One JSON object: a mapping, or a msgspec Struct (e.g. ``OrderRecord``, ``Fill``)."""


class AdminError(Exception):
    """A request the daemon refuses; ``status``/``code`` become the HTTP error response."""

    status = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(AdminError):
    """Invalid parameters or body (400)."""

    status = 400
    code = "bad_request"


class NotFound(AdminError):
    """The addressed object does not exist (404)."""

    status = 404
    code = "not_found"


class Conflict(AdminError):
    """The command conflicts with the current state (409), e.g. cancelling a filled order."""

    status = 409
    code = "conflict"


class KillSwitchEngaged(Conflict):
    """``resume`` while the kill switch is engaged and the confirmation was not given (409)."""

    code = "kill_switch_engaged"

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(
            message or "trading was killed; resuming requires the body "
            f'{{"confirm": "{RESUME_CONFIRMATION}"}} (CLI: aaiti resume --confirm)',
            **details,
        )


class Unavailable(AdminError):
    """The daemon cannot answer yet (503), e.g. the store is not open during startup."""

    status = 503
    code = "unavailable"


class ConfigView(msgspec.Struct, frozen=True, kw_only=True):
    """The running config, secrets redacted, with its version and load time."""

    version: int
    loaded_at: float
    path: str | None
    config: dict[str, Any]

    @classmethod
    def from_loaded(cls, loaded: LoadedConfig) -> ConfigView:
        """Build the view of ``loaded`` (``ConfigReloader.current``)."""
        plain = config_to_plain(loaded.config, redact=True)
        return cls(version=loaded.version, loaded_at=loaded.loaded_at,
                   path=str(loaded.path) if loaded.path else None, config=plain)


class AdminBackend(Protocol):
    """The daemon as the admin API sees it (implemented by ``App``).

    Shapes (keys the CLI and the OpenAPI document rely on; extra keys are fine):

    - ``status()``: ``name``, ``mode``, ``version``, ``pid``, ``uptime_s``, ``trading_state``,
      ``kill_switch``, ``health`` ({status, reasons}), ``config_version``, and lists such as
      ``actors`` (``ChildStatus`` values) and ``channels`` (``ChannelStats`` values).
    - orders: ``OrderRecord``-like (client_order_id, strategy, symbol, side, type, size,
      price, status, filled, avg_price, created_ms, updated_ms, …), newest first; one order
      (``order()``) comes with its event history.
    - fills: ``Fill``-like; positions: ``PositionView``-like plus optional ``mark`` and
      ``unrealized_pnl``; balances: ``asset`` plus ``free``/``locked``/``total``.
    - ``risk()``: ``RiskSnapshot``-like (state, kill_switch, limits, usage, counters).
    - trading-state results of pause/resume/kill: ``state``, ``kill_switch``, ``reason``.
    - for the web console: ``equity_history()`` (``ts_ms``, ``equity``), ``recent_bars()``,
      ``recent_fills()`` (``Fill``-like, newest first) and ``backtests_dir()``; ``status()`` may
      add ``circuit_breakers`` (name, state, trips, latched, open_remaining_s, reason) and
      ``reconnects`` ({source: count}).
    - contingent orders (stops, take-profits, trailing stops, OCO/OTO, brackets, icebergs,
      TWAPs): ``ContingentView``-like (id, strategy, symbol, kind, mode, status, protected,
      legs, …); ``status()`` adds ``contingent`` ({active, by_kind: {kind: {mode: count}}}).
    """

    @property
    def log_ring(self) -> LogRing:
        """The in-memory ring of recent log records (``LoggingSetup.ring``)."""
        ...

    def status(self) -> Mapping[str, Any]:
        """Overview for ``GET /status`` (see the class docstring for the keys)."""
        ...

    def readiness(self) -> tuple[bool, Sequence[str]]:
        """(ready, reasons not ready): e.g. store open, reconciled, feed live, tree running."""
        ...

    def health(self) -> HealthVerdict:
        """The watchdog's latest verdict."""
        ...

    def positions(self) -> Sequence[Record]:
        """One record per symbol with a position or PnL."""
        ...

    def balances(self) -> Sequence[Record]:
        """One record per asset."""
        ...

    def risk(self) -> Record:
        """Trading state, kill switch, limits and their current usage."""
        ...

    def config_view(self) -> ConfigView:
        """The running config: ``ConfigView.from_loaded(self.reloader.current)``."""
        ...

    async def metrics_exposition(self) -> bytes:
        """Prometheus exposition text (``Metrics.render()``: cached and sliced)."""
        ...

    async def orders(
        self,
        *,
        statuses: frozenset[OrderStatus] | None,
        symbol: str | None,
        strategy: str | None,
        limit: int,
        offset: int,
    ) -> Sequence[Record]:
        """Orders, newest first, filtered (None: any) and paged (already validated)."""
        ...

    async def order(self, client_order_id: str) -> Record | None:
        """One order by our client order id, None if unknown.

        ``{"order": <OrderRecord-like>, "events": [<OrderEventRecord-like>, ...]}`` (events
        oldest first: ``status``, ``previous``, ``filled``, ``reason``, ``trade_id``, ``ts_ms``).
        """
        ...

    async def fills(
        self, *, client_order_id: str | None, symbol: str | None, limit: int, offset: int
    ) -> Sequence[Record]:
        """Fills in store order, filtered and paged."""
        ...

    async def risk_events(self, *, reason: str | None, limit: int, offset: int) -> Sequence[Record]:
        """Risk denials, newest first, filtered by reason code and paged."""
        ...

    def equity_history(self) -> Sequence[Record]:
        """Sampled equity for the console's curve, oldest first: ``{"ts_ms": int, "equity": Decimal}``."""
        ...

    def recent_bars(self) -> BarHistory:
        """The newest closed bars per (symbol, timeframe) for the console's candlestick charts."""
        ...

    async def recent_fills(self, *, symbol: str | None, since_ms: int | None, limit: int) -> Sequence[Record]:
        """The newest ``limit`` fills (of ``symbol``; venue time >= ``since_ms``), newest first."""
        ...

    def backtests_dir(self) -> Path | None:
        """Directory whose ``*/report.html`` the console lists and serves read-only (None: none)."""
        ...

    async def reload_config(self, source: str) -> ReloadResult:
        """Reload the config file through the one serialized path (``ConfigReloader.reload``)."""
        ...

    async def pause(self, reason: str) -> Record:
        """Stop opening positions; return the new trading state."""
        ...

    async def resume(self, reason: str, confirm: bool) -> Record:
        """Resume trading. Raise ``KillSwitchEngaged`` if killed and ``confirm`` is False."""
        ...

    async def kill(self, reason: str) -> Record:
        """Engage the kill switch (HALTED, persisted); return the new trading state."""
        ...

    async def cancel_order(self, client_order_id: str, reason: str) -> bool:
        """Request a cancel. False if unknown; raise ``Conflict`` if the order is finished."""
        ...

    async def contingent_orders(self, *, active_only: bool, limit: int) -> Sequence[Record]:
        """Contingent orders, newest first: the active ones (live), and unless ``active_only``
        also finished ones from the store; at most ``limit`` (already validated)."""
        ...

    async def contingent_order(self, contingent_id: str) -> Record | None:
        """One contingent order (``ContingentView``-like), None if unknown."""
        ...

    async def cancel_contingent(self, contingent_id: str, reason: str) -> bool:
        """Ask the contingent-order manager to cancel one (emulated triggers disarm, its venue
        orders are cancelled). False if unknown; raise ``Conflict`` if it is already finished."""
        ...

    async def strategy_stop(self, name: str) -> bool:
        """Stop a strategy instance (no new intents). False if no such strategy."""
        ...

    async def strategy_start(self, name: str) -> bool:
        """Start a stopped strategy instance. False if no such strategy."""
        ...

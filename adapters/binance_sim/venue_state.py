"""Per-symbol venue state, and the venue operations order lists are built from.

:class:`VenueOps` is what :class:`~adapters.binance_sim.order_list_engine.OrderListEngine`
needs of the exchange; the exchange implements it, so the list engine does not import the
exchange module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig, SymbolConfig
from adapters.binance_sim.market_data import MarketStats
from adapters.binance_sim.matching import Level, OrderBook
from adapters.binance_sim.order_params import NewOrder
from adapters.binance_sim.orders import Fill, Order
from adapters.binance_sim.user_events import UserEvent


@dataclass(slots=True)
class SymbolState:
    """Per-symbol venue state; ``stops`` are the stop orders waiting for their trigger."""

    cfg: SymbolConfig
    book: OrderBook
    stats: MarketStats
    next_trade_id: int = 1
    stops: list[Order] = field(default_factory=list)


class VenueOps(Protocol):
    """The exchange operations an order list is placed, run and canceled with."""

    @property
    def config(self) -> SimulatorConfig:
        """Simulator configuration."""

    @property
    def configs(self) -> Mapping[str, SymbolConfig]:
        """Market configs by Binance symbol."""

    @property
    def symbols(self) -> Mapping[str, SymbolState]:
        """Venue state by Binance symbol."""

    @property
    def clock(self) -> SimClock:
        """Server time."""

    def state(self, symbol: str | None) -> SymbolState:
        """State of ``symbol`` (-1102 / -1121 like Binance)."""

    def random_id(self, prefix: str = "") -> str:
        """A Binance-looking random client id."""

    def validate(self, req: NewOrder, *, pending: bool = False) -> SymbolState:
        """Every check of a new order short of reserving funds."""

    def would_take(self, st: SymbolState, side: str, price: Decimal) -> bool:
        """True when a LIMIT_MAKER at ``price`` would cross the book."""

    def new_order(
        self, st: SymbolState, req: NewOrder, now: int, *, order_list_id: int = -1, pending: bool = False
    ) -> Order:
        """An unregistered order for ``req``."""

    def reserve(self, order: Order, amount: Decimal, now: int) -> None:
        """Lock ``amount`` for ``order`` (-2010 insufficient balance)."""

    def register(self, order: Order) -> None:
        """Give ``order`` its id and make it queryable."""

    def start(
        self,
        st: SymbolState,
        order: Order,
        events: list[UserEvent],
        fills: list[Fill],
        now: int,
        *,
        plan: list[Level] | None = None,
    ) -> None:
        """Put an accepted order to work."""

    def report(self, order: Order, exec_type: str, now: int, fill: Fill | None = None) -> UserEvent:
        """An ``executionReport`` event for ``order``."""

    def expire(self, st: SymbolState, order: Order, events: list[UserEvent], now: int) -> None:
        """End an open order as EXPIRED."""

    def cancel_into(self, st: SymbolState, order: Order, cancel_id: str, now: int, events: list[UserEvent]) -> None:
        """End an open order as CANCELED by the user."""

    def emit_user(self, events: list[UserEvent]) -> None:
        """Settle lists and hand ``events`` to the hubs."""

    def book_changed(self, symbol: str) -> None:
        """The book of ``symbol`` may have changed."""

"""Optional capabilities of adapters, as small Protocols.

A venue or a market-data source may offer more than its port requires: a paper venue
matches against the market, a replay source can change speed, a network adapter has
circuit breakers and reconnect counters. The composition root asks with ``isinstance``
against these runtime-checkable Protocols, never with ``getattr`` probes, so what an
adapter offers is written down and type-checked.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from actors.model.market import MarketEvent
from actors.model.orders import ListKind, OrderListRequest, OrderType, VenueOrder

__all__ = [
    "AdjustableSpeed",
    "BreakerView",
    "ConnectionHealth",
    "HasStartTime",
    "MarketTap",
    "NativeOrders",
    "NativeSupport",
    "QuietMarketTap",
    "ReportsConnectionHealth",
]


class BreakerView(msgspec.Struct, frozen=True, kw_only=True):
    """A circuit breaker as operators see it (admin API, metrics)."""

    name: str
    state: str
    trips: int
    latched: bool = False
    open_remaining_s: float | None = None
    reason: str = ""


class ConnectionHealth(msgspec.Struct, frozen=True, kw_only=True):
    """An adapter's connection health: its breakers and reconnects per stream."""

    breakers: tuple[BreakerView, ...] = ()
    reconnects: dict[str, int] = msgspec.field(default_factory=dict)


@runtime_checkable
class ReportsConnectionHealth(Protocol):
    """An adapter with breakers and reconnecting streams (ccxt venue and market source)."""

    def connection_health(self) -> ConnectionHealth:
        """A point-in-time copy; cheap, called at scrape and status time."""
        ...


@runtime_checkable
class MarketTap(Protocol):
    """A venue that needs the market to work (the paper venue fills against it).

    The feed calls ``on_market`` with every event, on the loop, before strategies see it;
    it must not block.
    """

    def on_market(self, event: MarketEvent) -> None:
        """Take one market event."""
        ...


@runtime_checkable
class QuietMarketTap(MarketTap, Protocol):
    """A ``MarketTap`` that can say when it only records the market for a symbol.

    While ``quiet_on(symbol)`` is true (nothing of ours rests, waits or works there), seeing
    only the latest quote of a stretch leaves it exactly as seeing every quote would, so the
    feed may call it once per stretch (a latest-only tap) in a fast replay.
    """

    def quiet_on(self, symbol: str) -> bool:
        """True when ``on_market`` only keeps ``symbol``'s latest state."""
        ...


@runtime_checkable
class AdjustableSpeed(Protocol):
    """A paced source (replay, synthetic) whose speed changes on config reload."""

    def set_speed(self, speed: float) -> None:
        """New speed factor (0 = as fast as possible)."""
        ...


@runtime_checkable
class HasStartTime(Protocol):
    """A source of recorded or simulated data that knows the market time it starts at."""

    @property
    def start_ts_ms(self) -> int:
        """Epoch ms of the first event (a market clock starts here, not at 1970)."""
        ...


class NativeSupport(msgspec.Struct, frozen=True, kw_only=True):
    """What a venue runs natively: conditional ``order_types`` (of ``CONDITIONAL_TYPES``),
    a trailing delta in basis points on its stop types, an iceberg display size on limit
    orders, and which order ``lists``. Anything else is emulated by the daemon."""

    order_types: frozenset[OrderType] = frozenset()
    trailing_bps: bool = False
    iceberg: bool = False
    lists: frozenset[ListKind] = frozenset()


@runtime_checkable
class NativeOrders(Protocol):
    """A venue that accepts conditional orders (``OrderRequest.trigger_price``, ``trailing_bps``,
    ``display_size``) and native order lists."""

    def native_support(self) -> NativeSupport:
        """What this venue runs natively (may depend on its configuration)."""
        ...

    async def submit_list(self, request: OrderListRequest) -> list[VenueOrder]:
        """Place an order list; the venue orders of its legs, in ``request.orders`` order.

        Raises ``OrderRejected`` (nothing placed) or ``VenueUnavailable`` (outcome unknown:
        each leg is then resolved by a query by its client order id).
        """
        ...

"""A PortfolioView kept from a strategy's own order events (seedable from the store)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from actors.model.orders import OPEN_STATUSES, OrderDenied, OrderEvent
from actors.model.positions import held_change
from actors.strategy_api import OpenOrder


class TrackingPortfolio:
    """Positions from the strategy's own fills, open orders from its order events.

    A fill changes a position by its signed size less a fee charged in the base asset
    (``positions.held_change``), as the ledger counts it: the position is what the fills
    left held, so a bracket whose exits sold what its entry credited leaves it at 0.
    Fills are counted once per (venue, trade id). Used when the host is given no view
    from the order manager; it knows only what the strategy's order events say (an open
    order's side is known once it has a fill).
    """

    __slots__ = ("_fill_order", "_fills", "_open", "_positions")

    # Fill ids remembered for de-duplication; redeliveries come soon after the original,
    # and an unbounded set would grow for as long as the daemon runs.
    dedup_window = 10_000

    def __init__(self) -> None:
        self._positions: dict[str, Decimal] = {}
        self._open: dict[str, OpenOrder] = {}
        self._fills: set[tuple[str, str]] = set()
        self._fill_order: deque[tuple[str, str]] = deque()

    def add_open_order(self, order: OpenOrder) -> None:
        """Seed an open order known from before a restart."""
        self._open[order.client_order_id] = order

    def apply(self, event: OrderEvent | OrderDenied) -> None:
        """Update from one order event (denials change nothing)."""
        if isinstance(event, OrderDenied):
            return
        fill = event.fill
        side = None
        if fill is not None:
            side = fill.side
            key = (fill.venue, fill.trade_id)
            if key not in self._fills:
                self._fills.add(key)
                self._fill_order.append(key)
                if len(self._fill_order) > self.dedup_window:
                    self._fills.discard(self._fill_order.popleft())
                self._positions[fill.symbol] = self._positions.get(fill.symbol, Decimal(0)) + held_change(fill)
        coid = event.client_order_id
        if event.status in OPEN_STATUSES:
            prev = self._open.get(coid)
            self._open[coid] = OpenOrder(
                client_order_id=coid,
                symbol=event.symbol,
                side=side if side is not None else (prev.side if prev is not None else None),
                size=event.size,
                filled=event.filled,
                strategy=event.strategy,
            )
        else:
            self._open.pop(coid, None)

    def position(self, symbol: str) -> Decimal:
        """Signed position from fills (net of base-asset fees)."""
        return self._positions.get(symbol, Decimal(0))

    def open_orders(self, symbol: str | None = None) -> tuple[OpenOrder, ...]:
        """Orders whose last event left them open."""
        return tuple(o for o in self._open.values() if symbol is None or o.symbol == symbol)

    def set_position(self, symbol: str, size: Decimal) -> None:
        """Set a position (e.g. from reconciliation at start-up, or in tests)."""
        self._positions[symbol] = size

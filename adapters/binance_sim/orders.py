"""User orders and fills, and the store that keeps them queryable after they close."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from adapters.binance_sim.decimals import ZERO


class OrderStatus(StrEnum):
    """Binance order statuses the simulator produces."""

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


#: Not final: a ``PENDING_NEW`` order list leg waits for its working order to fill.
OPEN_STATUSES = frozenset({OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
#: Order types that execute as a market order once their stop triggers.
MARKET_STOP_TYPES = ("STOP_LOSS", "TAKE_PROFIT")
#: Every stop (contingent) order type.
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a user order (a row of ``myTrades``, a TRADE executionReport)."""

    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool
    order_list_id: int = -1


@dataclass(slots=True, eq=False)
class Order:
    """A user order and its running execution state.

    ``price`` is 0 for MARKET orders. ``locked`` is what the order still holds of
    ``locked_asset``; it is released when the order reaches a final status. ``seq`` orders
    resting orders at the same price (time priority).

    Iceberg orders (``iceberg_qty > 0``) show ``display_left`` of the current slice in the
    book. Trailing stops (``trailing_delta`` in BIPS) track ``trailing_ref``, the best price
    since ``trailing_time_ms`` (-1: not tracking yet). ``order_list_id`` is -1 outside lists.
    """

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    stop_price: Decimal
    time_ms: int
    locked_asset: str
    locked: Decimal
    seq: int
    working_time_ms: int
    self_trade_prevention: str = "EXPIRE_MAKER"
    update_time_ms: int = 0
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    fills: list[Fill] = field(default_factory=list)
    iceberg_qty: Decimal = ZERO
    display_left: Decimal = ZERO
    trailing_delta: int = 0
    trailing_ref: Decimal = ZERO
    trailing_time_ms: int = -1
    order_list_id: int = -1

    @property
    def remaining(self) -> Decimal:
        """Quantity not yet executed."""
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return self.status in OPEN_STATUSES

    @property
    def is_stop(self) -> bool:
        """A STOP_LOSS / TAKE_PROFIT type (limit or market)."""
        return self.type in STOP_TYPES

    @property
    def executes_as_market(self) -> bool:
        """MARKET, or a STOP_LOSS / TAKE_PROFIT that becomes a market order when triggered."""
        return self.type == "MARKET" or self.type in MARKET_STOP_TYPES

    @property
    def visible(self) -> Decimal:
        """Quantity the public book shows: the current iceberg slice, else everything left."""
        if self.iceberg_qty > 0:
            return min(self.display_left, self.remaining)
        return self.remaining

    @property
    def is_working(self) -> bool:
        """False for a stop order that has not triggered yet."""
        return self.working_time_ms >= 0


class OrderStore:
    """All user orders by id and by client order id, plus the account's fills.

    Closed orders stay queryable (a daemon that lost an order response looks them up by
    ``origClientOrderId``) until more than ``history_max`` closed orders accumulate.
    """

    def __init__(self, history_max: int) -> None:
        self._history_max = history_max
        self._next_id = 1
        self._seq = 0
        self._by_id: dict[int, Order] = {}
        self._by_client: dict[tuple[str, str], int] = {}
        self._open: dict[int, Order] = {}
        self._open_by_client: dict[tuple[str, str], Order] = {}
        self._closed: deque[int] = deque()
        self._fills: dict[str, deque[Fill]] = {}

    def next_order_id(self) -> int:
        """Allocate an order id (one sequence across symbols)."""
        oid = self._next_id
        self._next_id += 1
        return oid

    def next_seq(self) -> int:
        """Allocate a time-priority sequence number."""
        self._seq += 1
        return self._seq

    def add(self, order: Order) -> None:
        """Register a newly accepted order."""
        self._by_id[order.order_id] = order
        key = (order.symbol, order.client_order_id)
        self._by_client[key] = order.order_id
        if order.is_open:
            self._open[order.order_id] = order
            self._open_by_client[key] = order
        else:
            self._remember_closed(order)

    def mark_closed(self, order: Order) -> None:
        """Move an order that reached a final status out of the open indexes."""
        if self._open.pop(order.order_id, None) is None:
            return
        key = (order.symbol, order.client_order_id)
        if self._open_by_client.get(key) is order:
            del self._open_by_client[key]
        self._remember_closed(order)

    def _remember_closed(self, order: Order) -> None:
        self._closed.append(order.order_id)
        while len(self._closed) > self._history_max:
            old = self._by_id.pop(self._closed.popleft(), None)
            if old is not None and self._by_client.get((old.symbol, old.client_order_id)) == old.order_id:
                del self._by_client[(old.symbol, old.client_order_id)]

    def get(self, symbol: str, order_id: int) -> Order | None:
        """Order by id within ``symbol``."""
        order = self._by_id.get(order_id)
        return order if order is not None and order.symbol == symbol else None

    def get_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """Most recent order of ``symbol`` carrying ``client_order_id``."""
        oid = self._by_client.get((symbol, client_order_id))
        return self._by_id.get(oid) if oid is not None else None

    def open_with_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """The open order using ``client_order_id``, if any (duplicate detection)."""
        return self._open_by_client.get((symbol, client_order_id))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, oldest first."""
        return [o for o in self._open.values() if symbol is None or o.symbol == symbol]

    def all_orders(self, symbol: str) -> list[Order]:
        """Every remembered order of ``symbol``, by id."""
        return sorted((o for o in self._by_id.values() if o.symbol == symbol), key=lambda o: o.order_id)

    def add_fill(self, fill: Fill) -> None:
        """Record an execution for ``myTrades``."""
        fills = self._fills.get(fill.symbol)
        if fills is None:
            fills = self._fills[fill.symbol] = deque(maxlen=self._history_max)
        fills.append(fill)

    def fills(self, symbol: str) -> list[Fill]:
        """Fills of ``symbol`` in trade-id order."""
        return list(self._fills.get(symbol, ()))

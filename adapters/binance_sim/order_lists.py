"""Order lists (OCO, OTO, OTOCO): what a list is made of, and the store that keeps them.

Roles inside a list:

- ``oco``: legs that cancel each other. The first leg that trades or triggers expires the
  others (OCO: both legs; OTOCO: the two pending legs once released).
- ``working`` / ``pending`` (OTO, OTOCO): the pending legs wait (``PENDING_NEW``) until the
  working order is fully filled, then go to work; if the working order ends unfilled the
  pending legs expire.

A list is ``ALL_DONE`` once every order in it is final. OTOCO lists report contingency
type ``OTO``, as Binance's own responses do.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from adapters.binance_sim.orders import Order


@dataclass(slots=True, eq=False)
class OrderList:
    """One order list and its orders (in order id order)."""

    order_list_id: int
    contingency_type: str
    symbol: str
    list_client_order_id: str
    transaction_time_ms: int
    orders: list[Order] = field(default_factory=list)
    oco: list[Order] = field(default_factory=list)
    working: Order | None = None
    pending: list[Order] = field(default_factory=list)
    done: bool = False

    @property
    def list_status_type(self) -> str:
        """``EXEC_STARTED`` while executing, ``ALL_DONE`` after."""
        return "ALL_DONE" if self.done else "EXEC_STARTED"

    @property
    def list_order_status(self) -> str:
        """``EXECUTING`` while executing, ``ALL_DONE`` after."""
        return "ALL_DONE" if self.done else "EXECUTING"


@dataclass(frozen=True, slots=True)
class CanceledList:
    """The outcome of canceling a list: the orders this cancel closed, under one cancel id."""

    order_list: OrderList
    canceled: tuple[Order, ...]
    cancel_client_id: str
    time_ms: int


class OrderListStore:
    """Lists by id and by ``listClientOrderId``; finished lists are kept up to ``history_max``."""

    def __init__(self, history_max: int) -> None:
        self._history_max = history_max
        self._next_id = 1
        self._by_id: dict[int, OrderList] = {}
        self._done: deque[int] = deque()

    def next_id(self) -> int:
        """Allocate an ``orderListId``."""
        list_id = self._next_id
        self._next_id += 1
        return list_id

    def add(self, order_list: OrderList) -> None:
        """Register a new list."""
        self._by_id[order_list.order_list_id] = order_list

    def mark_done(self, order_list: OrderList) -> None:
        """Record that ``order_list`` finished (oldest finished lists are forgotten first)."""
        order_list.done = True
        self._done.append(order_list.order_list_id)
        while len(self._done) > self._history_max:
            self._by_id.pop(self._done.popleft(), None)

    def get(self, list_id: int) -> OrderList | None:
        """List by id."""
        return self._by_id.get(list_id)

    def get_by_client_id(self, list_client_order_id: str) -> OrderList | None:
        """Most recent list carrying ``list_client_order_id``."""
        found = [lst for lst in self._by_id.values() if lst.list_client_order_id == list_client_order_id]
        return found[-1] if found else None

    def open_lists(self) -> list[OrderList]:
        """Lists still executing, oldest first."""
        return [lst for lst in self._by_id.values() if not lst.done]

    def all_lists(self) -> list[OrderList]:
        """Every remembered list, by id."""
        return sorted(self._by_id.values(), key=lambda lst: lst.order_list_id)

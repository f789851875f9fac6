"""The protocol every kind of contingent order implements, and the context it runs in.

A contingent order is a small state machine over its own fields. Its handlers are pure:
they change the object and return ``Effect`` values (``actors.contingent.effects``); the
actor executes them in order (a durable ``Persist`` is committed before what follows). So
the logic is tested without I/O, and the actor is the only place with I/O.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar, Self

import msgspec

from actors.contingent.effects import Effect, Persist
from actors.model.contingent import (
    ACTIVE_CONTINGENT_STATUSES,
    ContingentKind,
    ContingentRow,
    ContingentStatus,
    ContingentView,
)
from actors.model.market import MarketEvent
from actors.model.orders import ExecutionMode, Fill, OrderDenied, OrderEvent
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from config.schema.trading import OrdersSection

__all__ = ["BookContext", "ContingentOrder", "OrderLookup"]

#: The order manager's view of one of our venue orders by client order id (None: it never saw it).
OrderLookup = Callable[[str], OrderRecord | None]


@dataclasses.dataclass(frozen=True)
class BookContext:
    """What a contingent order may use: ids, business time, settings, the venue's native support.

    ``new_id()`` returns a client order id unique across restarts (for children, legs and
    contingent ids). ``native_enabled`` is ``[orders] native = "auto"``; a kind sends natively
    only where ``support`` covers it (else it emulates). ``step_size(symbol)`` is the
    instrument's quantity step (slices are rounded down to it; 0 when unknown).
    """

    new_id: Callable[[], str]
    now_ms: Callable[[], int]
    settings: Callable[[], OrdersSection]
    support: NativeSupport
    native_enabled: bool
    step_size: Callable[[str], Decimal] = lambda _symbol: Decimal(0)
    venue: str = ""


class ContingentOrder(ABC):
    """Base of the kinds. Subclasses set ``kind``, keep their own state and implement the handlers.

    Common fields: ``id`` (also the ``parent`` of every order it sends), ``strategy``,
    ``symbol``, ``mode``, ``status``, ``reason``, ``created_ms``/``updated_ms``. Subclasses
    serialise their own state in ``body()``/``from_body`` (JSON-able builtins; decimals as
    strings) so ``row()``/``from_row`` round-trip exactly.
    """

    kind: ClassVar[ContingentKind]

    def __init__(self, *, id: str, strategy: str, symbol: str, mode: ExecutionMode,
                 status: ContingentStatus = ContingentStatus.PENDING, reason: str = "",
                 created_ms: int = 0, updated_ms: int = 0) -> None:
        self.id = id
        self.strategy = strategy
        self.symbol = symbol
        self.mode = mode
        self.status = status
        self.reason = reason
        self.created_ms = created_ms
        self.updated_ms = updated_ms

    # -- persistence -------------------------------------------------------------------------
    @abstractmethod
    def body(self) -> dict[str, Any]:
        """This order's own state as JSON-able builtins."""

    @classmethod
    @abstractmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row (common fields) and its decoded ``body``."""

    def row(self) -> ContingentRow:
        """The store's row of this order now."""
        return ContingentRow(id=self.id, strategy=self.strategy, symbol=self.symbol, kind=self.kind,
                             mode=self.mode, status=self.status,
                             body=msgspec.json.encode(self.body()).decode(),
                             created_ms=self.created_ms, updated_ms=self.updated_ms)

    @classmethod
    def from_row(cls, row: ContingentRow) -> Self:
        """Rebuild from a stored row."""
        return cls.from_body(row, msgspec.json.decode(row.body))

    def persist(self, ctx: BookContext, *, durable: bool = True) -> Persist:
        """A ``Persist`` of this order's current state (stamps ``updated_ms``)."""
        self.updated_ms = ctx.now_ms()
        return Persist(rows=(self.row(),), durable=durable)

    @property
    def active(self) -> bool:
        """True while not final."""
        return self.status in ACTIVE_CONTINGENT_STATUSES

    def common(self) -> dict[str, Any]:
        """The common constructor arguments (for ``from_body`` of subclasses)."""
        return {"id": self.id, "strategy": self.strategy, "symbol": self.symbol, "mode": self.mode,
                "status": self.status, "reason": self.reason, "created_ms": self.created_ms,
                "updated_ms": self.updated_ms}

    @staticmethod
    def common_of(row: ContingentRow) -> dict[str, Any]:
        """The common constructor arguments of a stored row."""
        body = msgspec.json.decode(row.body)
        return {"id": row.id, "strategy": row.strategy, "symbol": row.symbol, "mode": row.mode,
                "status": row.status, "reason": str(body.get("reason", "")) if isinstance(body, dict) else "",
                "created_ms": row.created_ms, "updated_ms": row.updated_ms}

    # -- handlers ------------------------------------------------------------------------------
    @abstractmethod
    def start(self, ctx: BookContext) -> list[Effect]:
        """First effects once accepted: a durable ``Persist`` first, then what it sends."""

    def on_market(self, event: MarketEvent, ctx: BookContext) -> list[Effect]:
        """A market event of ``symbol`` (every one, in order, while this order is active)."""
        return []

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """An event of one of this order's venue orders (``event.parent == id``)."""
        return []

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The risk gate denied one of this order's releases (``denied.intent.parent == id``)."""
        return []

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """Business time reached ``deadline_ms()``."""
        return []

    def deadline_ms(self) -> int | None:
        """When ``on_timer`` is next due (business time), or None."""
        return None

    @abstractmethod
    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Cancel: emulated triggers disarm, venue orders it holds are cancelled; final status CANCELED."""

    @abstractmethod
    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """After a restart, once the order manager has loaded: bring this order up to date with
        what the order manager knows (fills it missed, children never written ahead: release
        them again under the same id) and return what must be sent."""

    def fill_sources(self) -> tuple[str, ...]:
        """Client order ids whose fills (their fees) this order's quantities depend on: after a
        restart the manager reads them back from the store and hands them to ``restore_fill``
        before ``resume``, so fills the last saved row missed count too. None by default."""
        return ()

    def restore_fill(self, fill: Fill) -> None:
        """A stored fill of one of ``fill_sources()`` (idempotent: counted once by trade id)."""
        return None  # nothing depends on fills unless a kind says so

    @abstractmethod
    def child_ids(self) -> Iterable[str]:
        """Client order ids of every venue order this contingent order sent or will send."""

    @abstractmethod
    def view(self) -> ContingentView:
        """What operators see."""

    def watches_market(self) -> bool:
        """True while this order needs every market event of its symbol (armed emulated triggers)."""
        return False


def dec_or_none(value: Any) -> Decimal | None:
    """A stored decimal string back to Decimal (None stays None)."""
    return None if value is None else Decimal(str(value))


def str_or_none(value: Decimal | None) -> str | None:
    """A Decimal as stored (plain notation)."""
    return None if value is None else format(value, "f")

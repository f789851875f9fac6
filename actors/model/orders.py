"""Order-path messages: intents, commands, risk decisions, order events and fills.

Money is ``Decimal`` here: sizes, prices, fees, notionals. Float rounding in order
sizes or PnL would make our books disagree with the venue's by dust that the
reconciler then has to explain; Decimal is exact and its cost is paid only per order,
not per market event.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from actors.model.base import Message


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Order type."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Order states (transitions: ``actors.orders.state_machine``; docs/architecture.md)."""

    INITIALIZED = "INITIALIZED"
    DENIED = "DENIED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    TRIGGERED = "TRIGGERED"
    PENDING_UPDATE = "PENDING_UPDATE"
    PENDING_CANCEL = "PENDING_CANCEL"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.DENIED, OrderStatus.REJECTED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
)
OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.TRIGGERED,
        OrderStatus.PENDING_UPDATE,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PARTIALLY_FILLED,
    }
)


class OrderIntent(Message, frozen=True, kw_only=True, tag="cmd.order_intent"):
    """What a strategy wants; the risk gate decides whether it becomes an order.

    Exactly one of ``size`` (base units) or ``notional`` (quote units) is set.
    ``origin_ns`` is the ``recv_ns`` of the market event that triggered it.
    """

    strategy: str
    symbol: str
    side: Side
    type: OrderType = OrderType.MARKET
    size: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    tag: str = ""
    intent_id: str = ""
    origin_ns: int = 0


class ApprovedIntent(Message, frozen=True, kw_only=True, tag="cmd.approved_intent"):
    """An intent the risk gate approved, with the base size it resolved to."""

    intent: OrderIntent
    size: Decimal
    reference_price: Decimal


class CancelOrder(Message, frozen=True, kw_only=True, tag="cmd.cancel_order"):
    """Cancel one order by our client order id."""

    client_order_id: str
    reason: str = ""


class CancelAll(Message, frozen=True, kw_only=True, tag="cmd.cancel_all"):
    """Cancel every open order, optionally of one symbol or one strategy."""

    symbol: str | None = None
    strategy: str | None = None
    reason: str = ""


class OrderDenied(Message, frozen=True, kw_only=True, tag="evt.order_denied"):
    """The risk gate refused an intent. ``reason`` is a stable reason code."""

    intent: OrderIntent
    reason: str
    limit: str = ""
    detail: str = ""
    ts_ms: int = 0


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution. Unique by (venue, trade_id)."""

    venue: str
    trade_id: str
    client_order_id: str
    venue_order_id: str = ""
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    liquidity: str = "taker"
    ts_ms: int = 0


class OrderEvent(Message, frozen=True, kw_only=True, tag="evt.order"):
    """An order changed state (or received a fill). ``fill`` is set for fills."""

    client_order_id: str
    strategy: str
    symbol: str
    status: OrderStatus
    previous: OrderStatus | None = None
    filled: Decimal = Decimal(0)
    size: Decimal = Decimal(0)
    fill: Fill | None = None
    reason: str = ""
    ts_ms: int = 0


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the venue reports it (query, open orders, stream updates)."""

    venue: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    size: Decimal
    filled: Decimal = Decimal(0)
    price: Decimal | None = None
    avg_price: Decimal | None = None
    ts_ms: int = 0
    reason: str = ""


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the order manager sends to a venue. ``client_order_id`` is ours, set before the call."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    size: Decimal
    price: Decimal | None = None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's balance on a venue."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """free + locked."""
        return self.free + self.locked

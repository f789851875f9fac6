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
    """Order type.

    The conditional types rest untriggered until the trigger price trades (or the trailing
    stop's level is crossed); then a market (``STOP_MARKET``/``TAKE_PROFIT``) or limit
    (``STOP_LIMIT``/``TAKE_PROFIT_LIMIT``, at ``limit_price``) order is released. A stop is
    on the losing side of the market (a sell stop below it), a take-profit on the winning
    side (a sell take-profit above it). Sent natively where the venue has them, otherwise
    emulated by the daemon (``actors.contingent``).
    """

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"


#: Types that wait for a trigger price before they become a market or limit order.
CONDITIONAL_TYPES = frozenset(
    {OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
#: Types that carry a limit price (the released child's price for the conditional ones).
PRICED_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
#: Stop types (trigger on the losing side); the others of ``CONDITIONAL_TYPES`` are take-profits.
STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})


class TriggerSource(StrEnum):
    """Which price an emulated trigger watches.

    ``LAST``: trade prints. ``BID_ASK``: the side the child would hit (a sell watches the
    bid, a buy the ask). ``MID``: the mid quote. Native orders trigger on the venue's own
    rule (Binance spot: last trade), whatever is set here.
    """

    LAST = "last"
    BID_ASK = "bid_ask"
    MID = "mid"


class ExecutionMode(StrEnum):
    """Where an order's logic runs: on the venue (``NATIVE``) or in the daemon (``EMULATED``)."""

    NATIVE = "native"
    EMULATED = "emulated"


class TrailingSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A trailing stop's offset from the best price since activation.

    Exactly one of ``offset`` (price units) or ``offset_bps`` (basis points of that best
    price) is set and > 0. ``activation_price`` (optional): trailing starts once the market
    reaches it (a sell trail activates at or above it, a buy trail at or below it). Native
    on Binance only in basis points (``trailingDelta``); a price offset is emulated.
    """

    offset: Decimal | None = None
    offset_bps: int | None = None
    activation_price: Decimal | None = None


class TwapSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Time-weighted execution: the order's size in equal market slices every ``interval_s``
    over ``horizon_s``. ``max_participation`` (0 < p <= 1, optional) caps each slice at that
    share of the volume traded on the symbol since the previous slice (a capped remainder
    carries over; whatever is left at the horizon is reported, never forced). Always emulated.
    """

    horizon_s: float
    interval_s: float
    max_participation: float | None = None


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

    Conditional and algorithmic fields (all optional): ``trigger_price`` for the
    ``CONDITIONAL_TYPES``; ``trailing`` makes a ``STOP_MARKET``/``STOP_LIMIT`` a trailing stop
    (``trigger_price`` then unset, or the activation price on Binance); ``trigger`` is the
    price an emulated trigger watches; ``display_size`` makes a ``LIMIT`` an iceberg showing
    that much; ``twap`` spreads a ``MARKET`` order over time.

    Set by the daemon, not by strategies: ``client_order_id`` (a preset id, so a released
    child keeps the same id across a restart and can never be sent twice), ``parent`` (the
    contingent order it belongs to) and ``protective`` (an exit that protects a position:
    let through while trading is paused (REDUCING), exempt from the order-rate limit).
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
    trigger_price: Decimal | None = None
    trailing: TrailingSpec | None = None
    trigger: TriggerSource = TriggerSource.LAST
    display_size: Decimal | None = None
    twap: TwapSpec | None = None
    client_order_id: str = ""
    parent: str = ""
    protective: bool = False

    @property
    def is_plain(self) -> bool:
        """A market or limit order with nothing to trigger, slice or trail: straight to the order manager."""
        return (self.type is OrderType.MARKET or self.type is OrderType.LIMIT) and (
            self.display_size is None and self.twap is None and self.trailing is None
        )


class ApprovedIntent(Message, frozen=True, kw_only=True, tag="cmd.approved_intent"):
    """An intent the risk gate approved, with the base size it resolved to.

    The order manager sends a conditional intent (stop, take-profit, trailing, iceberg) as
    the venue's native type: only the contingent-order manager hands it those, once it
    chose native mode for the venue.
    """

    intent: OrderIntent
    size: Decimal
    reference_price: Decimal


class ListKind(StrEnum):
    """Kinds of order list.

    ``OCO``: two exits of one position, one above and one below the market; when one fills
    (or triggers), the other is cancelled. ``OTO``: a working order and a pending one placed
    once (and as far as) the working order fills. ``BRACKET``: an entry plus a take-profit
    and/or a stop-loss (or trailing stop) that protect exactly what the entry filled, as an
    OCO pair (the OTOCO of Binance).
    """

    OCO = "oco"
    OTO = "oto"
    BRACKET = "bracket"


class OrderList(Message, frozen=True, kw_only=True, tag="cmd.order_list"):
    """Linked orders submitted together by a strategy (``Strategy.submit_list``, ``buy(stop_loss=...)``).

    ``orders``: OCO = (above, below) exits in either order; OTO = (working, pending);
    BRACKET = (entry, exit, [exit]), whose exits have no size (they follow the entry's fills)
    and whose exits are the entry's opposite side. All orders have the list's strategy and
    symbol. ``list_id`` is the strategy's id of the list (like ``intent_id``).

    ``carry`` (a bracket): the strategy's rest of an earlier position on the entry's side that
    is too small to trade (a base-asset fee's dust); once the entry fills, the exits sell it
    with the entry's fills, so such rests never add up to a position no bracket closes.
    """

    kind: ListKind
    strategy: str
    symbol: str
    orders: tuple[OrderIntent, ...]
    list_id: str = ""
    tag: str = ""
    origin_ns: int = 0
    carry: Decimal = Decimal(0)


class ApprovedList(Message, frozen=True, kw_only=True, tag="cmd.approved_list"):
    """An order list the risk gate approved: each order's resolved base size (None for a
    bracket exit, which follows the entry's fills) and the reference price it was checked at."""

    order_list: OrderList
    sizes: tuple[Decimal | None, ...]
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
    """An order changed state (or received a fill). ``fill`` is set for fills.

    ``intent_id`` and ``parent`` are the order's (``OrderRecord``): the strategy's intent it
    came from, and the contingent order it belongs to (routed to the contingent-order manager).
    """

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
    intent_id: str = ""
    parent: str = ""


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
    """What the order manager sends to a venue. ``client_order_id`` is ours, set before the call.

    ``trigger_price``, ``trailing_bps`` (native trailing delta) and ``display_size`` (iceberg)
    only for venues that have them natively (``actors.ports.capabilities.NativeOrders``).
    """

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    size: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    trailing_bps: int | None = None
    display_size: Decimal | None = None


class OrderListRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A native order list: ``kind`` OCO (two exits, ``orders`` = (above, below)) or OTO
    (``orders`` = (working, pending)). ``list_client_id`` is ours; every leg has its own
    client order id, written ahead like any order."""

    list_client_id: str
    kind: ListKind
    orders: tuple[OrderRequest, ...]


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's balance on a venue."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """free + locked."""
        return self.free + self.locked

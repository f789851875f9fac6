"""Binance spot's native conditional orders and order lists, as ccxt requests (no I/O here).

What the ccxt venue runs natively (:func:`native_support`): on Binance spot the four
``CONDITIONAL_TYPES``, a trailing delta in basis points, an iceberg display size, and the
OCO and OTO order lists. A bracket is not a venue list here: the daemon builds it from an
entry plus one OCO per entry fill.

Single orders go through ccxt's unified ``create_order`` (:func:`create_order_call`):

============================  ===========  ==================================================
our order                     ccxt type    ccxt params → Binance (``POST /api/v3/order``)
============================  ===========  ==================================================
STOP_MARKET                   ``market``   ``stopLossPrice`` → ``STOP_LOSS``, ``stopPrice``
STOP_LIMIT                    ``limit``    ``stopLossPrice``, ``timeInForce`` GTC →
                                           ``STOP_LOSS_LIMIT``, ``price``, ``stopPrice``
TAKE_PROFIT                   ``market``   ``takeProfitPrice`` → ``TAKE_PROFIT``, ``stopPrice``
TAKE_PROFIT_LIMIT             ``limit``    ``takeProfitPrice``, ``timeInForce`` GTC →
                                           ``TAKE_PROFIT_LIMIT``
``trailing_bps`` (any of the  as above     ``trailingPercent`` = bps / 100 and
conditional types)                         ``stopLossOrTakeProfit`` → ``trailingDelta`` = bps;
                                           ``trigger_price`` as ``trailingTriggerPrice`` →
                                           ``stopPrice`` (the activation price)
``display_size``              as above     ``icebergAmount`` → ``icebergQty``
============================  ===========  ==================================================

Order lists have no unified ccxt call: they go to the implicit endpoints
``private_post_orderlist_oco`` (``above*`` / ``below*`` legs; a LIMIT leg is sent as
``LIMIT_MAKER``, the only plain limit an OCO takes) and ``private_post_orderlist_oto``
(``working*`` / ``pending*``), with our ``listClientOrderId`` and every leg's client order id
(:func:`list_params`).

A venue answer meaning "this type / list / trailing / iceberg is not run here" is recognised
by :func:`is_unsupported_refusal` (→ ``OrderRejected(UNSUPPORTED_ORDER_TYPE)``); what the
market's exchange info already says is not allowed is refused before sending
(:func:`refuse_unsupported`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from actors.model.orders import (
    CONDITIONAL_TYPES,
    PRICED_TYPES,
    STOP_TYPES,
    ListKind,
    OrderListRequest,
    OrderRequest,
    OrderType,
)
from actors.ports.capabilities import NativeSupport
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE, OrderRejected

#: What Binance spot runs natively.
BINANCE_SPOT_SUPPORT = NativeSupport(
    order_types=CONDITIONAL_TYPES,
    trailing_bps=True,
    iceberg=True,
    lists=frozenset({ListKind.OCO, ListKind.OTO}),
)
#: ccxt exchange ids whose (default, spot) API is Binance spot's.
_BINANCE_SPOT_IDS = frozenset({"binance"})

#: Binance order type of each of our order types (a single order; OCO legs send LIMIT as LIMIT_MAKER).
WIRE_TYPES: Mapping[OrderType, str] = MappingProxyType(
    {
        OrderType.MARKET: "MARKET",
        OrderType.LIMIT: "LIMIT",
        OrderType.STOP_MARKET: "STOP_LOSS",
        OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
        OrderType.TAKE_PROFIT: "TAKE_PROFIT",
        OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
    }
)
#: Types that rest on the book once working: they take a time in force and an iceberg.
_LIMIT_LIKE = PRICED_TYPES

#: Refusals meaning the venue does not run this order type, list, trailing stop or iceberg for
#: the symbol: Binance's "<Kind> orders are not supported for this symbol." (-1013/-2010),
#: "Order type not supported in OCO." (-1158), "Invalid orderType." (-1116), "This operation is
#: not supported." (-1020, an endpoint it does not have), and ccxt's own refusals of a type the
#: market's exchange info does not list.
_UNSUPPORTED = re.compile(
    r"orders? (?:are|is) not supported for this symbol"
    r"|order type (?:is )?not supported"
    r"|this order type is not possible"
    r"|invalid ordertype"
    r"|this operation is not supported"
    r"|is not a valid order type for"
    r"|triggerprice parameter is not allowed for",
    re.IGNORECASE,
)


#: Binance's rule for ``listClientOrderId``.
_LIST_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/-]{1,36}")


def native_support(exchange_id: str) -> NativeSupport:
    """What the ccxt venue of ``exchange_id`` runs natively (nothing but on Binance spot)."""
    return BINANCE_SPOT_SUPPORT if exchange_id in _BINANCE_SPOT_IDS else NativeSupport()


def is_native(request: OrderRequest) -> bool:
    """True for a request that needs the venue's native support (not a plain market or limit)."""
    return (
        request.type in CONDITIONAL_TYPES
        or request.trigger_price is not None
        or request.trailing_bps is not None
        or request.display_size is not None
    )


def is_unsupported_refusal(message: str) -> bool:
    """True when a refusal's text says the venue does not run this type, list, trailing or iceberg."""
    return _UNSUPPORTED.search(message) is not None


def unsupported(what: str) -> OrderRejected:
    """The refusal of something the venue does not run natively (the daemon may emulate it)."""
    return OrderRejected(UNSUPPORTED_ORDER_TYPE, what)


def _invalid(detail: str) -> OrderRejected:
    return OrderRejected("INVALID_ORDER", detail)


def check_fields(request: OrderRequest, support: NativeSupport) -> None:
    """The conditional fields fit the order type and the venue runs them; raises ``OrderRejected``.

    Precision (tick and step) is checked by the caller, which knows the market.
    """
    otype = request.type
    if not is_native(request):
        return
    if otype in CONDITIONAL_TYPES:
        if otype not in support.order_types:
            raise unsupported(f"{otype.value} orders are not run natively here")
        if request.trigger_price is None and request.trailing_bps is None:
            raise _invalid(f"{otype.value} needs a trigger price or a trailing delta")
    elif request.trigger_price is not None:
        raise _invalid(f"a {otype.value} order takes no trigger price")
    if request.trailing_bps is not None:
        if otype not in CONDITIONAL_TYPES:
            raise _invalid(f"a {otype.value} order takes no trailing delta")
        if not support.trailing_bps:
            raise unsupported("trailing stops are not run natively here")
        if request.trailing_bps <= 0:
            raise _invalid(f"trailing delta {request.trailing_bps} bps")
    if request.display_size is not None:
        if otype not in _LIMIT_LIKE:
            raise _invalid(f"a {otype.value} order takes no display size")
        if not support.iceberg:
            raise unsupported("iceberg orders are not run natively here")
        if not request.display_size.is_finite() or not 0 < request.display_size < request.size:
            raise _invalid(f"display size {request.display_size} of size {request.size}")


def refuse_unsupported(market_info: Mapping[str, Any], request: OrderRequest, wire_type: str) -> None:
    """Refuse (unsent) what the market's exchange info says it does not allow.

    ``orderTypes``, ``icebergAllowed`` and ``allowTrailingStop`` of Binance's ``exchangeInfo``;
    a key that is missing allows.
    """
    types = market_info.get("orderTypes")
    if isinstance(types, list | tuple) and types and wire_type not in types:
        raise unsupported(f"{wire_type} orders are not supported for this symbol")
    if request.display_size is not None and market_info.get("icebergAllowed") is False:
        raise unsupported("iceberg orders are not supported for this symbol")
    if request.trailing_bps is not None and market_info.get("allowTrailingStop") is False:
        raise unsupported("trailing stop orders are not supported for this symbol")


def refuse_unsupported_list(market_info: Mapping[str, Any], kind: ListKind) -> None:
    """Refuse (unsent) a list kind the market's ``ocoAllowed`` / ``otoAllowed`` rule out."""
    flag = {ListKind.OCO: "ocoAllowed", ListKind.OTO: "otoAllowed"}.get(kind)
    if flag is not None and market_info.get(flag) is False:
        raise unsupported(f"{kind.value.upper()} orders are not supported for this symbol")


# -- single orders -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateOrderCall:
    """The arguments of ccxt's ``create_order`` for one request (after symbol, before side/amount)."""

    type: str
    price: float | None
    params: dict[str, Any] = field(default_factory=dict)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def trailing_percent(bps: int) -> str:
    """ccxt's ``trailingPercent`` for a trailing delta in basis points (ccxt sends percent times 100)."""
    return _plain(Decimal(bps) / 100)


def create_order_call(request: OrderRequest, price: float | None) -> CreateOrderCall:
    """ccxt ``create_order`` type, price and params of ``request`` (checked by :func:`check_fields`).

    Plain market and limit orders keep the call they always had: ``(type, price,
    {'clientOrderId': …})``.
    """
    params: dict[str, Any] = {"clientOrderId": request.client_order_id}
    otype = request.type
    if otype in CONDITIONAL_TYPES:
        is_stop = otype in STOP_TYPES
        if otype in _LIMIT_LIKE:
            params["timeInForce"] = "GTC"
        if request.trailing_bps is not None:
            params["trailingPercent"] = trailing_percent(request.trailing_bps)
            params["stopLossOrTakeProfit"] = "stopLoss" if is_stop else "takeProfit"
            if request.trigger_price is not None:
                params["trailingTriggerPrice"] = _plain(request.trigger_price)
        elif request.trigger_price is not None:
            params["stopLossPrice" if is_stop else "takeProfitPrice"] = _plain(request.trigger_price)
    if request.display_size is not None:
        params["icebergAmount"] = float(request.display_size)
    ccxt_type = "limit" if otype in _LIMIT_LIKE else "market"
    return CreateOrderCall(ccxt_type, price if otype in _LIMIT_LIKE else None, params)


# -- order lists -------------------------------------------------------------------------------
def oco_wire_type(otype: OrderType) -> str:
    """The Binance type of an OCO leg (LIMIT → LIMIT_MAKER); a market leg is not supported."""
    if otype is OrderType.MARKET:
        raise unsupported("an OCO takes no market leg")
    return "LIMIT_MAKER" if otype is OrderType.LIMIT else WIRE_TYPES[otype]


def _leg_level(leg: OrderRequest) -> Decimal | None:
    """The price an OCO leg sits at: its trigger, else its limit (None: a trailing leg without one)."""
    return leg.trigger_price if leg.trigger_price is not None else leg.price


def above_below(request: OrderListRequest) -> tuple[OrderRequest, OrderRequest]:
    """An OCO's (above, below) legs: by their price levels when both are known, else as given."""
    first, second = request.orders
    high, low = _leg_level(first), _leg_level(second)
    if high is not None and low is not None and low > high:
        return second, first
    return first, second


def _leg(prefix: str, leg: OrderRequest, wire_type: str) -> dict[str, str]:
    out = {f"{prefix}Type": wire_type, f"{prefix}ClientOrderId": leg.client_order_id}
    if leg.price is not None and wire_type != "MARKET":
        out[f"{prefix}Price"] = _plain(leg.price)
    if leg.trigger_price is not None:
        out[f"{prefix}StopPrice"] = _plain(leg.trigger_price)
    if leg.trailing_bps is not None:
        out[f"{prefix}TrailingDelta"] = str(leg.trailing_bps)
    if wire_type in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        out[f"{prefix}TimeInForce"] = "GTC"
    if leg.display_size is not None:
        out[f"{prefix}IcebergQty"] = _plain(leg.display_size)
    return out


def list_shape(request: OrderListRequest) -> None:
    """Two legs of one symbol with distinct client order ids; an OCO's of one side and size."""
    if len(request.orders) != 2:
        raise OrderRejected("INVALID_ORDER_LIST", f"{request.kind.value} takes 2 orders, got {len(request.orders)}")
    first, second = request.orders
    if first.symbol != second.symbol:
        raise OrderRejected("INVALID_ORDER_LIST", "the legs of a list trade one symbol")
    if first.client_order_id == second.client_order_id:
        raise OrderRejected("INVALID_ORDER_LIST", "the legs of a list need distinct client order ids")
    if request.kind is ListKind.OCO and (first.side is not second.side or first.size != second.size):
        raise OrderRejected("INVALID_ORDER_LIST", "the legs of an OCO have one side and one size")
    if request.kind is ListKind.OTO and first.type is not OrderType.LIMIT:
        raise unsupported(f"an OTO's working order is a limit order, not {first.type.value}")


def list_params(request: OrderListRequest, market_id: str) -> dict[str, str]:
    """The raw parameters of ``POST /api/v3/orderList/oco`` or ``/oto`` (checked by :func:`list_shape`)."""
    params = {"symbol": market_id, "newOrderRespType": "FULL"}
    if _LIST_CLIENT_ID.fullmatch(request.list_client_id):
        # Only informational to us (legs are tracked and queried by their own client order ids):
        # an id Binance would refuse (-1100) is left out, and ccxt generates one.
        params["listClientOrderId"] = request.list_client_id
    if request.kind is ListKind.OCO:
        above, below = above_below(request)
        params.update({"side": above.side.value.upper(), "quantity": _plain(above.size)})
        params.update(_leg("above", above, oco_wire_type(above.type)))
        params.update(_leg("below", below, oco_wire_type(below.type)))
        return params
    if request.kind is ListKind.OTO:
        working, pending = request.orders
        for prefix, leg in (("working", working), ("pending", pending)):
            params.update({f"{prefix}Side": leg.side.value.upper(), f"{prefix}Quantity": _plain(leg.size)})
            params.update(_leg(prefix, leg, WIRE_TYPES[leg.type]))
        return params
    raise unsupported(f"{request.kind.value} is not a venue order list")


def list_wire_types(request: OrderListRequest) -> tuple[str, ...]:
    """The Binance types of a list's legs, in request order."""
    if request.kind is ListKind.OCO:
        return tuple(oco_wire_type(leg.type) for leg in request.orders)
    return tuple(WIRE_TYPES[leg.type] for leg in request.orders)

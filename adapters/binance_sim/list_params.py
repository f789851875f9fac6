"""Parameters of the order list endpoints: legs, OCO price rules, and the legacy OCO form.

Each leg is parsed by :func:`~adapters.binance_sim.order_params.parse_new_order` through a
name map (``aboveType`` -> ``type``, ``workingPrice`` -> ``price``...), so a leg obeys the
same per-type rules as a single order and errors name the parameter that was sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from adapters.binance_sim import errors
from adapters.binance_sim.config import SymbolConfig
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.order_params import NewOrder, parse_new_order

#: Leg types an OCO (or the pending pair of an OTOCO) accepts.
OCO_LEG_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
#: Working order types of OTO / OTOCO.
WORKING_TYPES = ("LIMIT", "LIMIT_MAKER")
_LIST_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")
_LEG_FIELDS = ("type", "price", "stopPrice", "trailingDelta", "timeInForce", "icebergQty", "quoteOrderQty")


def leg_names(prefix: str, *, side: str, quantity: str) -> dict[str, str]:
    """Canonical -> wire names of one leg (``prefix`` ``above``: ``abovePrice``, ...)."""
    names = {name: prefix + name[0].upper() + name[1:] for name in _LEG_FIELDS}
    names.update({"side": side, "quantity": quantity, "newClientOrderId": f"{prefix}ClientOrderId"})
    return names


def parse_leg(
    params: Mapping[str, str],
    symbols: Mapping[str, SymbolConfig],
    prefix: str,
    *,
    side: str,
    quantity: str,
    allowed: tuple[str, ...],
    refusal: ApiError,
) -> NewOrder:
    """One leg; a type outside ``allowed`` is answered with ``refusal``."""
    names = leg_names(prefix, side=side, quantity=quantity)
    otype = params.get(names["type"])
    if otype and otype not in allowed:
        raise refusal
    return parse_new_order(params, symbols, names)


def oco_type_refused() -> ApiError:
    """-1158: a leg type an OCO does not take."""
    return ApiError(400, -1158, "Order type not supported in OCO.")


def _kind(otype: str) -> str:
    if otype == "LIMIT_MAKER":
        return "limit"
    return "stop loss" if otype.startswith("STOP_LOSS") else "take profit"


def _reference(leg: NewOrder) -> Decimal | None:
    """The price an OCO leg is compared with the last price by (None: trailing without stop price)."""
    return leg.price if leg.type == "LIMIT_MAKER" else leg.stop_price


def check_oco_types(params: Mapping[str, str], above_name: str, below_name: str, side_name: str) -> None:
    """Binance's OCO leg type rules, checked before the legs' own parameters.

    Exactly one leg is a stop loss. SELL: limit or take profit above, stop loss below.
    BUY: stop loss above, limit or take profit below.
    """
    types = []
    for name in (above_name, below_name):
        otype = params.get(name)
        if not otype:
            raise errors.mandatory(name)
        if otype not in OCO_LEG_TYPES:
            raise oco_type_refused()
        types.append(_kind(otype))
    up, down = types
    if up == down == "limit":
        raise ApiError(400, -1168, "At least one OCO order must be contingent.")
    if params.get(side_name) == "SELL":
        if up == "stop loss":
            raise ApiError(400, -1197, "A stop loss order in a sell OCO must be below.")
        if down == "limit":
            raise ApiError(400, -1166, "A limit order in a sell OCO must be above.")
        if down == "take profit":
            raise ApiError(400, -1199, "A take profit order in a sell OCO must be above.")
    elif params.get(side_name) == "BUY":
        if down == "stop loss":
            raise ApiError(400, -1196, "A stop loss order in a buy OCO must be above.")
        if up == "limit":
            raise ApiError(400, -1165, "A limit order in a buy OCO must be below.")
        if up == "take profit":
            raise ApiError(400, -1198, "A take profit order in a buy OCO must be below.")


def check_oco_prices(above: NewOrder, below: NewOrder, last_price: Decimal) -> None:
    """``above > last price > below``, comparing limit prices of LIMIT_MAKER legs and stop prices of others."""
    high, low = _reference(above), _reference(below)
    if (high is not None and high <= last_price) or (low is not None and low >= last_price):
        raise ApiError(400, -2010, "The relationship of the prices for the orders is not correct.")


def stop_loss_first(legs: tuple[NewOrder, NewOrder]) -> tuple[NewOrder, NewOrder]:
    """OCO legs in id order: the stop-loss leg first, as in Binance's examples."""
    first, second = legs
    return (second, first) if second.type.startswith("STOP_LOSS") else (first, second)


def list_client_id(params: Mapping[str, str]) -> str | None:
    """``listClientOrderId`` if sent (-1100 when malformed)."""
    raw = params.get("listClientOrderId") or None
    if raw is not None and not _LIST_ID_RE.match(raw):
        raise ApiError(
            400,
            -1100,
            "Illegal characters found in parameter 'listClientOrderId'; legal range is '^[a-zA-Z0-9-_.:/]{1,36}$'.",
        )
    return raw


def from_legacy_oco(params: Mapping[str, str]) -> dict[str, str]:
    """``POST /api/v3/order/oco`` parameters rewritten as ``/api/v3/orderList/oco`` ones.

    The legacy form has a LIMIT_MAKER leg (``price``, ``limit*``) and a STOP_LOSS leg
    (``stopPrice``, ``trailingDelta``; STOP_LOSS_LIMIT with ``stopLimitPrice``,
    ``stopLimitTimeInForce``): above/below follow from the side.
    """
    limit = {"Type": "LIMIT_MAKER", "Price": params.get("price"), "IcebergQty": params.get("limitIcebergQty"),
             "ClientOrderId": params.get("limitClientOrderId")}
    stop_limit = params.get("stopLimitPrice")
    stop = {"Type": "STOP_LOSS_LIMIT" if stop_limit else "STOP_LOSS", "Price": stop_limit,
            "StopPrice": params.get("stopPrice"), "TrailingDelta": params.get("trailingDelta"),
            "TimeInForce": params.get("stopLimitTimeInForce"), "IcebergQty": params.get("stopIcebergQty"),
            "ClientOrderId": params.get("stopClientOrderId")}
    above, below = (limit, stop) if params.get("side") == "SELL" else (stop, limit)
    out = {k: v for k, v in params.items() if k in ("symbol", "side", "quantity", "listClientOrderId",
                                                     "newOrderRespType", "selfTradePreventionMode")}
    for prefix, leg in (("above", above), ("below", below)):
        out.update({prefix + key: value for key, value in leg.items() if value})
    return out

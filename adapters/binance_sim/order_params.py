"""Parsing and validation of ``POST /api/v3/order`` parameters (Binance rules and codes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.binance_sim import errors
from adapters.binance_sim.config import SymbolConfig
from adapters.binance_sim.decimals import is_multiple, parse_decimal
from adapters.binance_sim.errors import ApiError

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")
_SIDES = ("BUY", "SELL")
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
_LIMIT_LIKE = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A syntactically valid new-order request."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    client_order_id: str | None
    resp_type: str
    stp_mode: str


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_decimal(raw)
    if value is None:
        raise errors.illegal(name)
    return value


def _need(value: Decimal | None, name: str) -> Decimal:
    if value is None:
        raise errors.mandatory(name)
    return value


def parse_new_order(params: Mapping[str, str], symbols: Mapping[str, SymbolConfig]) -> NewOrder:
    """Validate parameter presence and syntax; raise :class:`ApiError` like Binance would."""
    symbol = params.get("symbol")
    if not symbol:
        raise errors.mandatory("symbol")
    cfg = symbols.get(symbol.upper())
    if cfg is None:
        raise errors.bad_symbol()
    side = params.get("side")
    if not side:
        raise errors.mandatory("side")
    if side not in _SIDES:
        raise ApiError(400, -1117, "Invalid side.")
    otype = params.get("type")
    if not otype:
        raise errors.mandatory("type")
    if otype not in cfg.order_types:
        raise ApiError(400, -1116, "Invalid orderType.")

    tif = params.get("timeInForce")
    qty = _decimal(params, "quantity")
    quote_qty = _decimal(params, "quoteOrderQty")
    price = _decimal(params, "price")
    stop_price = _decimal(params, "stopPrice")
    iceberg = _decimal(params, "icebergQty")
    if iceberg is not None and iceberg > 0:
        raise errors.not_required("icebergQty")

    if otype in _LIMIT_LIKE:
        if not tif:
            raise errors.mandatory("timeInForce")
        _need(qty, "quantity")
        _need(price, "price")
        if quote_qty is not None:
            raise errors.not_required("quoteOrderQty")
        if otype in STOP_TYPES:
            _need(stop_price, "stopPrice")
        elif stop_price is not None:
            raise errors.not_required("stopPrice")
    elif otype == "LIMIT_MAKER":
        if tif:
            raise errors.not_required("timeInForce")
        _need(qty, "quantity")
        _need(price, "price")
        if stop_price is not None or quote_qty is not None:
            raise errors.not_required("stopPrice" if stop_price is not None else "quoteOrderQty")
        tif = "GTC"
    elif otype == "MARKET":
        if tif:
            raise errors.not_required("timeInForce")
        if price is not None:
            raise errors.not_required("price")
        if stop_price is not None:
            raise errors.not_required("stopPrice")
        if (qty is None) == (quote_qty is None):
            if qty is None:
                raise ApiError(
                    400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            raise ApiError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
        tif = "GTC"
    else:  # pragma: no cover - every advertised type is handled above
        raise ApiError(400, -1116, "Invalid orderType.")
    if tif not in _TIFS:
        raise ApiError(400, -1115, "Invalid timeInForce.")

    client_id = params.get("newClientOrderId") or None
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise ApiError(
            400,
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_.:/]{1,36}$'.",
        )
    resp_type = params.get("newOrderRespType") or "FULL"
    if resp_type not in _RESP_TYPES:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'newOrderRespType'.")
    stp = params.get("selfTradePreventionMode") or "EXPIRE_MAKER"
    if stp not in _STP_MODES:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'selfTradePreventionMode'.")
    return NewOrder(
        symbol=cfg.symbol,
        side=side,
        type=otype,
        time_in_force=tif,
        quantity=qty,
        quote_qty=quote_qty,
        price=price,
        stop_price=stop_price,
        client_order_id=client_id,
        resp_type=resp_type,
        stp_mode=stp,
    )


def check_filters(req: NewOrder, cfg: SymbolConfig, reference_price: Decimal) -> None:
    """Apply PRICE_FILTER, LOT_SIZE and NOTIONAL; ``reference_price`` values market orders."""
    for price in (req.price, req.stop_price):
        if price is not None and (
            price < cfg.min_price or price > cfg.max_price or not is_multiple(price, cfg.tick_size)
        ):
            raise errors.filter_failure("PRICE_FILTER")
    if req.quantity is not None and (
        req.quantity < cfg.min_qty or req.quantity > cfg.max_qty or not is_multiple(req.quantity, cfg.step_size)
    ):
        raise errors.filter_failure("LOT_SIZE")
    if req.quote_qty is not None:
        notional = req.quote_qty
    else:
        assert req.quantity is not None
        notional = req.quantity * (req.price if req.price is not None else reference_price)
    if notional < cfg.min_notional:
        raise errors.filter_failure("NOTIONAL")
    if req.price is not None and notional > cfg.max_notional:
        raise errors.filter_failure("NOTIONAL")

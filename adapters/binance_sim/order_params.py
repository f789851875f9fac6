"""Parsing and validation of ``POST /api/v3/order`` parameters (Binance rules and codes).

Order list legs (``aboveType``/``abovePrice``..., ``workingType``..., ``pendingType``...) are
parsed by the same rules through a name map (canonical name -> wire name), so an error names
the parameter the client actually sent, as Binance's do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.binance_sim import errors
from adapters.binance_sim.config import SymbolConfig
from adapters.binance_sim.decimals import is_multiple, parse_decimal
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.orders import MARKET_STOP_TYPES, STOP_TYPES

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
_SIDES = ("BUY", "SELL")
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
_LIMIT_LIKE = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
_ICEBERG_TYPES = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
__all__ = ["STOP_TYPES", "NewOrder", "check_filters", "parse_new_order", "stop_above_market"]


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A syntactically valid new-order request (``trailing_delta`` in BIPS)."""

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
    trailing_delta: int | None = None
    iceberg_qty: Decimal | None = None


class _Params:
    """Request parameters read by canonical name, reported by wire name."""

    def __init__(self, params: Mapping[str, str], names: Mapping[str, str] | None) -> None:
        self._params = params
        self._names = names or {}

    def wire(self, name: str) -> str:
        return self._names.get(name, name)

    def get(self, name: str) -> str | None:
        return self._params.get(self.wire(name))

    def decimal(self, name: str) -> Decimal | None:
        raw = self.get(name)
        if raw is None or raw == "":
            return None
        value = parse_decimal(raw)
        if value is None:
            raise errors.illegal(self.wire(name))
        return value

    def integer(self, name: str) -> int | None:
        raw = self.get(name)
        if raw is None or raw == "":
            return None
        if not _INT_RE.match(raw):
            wire = self.wire(name)
            raise ApiError(
                400, -1100, f"Illegal characters found in parameter '{wire}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(raw)

    def need(self, value: object, name: str) -> None:
        if value is None:
            raise errors.mandatory(self.wire(name))

    def refuse(self, value: object, name: str) -> None:
        if value is not None:
            raise errors.not_required(self.wire(name))


def parse_new_order(
    params: Mapping[str, str], symbols: Mapping[str, SymbolConfig], names: Mapping[str, str] | None = None
) -> NewOrder:
    """Validate parameter presence and syntax; raise :class:`ApiError` like Binance would."""
    p = _Params(params, names)
    symbol = p.get("symbol")
    if not symbol:
        raise errors.mandatory(p.wire("symbol"))
    cfg = symbols.get(symbol.upper())
    if cfg is None:
        raise errors.bad_symbol()
    side = p.get("side")
    if not side:
        raise errors.mandatory(p.wire("side"))
    if side not in _SIDES:
        raise ApiError(400, -1117, "Invalid side.")
    otype = p.get("type")
    if not otype:
        raise errors.mandatory(p.wire("type"))
    if otype not in cfg.order_types:
        raise ApiError(400, -1116, "Invalid orderType.")

    tif = p.get("timeInForce")
    qty = p.decimal("quantity")
    quote_qty = p.decimal("quoteOrderQty")
    price = p.decimal("price")
    stop_price = p.decimal("stopPrice")
    trailing = p.integer("trailingDelta")
    iceberg = p.decimal("icebergQty")
    if iceberg is not None and iceberg == 0:
        iceberg = None  # Binance treats icebergQty=0 as "not an iceberg"
    if iceberg is not None and otype not in _ICEBERG_TYPES:
        raise errors.not_required(p.wire("icebergQty"))
    if otype not in STOP_TYPES:
        p.refuse(stop_price, "stopPrice")
        p.refuse(trailing, "trailingDelta")
    elif stop_price is None and trailing is None:
        raise ApiError(
            400,
            -1102,
            f"Param '{p.wire('stopPrice')}' or '{p.wire('trailingDelta')}' must be sent, but both were empty/null!",
        )

    if otype in _LIMIT_LIKE:
        if not tif:
            raise errors.mandatory(p.wire("timeInForce"))
        p.need(qty, "quantity")
        p.need(price, "price")
        p.refuse(quote_qty, "quoteOrderQty")
    elif otype in MARKET_STOP_TYPES:
        p.refuse(tif or None, "timeInForce")
        p.need(qty, "quantity")
        p.refuse(price, "price")
        p.refuse(quote_qty, "quoteOrderQty")
        tif = "GTC"
    elif otype == "LIMIT_MAKER":
        p.refuse(tif or None, "timeInForce")
        p.need(qty, "quantity")
        p.need(price, "price")
        p.refuse(quote_qty, "quoteOrderQty")
        tif = "GTC"
    elif otype == "MARKET":
        p.refuse(tif or None, "timeInForce")
        p.refuse(price, "price")
        if (qty is None) == (quote_qty is None):
            if qty is None:
                raise ApiError(
                    400,
                    -1102,
                    f"Param '{p.wire('quantity')}' or '{p.wire('quoteOrderQty')}' must be sent, "
                    "but both were empty/null!",
                )
            raise errors.not_required(p.wire("quoteOrderQty"))
        tif = "GTC"
    else:  # pragma: no cover - every advertised type is handled above
        raise ApiError(400, -1116, "Invalid orderType.")
    if tif not in _TIFS:
        raise ApiError(400, -1115, "Invalid timeInForce.")
    if iceberg is not None and tif != "GTC":
        raise ApiError(400, -2010, "Unsupported order combination")

    client_id = p.get("newClientOrderId") or None
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{p.wire('newClientOrderId')}'; "
            "legal range is '^[a-zA-Z0-9-_.:/]{1,36}$'.",
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
        trailing_delta=trailing,
        iceberg_qty=iceberg,
    )


def stop_above_market(otype: str, side: str) -> bool:
    """True for stops whose stop price lies above the market (STOP_LOSS* BUY, TAKE_PROFIT* SELL).

    They trigger (or, trailing, start tracking) when the last price rises to the stop price;
    the others when it falls to it. The TRAILING_DELTA filter's "above" bounds apply to them.
    """
    return otype.startswith("STOP_LOSS") == (side == "BUY")


def check_filters(req: NewOrder, cfg: SymbolConfig, reference_price: Decimal) -> None:
    """Apply PRICE_FILTER, LOT_SIZE, ICEBERG_PARTS, TRAILING_DELTA and NOTIONAL.

    ``reference_price`` values market orders (and stop-market orders, which have no price).
    """
    for price in (req.price, req.stop_price):
        if price is not None and (
            price < cfg.min_price or price > cfg.max_price or not is_multiple(price, cfg.tick_size)
        ):
            raise errors.filter_failure("PRICE_FILTER")
    for qty in (req.quantity, req.iceberg_qty):
        if qty is not None and (qty < cfg.min_qty or qty > cfg.max_qty or not is_multiple(qty, cfg.step_size)):
            raise errors.filter_failure("LOT_SIZE")
    if req.iceberg_qty is not None:
        assert req.quantity is not None
        if req.iceberg_qty >= req.quantity:
            raise ApiError(400, -2010, "IcebergQty exceeds QTY.")
        if math.ceil(req.quantity / req.iceberg_qty) > cfg.iceberg_parts:
            raise errors.filter_failure("ICEBERG_PARTS")
    if req.trailing_delta is not None and not cfg.min_trailing_delta <= req.trailing_delta <= cfg.max_trailing_delta:
        raise errors.filter_failure("TRAILING_DELTA")
    if req.quote_qty is not None:
        notional = req.quote_qty
    else:
        assert req.quantity is not None
        notional = req.quantity * (req.price if req.price is not None else reference_price)
    if notional < cfg.min_notional:
        raise errors.filter_failure("NOTIONAL")
    if req.price is not None and notional > cfg.max_notional:
        raise errors.filter_failure("NOTIONAL")

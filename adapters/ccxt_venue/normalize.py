"""ccxt unified structures → aaiti messages (VenueOrder, Fill, Balance), validated.

ccxt reads payloads with tolerant getters, so a broken message tends to become ``None``
or nonsense rather than an exception. Everything here is checked and a bad structure
raises :class:`Malformed` (reason code + detail) — the caller logs, counts and skips it.

Numbers: ccxt hands out floats; ``Decimal(repr(x))`` recovers the exchange's decimal
string for any value of up to 15 significant digits (repr is the shortest round-trip form).

Trade ids: Binance trade ids are unique per symbol only, so a fill's ``trade_id`` is
``"<symbol>:<id>"`` (e.g. ``BTC/USDT:7001``); (venue, trade_id) is then unique.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from actors.model.orders import CONDITIONAL_TYPES, Balance, Fill, OrderStatus, OrderType, Side, VenueOrder

_ZERO = Decimal(0)

#: Binance order statuses (REST ``status``, stream ``X``).
_RAW_STATUS: Mapping[str, OrderStatus] = MappingProxyType(
    {
        "NEW": OrderStatus.ACCEPTED,
        # An OTO's pending order: placed and known by the venue, released once the working fills.
        "PENDING_NEW": OrderStatus.ACCEPTED,
        "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
        "FILLED": OrderStatus.FILLED,
        "CANCELED": OrderStatus.CANCELED,
        "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
        "REJECTED": OrderStatus.REJECTED,
        "EXPIRED": OrderStatus.EXPIRED,
        "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    }
)
#: ccxt unified statuses.
_UNIFIED_STATUS: Mapping[str, OrderStatus] = MappingProxyType(
    {
        "closed": OrderStatus.FILLED,
        "canceled": OrderStatus.CANCELED,
        "cancelled": OrderStatus.CANCELED,
        "canceling": OrderStatus.PENDING_CANCEL,
        "rejected": OrderStatus.REJECTED,
        "expired": OrderStatus.EXPIRED,
    }
)


#: Binance order types (REST ``type``, stream ``o``; ccxt's own spot ``type`` only says
#: market or limit). LIMIT_MAKER is a post-only limit.
_RAW_TYPES: Mapping[str, OrderType] = MappingProxyType(
    {
        "MARKET": OrderType.MARKET,
        "LIMIT": OrderType.LIMIT,
        "LIMIT_MAKER": OrderType.LIMIT,
        "STOP_LOSS": OrderType.STOP_MARKET,
        "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
        "TAKE_PROFIT": OrderType.TAKE_PROFIT,
        "TAKE_PROFIT_LIMIT": OrderType.TAKE_PROFIT_LIMIT,
    }
)


class Malformed(Exception):
    """A structure from the venue that cannot be trusted; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def to_decimal(value: Any, what: str) -> Decimal | None:
    """``value`` (float, int, str, Decimal or None) as a finite Decimal; None stays None."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Malformed("bad_number", f"{what}={value!r}")
            return Decimal(repr(value))
        if isinstance(value, bool):
            raise Malformed("bad_number", f"{what}={value!r}")
        dec = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise Malformed("bad_number", f"{what}={value!r}") from None
    if not dec.is_finite():
        raise Malformed("bad_number", f"{what}={value!r}")
    return dec


def _required(value: Any, what: str) -> Decimal:
    dec = to_decimal(value, what)
    if dec is None:
        raise Malformed("missing_field", what)
    return dec


def _positive(value: Any, what: str) -> Decimal:
    dec = _required(value, what)
    if dec <= 0:
        raise Malformed("impossible_value", f"{what}={dec}")
    return dec


def _optional_positive(value: Any, what: str) -> Decimal | None:
    dec = to_decimal(value, what)
    if dec is None or dec == 0:
        return None  # Binance reports price 0 for market orders
    if dec < 0:
        raise Malformed("impossible_value", f"{what}={dec}")
    return dec


def _symbol(raw: Mapping[str, Any], markets: Container[str]) -> str:
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise Malformed("missing_field", "symbol")
    if symbol not in markets:
        raise Malformed("unknown_symbol", symbol)
    return symbol


def _side(raw: Mapping[str, Any]) -> Side:
    side = raw.get("side")
    if side == "buy":
        return Side.BUY
    if side == "sell":
        return Side.SELL
    raise Malformed("bad_side", repr(side))


def _int_ms(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return 0


def _info(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    info = raw.get("info")
    return info if isinstance(info, Mapping) else {}


def order_type(raw: Mapping[str, Any]) -> OrderType:
    """Our type of a ccxt order: Binance's own type when present, else ccxt's (market or limit)."""
    info = _info(raw)
    for key in ("o", "type"):
        value = info.get(key)
        if isinstance(value, str) and value.upper() in _RAW_TYPES:
            return _RAW_TYPES[value.upper()]
    otype = raw.get("type")
    if not isinstance(otype, str) or not otype:
        raise Malformed("missing_field", "type")
    return _RAW_TYPES.get(otype.upper(), OrderType.MARKET if otype.lower() == "market" else OrderType.LIMIT)


def _triggered(info: Mapping[str, Any]) -> bool:
    """True when a conditional order Binance reports as NEW has triggered (is working).

    ``isWorking`` (REST) / ``w`` (stream) turn true at the trigger; without them, a
    ``workingTime`` / ``W`` other than -1 says so.
    """
    for key in ("isWorking", "w"):
        value = info.get(key)
        if isinstance(value, bool):
            return value
    for key in ("workingTime", "W"):
        value = info.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value > 0
    return False


def order_status(raw: Mapping[str, Any], filled: Decimal, otype: OrderType | None = None) -> OrderStatus:
    """The aaiti status of a ccxt order: Binance's own status when present, else ccxt's.

    A conditional order (``otype`` in ``CONDITIONAL_TYPES``) that Binance still reports as NEW
    once it triggered (a stop-limit resting on the book, or the report between the trigger and
    the execution) is TRIGGERED.
    """
    info = _info(raw)
    for key in ("X", "status"):
        value = info.get(key)
        if isinstance(value, str) and value in _RAW_STATUS:
            status = _RAW_STATUS[value]
            if value == "NEW" and otype in CONDITIONAL_TYPES and _triggered(info):
                return OrderStatus.TRIGGERED
            return status
    unified = raw.get("status")
    if unified == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
    if isinstance(unified, str) and unified in _UNIFIED_STATUS:
        return _UNIFIED_STATUS[unified]
    raise Malformed("unknown_status", repr(unified))


def order_client_id(raw: Mapping[str, Any]) -> str:
    """Our client order id of a ccxt order (Binance cancel replies carry it in origClientOrderId)."""
    info = _info(raw)
    for value in (info.get("origClientOrderId"), raw.get("clientOrderId")):
        if isinstance(value, str) and value:
            return value
    return ""


def venue_order(
    venue: str, raw: Mapping[str, Any], markets: Container[str], *, client_order_id: str | None = None
) -> VenueOrder:
    """A ccxt order structure as a validated :class:`VenueOrder`.

    ``client_order_id`` overrides the id found in the structure (a cancel by our id).
    Raises :class:`Malformed` on a missing id/symbol/side/size, an unknown symbol or status,
    negative numbers, or ``filled`` beyond the size.
    """
    if not isinstance(raw, Mapping):
        raise Malformed("not_an_object", type(raw).__name__)
    vid = raw.get("id")
    if vid is None or vid == "":
        raise Malformed("missing_field", "id")
    coid = client_order_id or order_client_id(raw)
    if not coid:
        raise Malformed("missing_field", "clientOrderId")
    symbol = _symbol(raw, markets)
    side = _side(raw)
    otype = order_type(raw)
    size = _positive(raw.get("amount"), "amount")
    filled = to_decimal(raw.get("filled"), "filled")
    if filled is None:
        filled = _ZERO
    if filled < 0 or filled > size:
        raise Malformed("impossible_value", f"filled={filled} size={size}")
    price = _optional_positive(raw.get("price"), "price")
    avg = _optional_positive(raw.get("average"), "average")
    status = order_status(raw, filled, otype)
    ts = _int_ms(raw.get("lastUpdateTimestamp")) or _int_ms(raw.get("lastTradeTimestamp")) or _int_ms(
        raw.get("timestamp")
    )
    reason = _info(raw).get("r")
    return VenueOrder(
        venue=venue,
        client_order_id=coid,
        venue_order_id=str(vid),
        symbol=symbol,
        side=side,
        type=otype,
        status=status,
        size=size,
        filled=filled,
        price=price,
        avg_price=avg,
        ts_ms=ts,
        reason=reason if isinstance(reason, str) and reason not in ("", "NONE") else "",
    )


def trade_order_id(raw: Mapping[str, Any]) -> str:
    """The venue order id a ccxt trade belongs to ("" if missing)."""
    order = raw.get("order")
    return "" if order is None else str(order)


def trade_client_order_id(raw: Mapping[str, Any]) -> str:
    """Our client order id if the trade carries it (stream reports do, Binance REST trades do not)."""
    value = raw.get("clientOrderId")
    if isinstance(value, str) and value:
        return value
    info = _info(raw)
    for key in ("C", "c", "clientOrderId"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def fill_trade_id(symbol: str, trade_id: str) -> str:
    """The unique trade id stored with a fill (``<symbol>:<venue trade id>``)."""
    return f"{symbol}:{trade_id}"


def fill(venue: str, raw: Mapping[str, Any], markets: Container[str], client_order_id: str) -> Fill:
    """A ccxt trade structure (one of our executions) as a validated :class:`Fill`."""
    if not isinstance(raw, Mapping):
        raise Malformed("not_an_object", type(raw).__name__)
    tid = raw.get("id")
    if tid is None or tid == "" or str(tid) == "-1":
        raise Malformed("missing_field", "trade id")
    symbol = _symbol(raw, markets)
    side = _side(raw)
    price = _positive(raw.get("price"), "price")
    size = _positive(raw.get("amount"), "amount")
    fee_cost = _ZERO
    fee_currency = ""
    fee = raw.get("fee")
    if isinstance(fee, Mapping):
        cost = to_decimal(fee.get("cost"), "fee.cost")
        if cost is not None:
            if cost < 0:
                raise Malformed("impossible_value", f"fee.cost={cost}")
            fee_cost = cost
        currency = fee.get("currency")
        fee_currency = currency if isinstance(currency, str) else ""
    liquidity = "maker" if raw.get("takerOrMaker") == "maker" else "taker"
    return Fill(
        venue=venue,
        trade_id=fill_trade_id(symbol, str(tid)),
        client_order_id=client_order_id,
        venue_order_id=trade_order_id(raw),
        symbol=symbol,
        side=side,
        price=price,
        size=size,
        fee=fee_cost,
        fee_currency=fee_currency,
        liquidity=liquidity,
        ts_ms=_int_ms(raw.get("timestamp")),
    )


def balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """A ccxt balance structure as ``{asset: Balance}``; assets at zero are left out.

    ``used`` may be None after a lone ``balanceUpdate`` (it carries no locked amount): it is
    then 0 and the reconciler's next REST read corrects it. Negative values raise :class:`Malformed`.
    """
    out: dict[str, Balance] = {}
    free_map = raw.get("free")
    used_map = raw.get("used")
    if not isinstance(free_map, Mapping):
        raise Malformed("missing_field", "free")
    for asset, free_v in free_map.items():
        if not isinstance(asset, str):
            continue
        free = to_decimal(free_v, f"{asset}.free") or _ZERO
        used = (to_decimal(used_map.get(asset), f"{asset}.used") if isinstance(used_map, Mapping) else None) or _ZERO
        if free < 0 or used < 0:
            raise Malformed("impossible_value", f"{asset}: free={free} used={used}")
        if free == 0 and used == 0:
            continue
        out[asset] = Balance(asset=asset, free=free, locked=used)
    return out

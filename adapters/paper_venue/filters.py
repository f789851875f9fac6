"""The paper venue's order filters: what an exchange refuses before it books anything.

The reason codes are the ones the live ccxt venue gives for the same order, so a strategy
meets the same refusal in a backtest, on paper and live:

- ``UNSUPPORTED_ORDER_TYPE``: a conditional type (stop, take-profit), a trailing delta or an
  iceberg display size. The paper venue has none of them natively (it does not implement
  ``NativeOrders``): the daemon emulates them on paper, so paper and backtests behave alike;
- ``INVALID_QUANTITY``: the size is not a positive number;
- ``PRECISION``: the size is not a multiple of ``step_size``, or a limit price not a multiple
  of ``tick_size`` (the ccxt venue checks these before sending);
- ``INVALID_PRICE``: a limit order without a positive price, or a market order with one;
- ``INVALID_ORDER``: the exchange's "Filter failure" (Binance -1013, which ccxt raises as
  ``InvalidOrder``): LOT_SIZE when the size is outside ``min_qty``..``max_qty``, NOTIONAL when
  the order's value is below ``min_notional``. The message names the filter.

Checks run in the live path's order: what the venue does not run at all, quantity, then price
(those the ccxt venue makes before sending), then the exchange's LOT_SIZE and NOTIONAL.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from actors.model.orders import CONDITIONAL_TYPES, OrderRequest, OrderType
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE, OrderRejected
from config.schema.trading import InstrumentSection

__all__ = [
    "FILTER_FAILURE",
    "INVALID_PRICE",
    "INVALID_QUANTITY",
    "PRECISION",
    "check_native",
    "check_notional",
    "check_order",
    "is_multiple",
]

#: The size is not a positive number.
INVALID_QUANTITY = "INVALID_QUANTITY"
#: A limit order without a positive price, or a market order with a price.
INVALID_PRICE = "INVALID_PRICE"
#: The size is off the step or the price off the tick.
PRECISION = "PRECISION"
#: An exchange filter (LOT_SIZE, NOTIONAL) refused the order.
FILTER_FAILURE = "INVALID_ORDER"


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is a whole multiple of ``step``."""
    try:
        return value % step == 0
    except InvalidOperation:
        return False


def check_native(req: OrderRequest) -> None:
    """Refuse, definitively, what only a venue with native conditional orders runs."""
    if req.type in CONDITIONAL_TYPES:
        what = f"{req.type.value} orders"
    elif req.trailing_bps is not None:
        what = "trailing stops"
    elif req.display_size is not None:
        what = "iceberg orders"
    elif req.trigger_price is not None:
        what = "trigger prices"
    else:
        return
    raise OrderRejected(UNSUPPORTED_ORDER_TYPE,
                        f"paper venue emulates {what} in the daemon: it takes plain market and limit orders only")


def check_order(req: OrderRequest, inst: InstrumentSection) -> None:
    """Refuse ``req`` with ``OrderRejected`` when it breaks a filter that needs no market price.

    A market order's NOTIONAL filter needs a price: ``check_notional`` once one is known.
    """
    check_native(req)
    size = req.size
    if not size.is_finite() or size <= 0:
        raise OrderRejected(INVALID_QUANTITY, f"size {size}")
    if not is_multiple(size, inst.step_size):
        raise OrderRejected(PRECISION, f"size {size} is not a multiple of the step {inst.step_size}")
    price = req.price
    if req.type is OrderType.MARKET:
        if price is not None:
            raise OrderRejected(INVALID_PRICE, "market orders take no price")
    else:
        if price is None or not price.is_finite() or price <= 0:
            raise OrderRejected(INVALID_PRICE, f"limit price {price}")
        if not is_multiple(price, inst.tick_size):
            raise OrderRejected(PRECISION, f"price {price} is not on the tick {inst.tick_size}")
    if size < inst.min_qty:
        raise OrderRejected(FILTER_FAILURE, f"Filter failure: LOT_SIZE (size {size} < min_qty {inst.min_qty})")
    if size > inst.max_qty:
        raise OrderRejected(FILTER_FAILURE, f"Filter failure: LOT_SIZE (size {size} > max_qty {inst.max_qty})")
    if price is not None:
        check_notional(size, price, inst)


def check_notional(size: Decimal, price: Decimal, inst: InstrumentSection) -> None:
    """Refuse an order of ``size`` valued at ``price`` below the instrument's ``min_notional``."""
    notional = size * price
    if notional < inst.min_notional:
        raise OrderRejected(
            FILTER_FAILURE, f"Filter failure: NOTIONAL (value {notional} < min_notional {inst.min_notional})"
        )

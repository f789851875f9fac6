"""When stop orders trigger: plain stop prices and trailing stops (``trailingDelta`` in BIPS).

Rules (Binance spot, trailing-stop FAQ):

- A plain stop triggers on the first trade at or beyond its stop price: rising to it for
  STOP_LOSS* BUY and TAKE_PROFIT* SELL, falling to it for STOP_LOSS* SELL and TAKE_PROFIT* BUY.
- A trailing stop with a stop price starts tracking when that condition is met; the trade
  that meets it is the first reference price. Without a stop price it tracks from placement,
  starting at the last price.
- While tracking, SELL orders keep the highest trade price and trigger on a decrease of
  ``trailingDelta`` BIPS from it; BUY orders keep the lowest and trigger on such an increase.
  A trade exactly at the threshold triggers.
"""

from __future__ import annotations

from decimal import Decimal

from adapters.binance_sim.order_params import stop_above_market
from adapters.binance_sim.orders import Order

_BIPS = Decimal(10_000)


def stop_reached(otype: str, side: str, stop: Decimal, last: Decimal) -> bool:
    """True when ``last`` is at or beyond ``stop`` in the order's trigger direction."""
    return last >= stop if stop_above_market(otype, side) else last <= stop


def start_trailing(order: Order, price: Decimal, now: int) -> None:
    """Begin tracking at ``price`` (the activation trade, or the last price at placement)."""
    order.trailing_ref = price
    order.trailing_time_ms = now


def advance(order: Order, price: Decimal, now: int) -> bool:
    """Feed one trade price to a waiting stop order; True when it triggers."""
    if order.trailing_delta <= 0:
        return stop_reached(order.type, order.side, order.stop_price, price)
    if order.trailing_time_ms < 0:
        if stop_reached(order.type, order.side, order.stop_price, price):
            start_trailing(order, price, now)
        return False
    delta = Decimal(order.trailing_delta) / _BIPS
    if order.side == "SELL":
        order.trailing_ref = max(order.trailing_ref, price)
        return price <= order.trailing_ref * (1 - delta)
    order.trailing_ref = min(order.trailing_ref, price)
    return price >= order.trailing_ref * (1 + delta)

"""Turning a validated request into an :class:`Order`, and what it must reserve.

Reservations follow Binance spot: a SELL locks its quantity of the base asset; a BUY limit
(or stop-limit) locks ``price * quantity`` of the quote asset; a BUY stop-market order has no
price, so it locks ``quantity`` at its stop price (or the last price for a trailing stop
without one) and is re-reserved at its real cost when it triggers.
"""

from __future__ import annotations

from decimal import Decimal

from adapters.binance_sim.config import SymbolConfig
from adapters.binance_sim.decimals import ZERO
from adapters.binance_sim.matching import BUY
from adapters.binance_sim.order_params import NewOrder
from adapters.binance_sim.orders import Order, OrderStatus


def build_order(
    cfg: SymbolConfig,
    req: NewOrder,
    now: int,
    client_order_id: str,
    *,
    order_list_id: int = -1,
    status: OrderStatus = OrderStatus.NEW,
) -> Order:
    """A new, unregistered order (id 0, nothing locked) for ``req``."""
    is_buy = req.side == BUY
    waiting = req.type.startswith(("STOP_LOSS", "TAKE_PROFIT")) or status == OrderStatus.PENDING_NEW
    return Order(
        symbol=cfg.symbol,
        order_id=0,
        client_order_id=client_order_id,
        side=req.side,
        type=req.type,
        time_in_force=req.time_in_force,
        price=req.price if req.price is not None else ZERO,
        orig_qty=req.quantity if req.quantity is not None else ZERO,
        orig_quote_qty=req.quote_qty if req.quote_qty is not None else ZERO,
        stop_price=req.stop_price if req.stop_price is not None else ZERO,
        time_ms=now,
        locked_asset=cfg.quote_asset if is_buy else cfg.base_asset,
        locked=ZERO,
        seq=0,
        working_time_ms=-1 if waiting else now,
        self_trade_prevention=req.stp_mode,
        update_time_ms=now,
        status=status,
        iceberg_qty=req.iceberg_qty if req.iceberg_qty is not None else ZERO,
        trailing_delta=req.trailing_delta or 0,
        order_list_id=order_list_id,
    )


def reservation(order: Order, last_price: Decimal) -> Decimal:
    """What a non-MARKET order locks when it is accepted (see the module doc)."""
    if order.side != BUY:
        return order.remaining
    if order.executes_as_market:
        reference = order.stop_price if order.stop_price > 0 else last_price
        return reference * order.remaining
    return order.price * order.remaining

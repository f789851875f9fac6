"""Building blocks of the strategy API's orders: number conversion, exit levels, shape checks.

Kept apart from ``actors.strategy_api`` (which re-exports ``Exit``) so the API module stays one
job: the ``Strategy`` base class and how strategies are loaded.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation

from actors.model.orders import CONDITIONAL_TYPES, PRICED_TYPES, STOP_TYPES, OrderIntent, OrderType

__all__ = ["DecimalLike", "Exit", "ExitLike", "opt_decimal", "shape_problem", "to_decimal"]

DecimalLike = Decimal | int | float | str


@dataclasses.dataclass(frozen=True)
class Exit:
    """An exit level of ``buy(stop_loss=..., take_profit=...)`` or ``oco``: it triggers at
    ``trigger_price`` and then sends a market order, or a limit order at ``limit_price``.
    A plain number is accepted wherever an ``Exit`` is (a market exit at that trigger)."""

    trigger_price: DecimalLike
    limit_price: DecimalLike | None = None


ExitLike = Exit | DecimalLike


def to_decimal(value: DecimalLike, what: str) -> Decimal:
    """Convert a size or price to Decimal (floats via their shortest repr, so 0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    try:
        out = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return out


def opt_decimal(value: DecimalLike | None, what: str) -> Decimal | None:
    """``to_decimal`` of a value that may be None."""
    return to_decimal(value, what) if value is not None else None


def shape_problem(o: OrderIntent, *, sized: bool, symbols: tuple[str, ...]) -> str:
    """What is wrong with an order's fields ('' when nothing)."""
    if o.symbol not in symbols:
        return f"{o.symbol!r} is not one of its symbols {list(symbols)}"
    amount = o.size if o.size is not None else o.notional
    if sized and (o.size is None) == (o.notional is None):
        return "give exactly one of size or notional"
    if amount is not None and amount <= 0:
        return "size/notional must be > 0"
    t = o.type
    if t in PRICED_TYPES and (o.limit_price is None or o.limit_price <= 0):
        return f"a {t.value} order needs a limit_price > 0"
    if t not in PRICED_TYPES and o.limit_price is not None:
        return f"a {t.value} order takes no limit_price"
    if o.trailing is not None and (t not in STOP_TYPES or o.trigger_price is not None):
        return "only a stop trails, and a trailing stop takes no trigger_price (use its activation_price)"
    if t in CONDITIONAL_TYPES and o.trailing is None and (o.trigger_price is None or o.trigger_price <= 0):
        return f"a {t.value} order needs a trigger_price > 0"
    if t not in CONDITIONAL_TYPES and o.trigger_price is not None:
        return f"a {t.value} order takes no trigger_price"
    if o.display_size is not None and t is not OrderType.LIMIT:
        return "display_size (iceberg) needs a limit order"
    if o.twap is not None and t is not OrderType.MARKET:
        return "twap needs a market order"
    return ""

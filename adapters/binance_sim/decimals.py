"""Exact decimal helpers for prices, quantities and balances on the Binance wire."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

ZERO = Decimal(0)

# Binance's own grammar for decimal parameters (see its -1100 error text).
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


def fmt(value: Decimal, places: int = 8) -> str:
    """Format like Binance: fixed point with at least ``places`` decimals, never exponent form.

    More decimals are kept when the value needs them, so nothing is silently rounded.
    """
    exponent = value.normalize().as_tuple().exponent
    needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{value:.{max(places, needed)}f}"


def parse_decimal(text: str) -> Decimal | None:
    """Parse a non-negative decimal parameter; ``None`` when it breaks Binance's grammar."""
    if not _DECIMAL_RE.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already rules this out
        return None


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    return (value % step) == ZERO


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value``."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is >= ``value``."""
    return (value / step).to_integral_value(rounding=ROUND_UP) * step


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step`` (half up)."""
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


def quantize_places(value: Decimal, places: int) -> Decimal:
    """Round half up to ``places`` decimals (commissions are charged at asset precision)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

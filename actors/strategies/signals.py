"""Small signal helpers shared by the built-in strategies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

Period = Annotated[int, msgspec.Meta(ge=2, le=100_000)]


def check_size(size: Decimal) -> None:
    """Params check: an entry size must be a finite number > 0 (msgspec cannot bound Decimal)."""
    if not size.is_finite() or size <= 0:
        raise ValueError(f"size: must be a finite number > 0, got {size}")


def crossed_above(prev_a: float | None, prev_b: float | None, a: float, b: float) -> bool:
    """``a`` went from at-or-below ``b`` to above it."""
    return prev_a is not None and prev_b is not None and prev_a <= prev_b and a > b


def crossed_below(prev_a: float | None, prev_b: float | None, a: float, b: float) -> bool:
    """``a`` went from at-or-above ``b`` to below it."""
    return prev_a is not None and prev_b is not None and prev_a >= prev_b and a < b

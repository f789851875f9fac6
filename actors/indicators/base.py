"""What every incremental indicator offers."""

from __future__ import annotations

from typing import Protocol


class Indicator(Protocol):
    """An incremental indicator: O(1) work and bounded memory per update.

    ``update`` returns the new value, or None while the indicator is warming up;
    ``value`` is the latest value (None until ready) and ``ready`` says whether it is set.
    """

    @property
    def value(self) -> float | None:
        """Latest value; None while warming up."""
        ...

    @property
    def ready(self) -> bool:
        """True once the indicator has produced a value."""
        ...


def check_period(name: str, period: int, minimum: int = 1) -> int:
    """Validate an integer period (bool is refused); return it."""
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"{name}: period must be an integer >= {minimum}, got {period!r}")
    return period


def per_to_k(period: int) -> float:
    """EMA smoothing factor 2 / (period + 1), computed like TA-Lib's PER_TO_K."""
    return 2.0 / float(period + 1)

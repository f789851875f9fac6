"""Exponential moving average."""

from __future__ import annotations

from actors.indicators.base import check_period, per_to_k


class EMA:
    """Exponential moving average with k = 2 / (period + 1), seeded like TA-Lib.

    TA-Lib's default (non-Metastock) seeding: the first value is the simple mean of the
    first ``period`` inputs; after that ``ema = (x - ema) * k + ema``. TA-Lib's EMA has an
    "unstable period" setting that only hides leading outputs; its default is 0, which is
    what this matches. First value after ``period`` updates.
    """

    __slots__ = ("_n", "_total", "k", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period("EMA", period)
        self.k = per_to_k(period)
        self._n = 0
        self._total = 0.0
        self.value: float | None = None

    @property
    def ready(self) -> bool:
        """True once ``period`` values were seen."""
        return self.value is not None

    def seed(self, value: float) -> None:
        """Start from ``value`` as if it were the first EMA (used by MACD's aligned seeding)."""
        self._n = self.period
        self.value = value

    def update(self, x: float) -> float | None:
        """Add a value; return the EMA (None while warming up)."""
        v = self.value
        if v is not None:
            v = ((x - v) * self.k) + v
            self.value = v
            return v
        self._total += x
        self._n += 1
        if self._n == self.period:
            v = self._total / self.period
            self.value = v
            return v
        return None

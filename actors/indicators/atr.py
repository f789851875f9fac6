"""Average true range (Wilder)."""

from __future__ import annotations

from actors.indicators.base import check_period


class ATR:
    """Wilder's average true range, like TA-Lib's ATR.

    True range = max(high - low, |prev close - high|, |prev close - low|), defined from the
    second bar on. The first ATR is the mean of the first ``period`` true ranges; then
    ``atr = (atr * (period - 1) + tr) / period``. First value after ``period + 1`` bars.
    """

    __slots__ = ("_n", "_prev_close", "_total", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("ATR", period, 2)
        self._prev_close: float | None = None
        self._n = 0
        self._total = 0.0
        self.value: float | None = None

    @property
    def ready(self) -> bool:
        """True once ``period + 1`` bars were seen."""
        return self.value is not None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add a bar; return the ATR (None while warming up)."""
        pc = self._prev_close
        self._prev_close = close
        if pc is None:
            return None
        tr = high - low
        v2 = abs(pc - high)
        if v2 > tr:
            tr = v2
        v3 = abs(pc - low)
        if v3 > tr:
            tr = v3
        v = self.value
        period = self.period
        if v is not None:
            v = v * (period - 1)
            v += tr
            v /= period
            self.value = v
            return v
        self._total += tr
        self._n += 1
        if self._n == period:
            v = self._total / period
            self.value = v
            return v
        return None

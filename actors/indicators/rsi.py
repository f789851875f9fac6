"""Relative strength index (Wilder)."""

from __future__ import annotations

from actors.indicators.base import check_period


class RSI:
    """Wilder's RSI, computed like TA-Lib's RSI (default, non-Metastock mode).

    The first ``period`` price changes are summed into average gain and loss (times
    ``1 / period``); each later change smooths them: ``avg = (avg * (period - 1) + change) *
    (1 / period)`` — multiplied by the reciprocal exactly as TA-Lib 0.8 does, so values agree
    to the last bit (which matters to StochRSI: over a flat stretch the RSI's window range is
    pure rounding noise, and %K jumps between 0 and 100 on one ulp). RSI = 100 * gain /
    (gain + loss). When gain + loss is exactly 0 (no movement at all over the window) the
    value is 0.0, as in TA-Lib. First value after ``period + 1`` updates.
    """

    __slots__ = ("_gain", "_inv", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("RSI", period, 2)
        self._inv = 1.0 / period
        self._prev = 0.0
        self._n = 0
        self._gain = 0.0
        self._loss = 0.0
        self.value: float | None = None

    @property
    def ready(self) -> bool:
        """True once ``period + 1`` values were seen."""
        return self.value is not None

    def update(self, x: float) -> float | None:
        """Add a price; return the RSI (None while warming up)."""
        n = self._n
        self._n = n + 1
        if n == 0:
            self._prev = x
            return None
        diff = x - self._prev
        self._prev = x
        period = self.period
        if n > period:
            loss = self._loss * (period - 1)
            gain = self._gain * (period - 1)
            if diff < 0.0:
                loss -= diff
            else:
                gain += diff
            loss *= self._inv
            gain *= self._inv
        else:
            loss = self._loss
            gain = self._gain
            if diff < 0.0:
                loss -= diff
            else:
                gain += diff
            if n < period:
                self._loss = loss
                self._gain = gain
                return None
            loss *= self._inv
            gain *= self._inv
        self._loss = loss
        self._gain = gain
        total = gain + loss
        v = 100.0 * (gain / total) if total != 0.0 else 0.0
        self.value = v
        return v

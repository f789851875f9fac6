"""Simple moving average."""

from __future__ import annotations

from collections import deque

from actors.indicators.base import check_period


class SMA:
    """Mean of the last ``period`` values, like TA-Lib's SMA.

    Kept as a running total (add the new value, emit total / period, subtract the value that
    leaves next), in the same order of operations as TA-Lib, so results agree to the last
    bits. First value after ``period`` updates.
    """

    __slots__ = ("_buf", "_total", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period("SMA", period)
        self._buf: deque[float] = deque(maxlen=period)
        self._total = 0.0
        self.value: float | None = None

    @property
    def ready(self) -> bool:
        """True once ``period`` values were seen."""
        return self.value is not None

    def update(self, x: float) -> float | None:
        """Add a value; return the SMA (None while warming up)."""
        buf = self._buf
        buf.append(x)
        self._total += x
        if len(buf) == self.period:
            v = self._total / self.period
            self._total -= buf[0]
            self.value = v
            return v
        return None

"""Bollinger bands."""

from __future__ import annotations

import math
from collections import deque

from actors.indicators.base import check_period


class BollingerBands:
    """SMA middle band +/- ``nbdev`` population standard deviations, like TA-Lib's BBANDS (SMA).

    The middle band is TA-Lib's SMA (same running total, same bits). The deviation is
    computed from sums of ``x - ref`` and ``(x - ref)**2``, where ``ref`` is a recent price
    re-chosen every ``period`` updates (when the sums are rebuilt from the window, which
    also clears accumulated rounding drift). Shifting by a nearby price avoids the
    catastrophic cancellation of the textbook ``E[x^2] - E[x]^2`` (which, for prices around
    1e-3, loses 5-6 digits); the result is within ~1e-13 relative of the exact deviation, as
    is TA-Lib 0.8's. Constant work per update (amortized). First value after ``period``
    updates; ``update`` returns the middle band.
    """

    __slots__ = ("_buf", "_d1", "_d2", "_ref", "_since_rebase", "_total", "lower", "middle", "nbdev_dn",
                 "nbdev_up", "period", "stddev", "upper")

    def __init__(self, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float | None = None) -> None:
        self.period = check_period("BollingerBands", period, 2)
        self.nbdev_up = float(nbdev_up)
        self.nbdev_dn = float(nbdev_up if nbdev_dn is None else nbdev_dn)
        self._buf: deque[float] = deque(maxlen=period)
        self._total = 0.0
        self._ref: float | None = None
        self._d1 = 0.0
        self._d2 = 0.0
        self._since_rebase = 0
        self.middle: float | None = None
        self.upper: float | None = None
        self.lower: float | None = None
        self.stddev: float | None = None

    @property
    def value(self) -> float | None:
        """The middle band."""
        return self.middle

    @property
    def ready(self) -> bool:
        """True once ``period`` values were seen."""
        return self.middle is not None

    def _rebase(self, ref: float) -> None:
        self._ref = ref
        d1 = d2 = 0.0
        for v in self._buf:
            d = v - ref
            d1 += d
            d2 += d * d
        self._d1 = d1
        self._d2 = d2
        self._since_rebase = 0

    def update(self, x: float) -> float | None:
        """Add a price; return the middle band (None while warming up)."""
        buf = self._buf
        period = self.period
        ref = self._ref
        if ref is None:
            ref = self._ref = x
        d = x - ref
        if len(buf) == period:
            o = buf[0] - ref
            d1 = self._d1 + d - o
            d2 = self._d2 + d * d - o * o
        else:
            d1 = self._d1 + d
            d2 = self._d2 + d * d
        buf.append(x)
        self._total += x
        if len(buf) < period:
            self._d1 = d1
            self._d2 = d2
            return None
        self._since_rebase += 1
        if self._since_rebase >= period:
            self._rebase(x)
        else:
            self._d1 = d1
            self._d2 = d2
        mid = self._total / period
        self._total -= buf[0]
        m1 = self._d1 / period
        var = self._d2 / period - m1 * m1
        sd = math.sqrt(var) if var > 0.0 else 0.0
        self.middle = mid
        self.stddev = sd
        if self.nbdev_up == self.nbdev_dn:
            dev = sd * self.nbdev_up
            self.upper = mid + dev
            self.lower = mid - dev
        else:
            self.upper = mid + sd * self.nbdev_up
            self.lower = mid - sd * self.nbdev_dn
        return mid

    def zscore(self, x: float) -> float | None:
        """(x - middle) / stddev; None while warming up or when the deviation is 0."""
        if self.middle is None or not self.stddev:
            return None
        return (x - self.middle) / self.stddev

"""Stochastic RSI."""

from __future__ import annotations

from collections import deque

from actors.indicators.base import check_period
from actors.indicators.rsi import RSI
from actors.indicators.sma import SMA

_NOISE = 1e-14


class StochRSI:
    """Fast stochastic of the RSI, like TA-Lib's STOCHRSI (fastd as an SMA).

    %K = (rsi - min) / (max - min) * 100 over the last ``fastk_period`` RSI values, in TA-Lib
    0.8's order of operations; %D = SMA of %K over ``fastd_period``. Over a flat stretch the
    RSI is constant up to one ulp of rounding, so ``max - min`` is noise: like TA-Lib 0.8, a
    range within 1e-14 of the values' magnitude counts as zero and gives %K = 0 (otherwise %K
    would jump between 0 and 100 on rounding). The RSI here is bit-identical to TA-Lib's. Both appear together after
    ``period + fastk_period + fastd_period - 1`` updates; ``update`` returns %K. The window
    min/max scan is over ``fastk_period`` values: constant work per update.
    """

    __slots__ = ("_d", "_rsi", "_window", "d", "k")

    def __init__(self, period: int = 14, fastk_period: int = 5, fastd_period: int = 3) -> None:
        self._rsi = RSI(period)
        self._window: deque[float] = deque(maxlen=check_period("StochRSI fastk", fastk_period))
        self._d = SMA(check_period("StochRSI fastd", fastd_period))
        self.k: float | None = None
        self.d: float | None = None

    @property
    def value(self) -> float | None:
        """%K, once %D is ready too."""
        return self.k if self.d is not None else None

    @property
    def ready(self) -> bool:
        """True once %K and %D are available."""
        return self.d is not None

    @property
    def rsi(self) -> float | None:
        """The underlying RSI."""
        return self._rsi.value

    def update(self, x: float) -> float | None:
        """Add a price; return %K (None until %D is ready too)."""
        r = self._rsi.update(x)
        if r is None:
            return None
        w = self._window
        w.append(r)
        if len(w) < w.maxlen:  # type: ignore[operator]
            return None
        lo = min(w)
        hi = max(w)
        rng = hi - lo
        # A range within rounding noise of the RSI values counts as zero (TA-Lib 0.8's
        # scale-aware zero test), so a flat market gives %K = 0 instead of jumping to 100.
        k = (r - lo) / rng * 100.0 if rng > _NOISE * (abs(hi) + abs(lo)) else 0.0
        d = self._d.update(k)
        if d is None:
            return None
        self.k = k
        self.d = d
        return k

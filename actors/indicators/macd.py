"""Moving average convergence/divergence."""

from __future__ import annotations

from collections import deque

from actors.indicators.base import check_period
from actors.indicators.ema import EMA


class MACD:
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram, like TA-Lib's MACD.

    TA-Lib aligns the two EMAs: both are seeded at the same bar (the ``slow``-th), the slow
    one with the mean of the first ``slow`` prices and the fast one with the mean of the
    last ``fast`` prices up to that bar (so the fast EMA here is not ``EMA(fast)`` of the
    whole series). The signal EMA is seeded with the mean of the first ``signal`` MACD
    values. All three outputs appear together after ``slow + signal - 1`` updates; ``update``
    returns the MACD line. A fast period longer than the slow one is swapped, as in TA-Lib.
    """

    __slots__ = ("_fast", "_recent", "_signal", "_slow", "fast_period", "hist", "macd", "signal",
                 "signal_period", "slow_period")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        check_period("MACD fast", fast, 2)
        check_period("MACD slow", slow, 2)
        check_period("MACD signal", signal, 1)
        if slow < fast:
            fast, slow = slow, fast
        self.fast_period = fast
        self.slow_period = slow
        self.signal_period = signal
        self._fast = EMA(fast)
        self._slow = EMA(slow)
        self._signal = EMA(signal)
        self._recent: deque[float] = deque(maxlen=fast)
        self.macd: float | None = None
        self.signal: float | None = None
        self.hist: float | None = None

    @property
    def value(self) -> float | None:
        """The MACD line, once the signal is ready too (None before)."""
        return self.macd if self.signal is not None else None

    @property
    def ready(self) -> bool:
        """True once line, signal and histogram are all available."""
        return self.signal is not None

    def update(self, x: float) -> float | None:
        """Add a price; return the MACD line (None until the signal is ready too)."""
        slow = self._slow
        fast = self._fast
        if slow.value is None:
            self._recent.append(x)
            s = slow.update(x)
            if s is None:
                return None
            total = 0.0
            for v in self._recent:
                total += v
            fast.seed(total / self.fast_period)
            self._recent.clear()
            f: float = total / self.fast_period
        else:
            s = slow.update(x)
            f = fast.update(x)  # type: ignore[assignment]  # seeded: never None here
            assert s is not None
        line = f - s
        self.macd = line
        sig = self._signal.update(line)
        if sig is None:
            return None
        self.signal = sig
        self.hist = line - sig
        return line

"""RSI + MACD momentum."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from actors.indicators import MACD, RSI
from actors.model.market import Bar
from actors.strategies.signals import Period, check_size
from actors.strategy_api import Strategy

Level = Annotated[float, msgspec.Meta(ge=0, le=100)]


class RsiMacdParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of RsiMacd."""

    rsi_period: Period = 14
    macd_fast: Period = 12
    macd_slow: Period = 26
    macd_signal: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 9
    rsi_entry_max: Level = 70.0
    rsi_exit: Level = 80.0
    size: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast: must be less than macd_slow ({self.macd_slow}), got {self.macd_fast}")
        if self.rsi_exit < self.rsi_entry_max:
            raise ValueError(
                f"rsi_exit: must be >= rsi_entry_max ({self.rsi_entry_max}), got {self.rsi_exit}"
            )


class RsiMacd(Strategy[RsiMacdParams]):
    """MACD histogram momentum with an RSI filter, per symbol, long-only.

    Params: ``rsi_period`` (14); ``macd_fast``/``macd_slow``/``macd_signal`` (12/26/9);
    ``rsi_entry_max`` (70): no entries at or above this RSI; ``rsi_exit`` (80): exit at or
    above this RSI; ``size`` (base units per entry, default 1).

    Rule, on each closed bar once RSI and MACD (line, signal, histogram) are ready:

    - buy ``size`` when the histogram crosses above zero (previous <= 0 < current) and
      RSI < ``rsi_entry_max`` and the strategy is flat in the symbol;
    - sell the whole position when long and either the histogram crosses below zero
      (previous >= 0 > current) or RSI >= ``rsi_exit``.
    """

    params_type = RsiMacdParams

    def on_start(self) -> None:
        """Create the indicators."""
        self._build()

    def _build(self) -> None:
        p = self.params
        self._rsi = {s: RSI(p.rsi_period) for s in self.symbols}
        self._macd = {s: MACD(p.macd_fast, p.macd_slow, p.macd_signal) for s in self.symbols}
        self._prev_hist: dict[str, float] = {}

    def on_params_changed(self, old: RsiMacdParams, new: RsiMacdParams) -> None:
        """Rebuild the indicators when their periods changed."""
        if (old.rsi_period, old.macd_fast, old.macd_slow, old.macd_signal) != (
            new.rsi_period, new.macd_fast, new.macd_slow, new.macd_signal
        ):
            self._build()

    def on_bar(self, bar: Bar) -> None:
        """Update the indicators and apply the rule."""
        sym = bar.symbol
        rsi = self._rsi[sym].update(bar.close)
        macd = self._macd[sym]
        macd.update(bar.close)
        hist = macd.hist
        if rsi is None or hist is None or not macd.ready:
            return
        prev = self._prev_hist.get(sym)
        self._prev_hist[sym] = hist
        p = self.params
        if prev is not None and prev <= 0.0 < hist and rsi < p.rsi_entry_max:
            if self.is_flat(sym):
                self.buy(sym, size=p.size, tag="rsi_macd.entry")
        elif self.is_long(sym) and ((prev is not None and prev >= 0.0 > hist) or rsi >= p.rsi_exit):
            self.sell(sym, size=self.tradable(sym), tag="rsi_macd.exit")

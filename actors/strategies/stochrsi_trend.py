"""StochRSI entries in the direction of an EMA trend."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from actors.indicators import EMA, StochRSI
from actors.model.market import Bar
from actors.strategies.signals import Period, check_size, crossed_above, crossed_below
from actors.strategy_api import Strategy

Level = Annotated[float, msgspec.Meta(ge=0, le=100)]
SmallPeriod = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class StochRsiTrendParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of StochRsiTrend."""

    rsi_period: Period = 14
    k_period: SmallPeriod = 5
    d_period: SmallPeriod = 3
    trend_period: Period = 50
    oversold: Level = 20.0
    overbought: Level = 80.0
    size: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold: must be below overbought ({self.overbought}), got {self.oversold}")


class StochRsiTrend(Strategy[StochRsiTrendParams]):
    """Buy oversold StochRSI turns in an uptrend, per symbol, long-only.

    Params: ``rsi_period`` (14), ``k_period`` (5), ``d_period`` (3) of the StochRSI;
    ``trend_period`` (50) of the trend EMA of closes; ``oversold`` (20) < ``overbought`` (80);
    ``size`` (base units per entry, default 1).

    Rule, on each closed bar once StochRSI (%K, %D) and the EMA are ready:

    - buy ``size`` when close > EMA (uptrend), %K crosses above %D (previous %K <= previous
      %D and %K > %D) with %D < ``oversold``, and the strategy is flat in the symbol;
    - sell the whole position when long and either close < EMA (trend lost) or %K crosses
      below %D with %D > ``overbought``.
    """

    params_type = StochRsiTrendParams

    def on_start(self) -> None:
        """Create the indicators."""
        self._build()

    def _build(self) -> None:
        p = self.params
        self._srsi = {s: StochRSI(p.rsi_period, p.k_period, p.d_period) for s in self.symbols}
        self._ema = {s: EMA(p.trend_period) for s in self.symbols}
        self._prev: dict[str, tuple[float, float]] = {}

    def on_params_changed(self, old: StochRsiTrendParams, new: StochRsiTrendParams) -> None:
        """Rebuild the indicators when their periods changed."""
        if (old.rsi_period, old.k_period, old.d_period, old.trend_period) != (
            new.rsi_period, new.k_period, new.d_period, new.trend_period
        ):
            self._build()

    def on_bar(self, bar: Bar) -> None:
        """Update the indicators and apply the rule."""
        sym = bar.symbol
        srsi = self._srsi[sym]
        srsi.update(bar.close)
        trend = self._ema[sym].update(bar.close)
        k, d = srsi.k, srsi.d
        if trend is None or k is None or d is None:
            return
        prev = self._prev.get(sym)
        self._prev[sym] = (k, d)
        pk, pd = prev if prev is not None else (None, None)
        p = self.params
        if bar.close > trend and d < p.oversold and crossed_above(pk, pd, k, d):
            if self.is_flat(sym):
                self.buy(sym, size=p.size, tag="stochrsi_trend.entry")
        elif self.is_long(sym) and (
            bar.close < trend or (d > p.overbought and crossed_below(pk, pd, k, d))
        ):
            self.sell(sym, size=self.tradable(sym), tag="stochrsi_trend.exit")

"""Moving-average crossover."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Annotated, Literal

import msgspec

from actors.indicators import EMA, SMA
from actors.model.market import Bar
from actors.model.orders import TrailingSpec
from actors.strategies.signals import Period, check_size, crossed_above, crossed_below
from actors.strategy_api import Strategy

_BPS = Decimal(10_000)


class EmaCrossParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of EmaCross."""

    fast: Period = 12
    slow: Period = 26
    kind: Literal["ema", "sma"] = "ema"
    size: Decimal = Decimal("1")
    stop_loss_bps: Annotated[int, msgspec.Meta(ge=0, le=5000)] = 0
    take_profit_bps: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    trailing_bps: Annotated[int, msgspec.Meta(ge=0, le=5000)] = 0
    tick: Decimal = Decimal("0.00000001")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.fast >= self.slow:
            raise ValueError(f"fast: must be less than slow ({self.slow}), got {self.fast}")
        if self.stop_loss_bps and self.trailing_bps:
            raise ValueError("trailing_bps: give stop_loss_bps or trailing_bps, not both")
        if self.tick <= 0:
            raise ValueError(f"tick: must be > 0, got {self.tick}")

    @property
    def protected(self) -> bool:
        """True when entries are brackets (a stop, a trailing stop or a take-profit is set)."""
        return bool(self.stop_loss_bps or self.take_profit_bps or self.trailing_bps)


class EmaCross(Strategy[EmaCrossParams]):
    """Fast/slow moving-average crossover on bar closes, per symbol, long-only.

    Params: ``fast`` (default 12) and ``slow`` (26) periods, ``fast < slow``; ``kind``
    "ema" (default) or "sma"; ``size`` (base units per entry, default 1).

    Protection (all 0, off, by default): ``stop_loss_bps`` and/or ``take_profit_bps`` make
    each entry a bracket whose stop sits that many basis points below the entry bar's close
    and whose take-profit that many above (rounded outwards to ``tick``, the symbol's price
    step); ``trailing_bps`` instead of ``stop_loss_bps`` trails the stop that far below the
    best price since the fill. With a bracket, the exits close the position: the
    cross-below exit is left to them.

    Rule, evaluated on each closed bar once both averages are ready and a previous pair of
    values exists:

    - buy ``size`` (market) when fast crosses above slow (previous fast <= previous slow and
      fast > slow) and the strategy is flat in the symbol (no position, no open order, no
      intent in flight);
    - sell the whole position (market) when fast crosses below slow (previous fast >=
      previous slow and fast < slow) and the strategy is long.

    A params change of fast/slow/kind rebuilds the averages (they warm up again).
    """

    params_type = EmaCrossParams

    def on_start(self) -> None:
        """Create the averages."""
        self._build()

    def _build(self) -> None:
        p = self.params
        ma = EMA if p.kind == "ema" else SMA
        self._fast: dict[str, EMA | SMA] = {s: ma(p.fast) for s in self.symbols}
        self._slow: dict[str, EMA | SMA] = {s: ma(p.slow) for s in self.symbols}
        self._prev: dict[str, tuple[float, float]] = {}

    def on_params_changed(self, old: EmaCrossParams, new: EmaCrossParams) -> None:
        """Rebuild the averages when their definition changed."""
        if (old.fast, old.slow, old.kind) != (new.fast, new.slow, new.kind):
            self._build()

    def on_bar(self, bar: Bar) -> None:
        """Update the averages and trade the crosses."""
        sym = bar.symbol
        f = self._fast[sym].update(bar.close)
        s = self._slow[sym].update(bar.close)
        if f is None or s is None:
            return
        prev = self._prev.get(sym)
        self._prev[sym] = (f, s)
        if prev is None:
            return
        pf, ps = prev
        p = self.params
        if crossed_above(pf, ps, f, s):
            if self.is_flat(sym):
                if p.protected:
                    self._bracket(sym, Decimal(repr(bar.close)))
                else:
                    self.buy(sym, size=p.size, tag="ema_cross.entry")
        elif crossed_below(pf, ps, f, s) and self.is_long(sym) and not p.protected:
            self.sell(sym, size=self.tradable(sym), tag="ema_cross.exit")

    def _bracket(self, sym: str, close: Decimal) -> None:
        p = self.params
        stop = take = trailing = None
        if p.stop_loss_bps:
            stop = (close * (1 - p.stop_loss_bps / _BPS)).quantize(p.tick, ROUND_FLOOR)
        if p.take_profit_bps:
            take = (close * (1 + p.take_profit_bps / _BPS)).quantize(p.tick, ROUND_CEILING)
        if p.trailing_bps:
            trailing = TrailingSpec(offset_bps=p.trailing_bps)
        self.buy(sym, size=p.size, stop_loss=stop, take_profit=take, trailing=trailing, tag="ema_cross.entry")

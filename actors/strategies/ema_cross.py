"""Moving-average crossover."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from actors.indicators import EMA, SMA
from actors.model.market import Bar
from actors.strategies.signals import Period, check_size, crossed_above, crossed_below
from actors.strategy_api import Strategy


class EmaCrossParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of EmaCross."""

    fast: Period = 12
    slow: Period = 26
    kind: Literal["ema", "sma"] = "ema"
    size: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.fast >= self.slow:
            raise ValueError(f"fast: must be less than slow ({self.slow}), got {self.fast}")


class EmaCross(Strategy[EmaCrossParams]):
    """Fast/slow moving-average crossover on bar closes, per symbol, long-only.

    Params: ``fast`` (default 12) and ``slow`` (26) periods, ``fast < slow``; ``kind``
    "ema" (default) or "sma"; ``size`` (base units per entry, default 1).

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
        if crossed_above(pf, ps, f, s):
            if self.is_flat(sym):
                self.buy(sym, size=self.params.size, tag="ema_cross.entry")
        elif crossed_below(pf, ps, f, s) and self.is_long(sym):
            self.sell(sym, size=self.position(sym), tag="ema_cross.exit")

"""Bollinger z-score mean reversion."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from actors.indicators import BollingerBands
from actors.model.market import Bar
from actors.strategies.signals import Period, check_size
from actors.strategy_api import Strategy


class BollingerRevertParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of BollingerRevert."""

    period: Period = 20
    nbdev: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0
    entry_z: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0
    exit_z: Annotated[float, msgspec.Meta(ge=-10, le=10)] = 0.0
    size: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.exit_z <= -self.entry_z:
            raise ValueError(f"exit_z: must be above -entry_z ({-self.entry_z}), got {self.exit_z}")


class BollingerRevert(Strategy[BollingerRevertParams]):
    """Buy a close far below the mean, sell on the way back, per symbol, long-only.

    Params: ``period`` (20) of the SMA and standard deviation; ``nbdev`` (2.0) width of the
    bands (reported, not used by the rule); ``entry_z`` (2.0); ``exit_z`` (0.0, must be >
    -entry_z); ``size`` (base units per entry, default 1).

    With z = (close - SMA(period)) / stddev(period) (population deviation; no signal while
    the deviation is 0), on each closed bar:

    - buy ``size`` when z <= -entry_z and the strategy is flat in the symbol;
    - sell the whole position when z >= exit_z and the strategy is long.
    """

    params_type = BollingerRevertParams

    def on_start(self) -> None:
        """Create the bands."""
        self._build()

    def _build(self) -> None:
        p = self.params
        self._bands = {s: BollingerBands(p.period, p.nbdev) for s in self.symbols}

    def on_params_changed(self, old: BollingerRevertParams, new: BollingerRevertParams) -> None:
        """Rebuild the bands when their definition changed."""
        if (old.period, old.nbdev) != (new.period, new.nbdev):
            self._build()

    def on_bar(self, bar: Bar) -> None:
        """Update the bands and apply the rule."""
        sym = bar.symbol
        bands = self._bands[sym]
        bands.update(bar.close)
        z = bands.zscore(bar.close)
        if z is None:
            return
        p = self.params
        if z <= -p.entry_z:
            if self.is_flat(sym):
                self.buy(sym, size=p.size, tag="bollinger_revert.entry")
        elif z >= p.exit_z and self.is_long(sym):
            self.sell(sym, size=self.tradable(sym), tag="bollinger_revert.exit")

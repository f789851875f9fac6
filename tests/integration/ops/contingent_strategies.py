"""Test strategies placing protective orders, imported by the daemon child by path
(``tests.integration.ops.contingent_strategies:<Class>``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from actors.model.market import Bar
from actors.strategy_api import Strategy

TICK = Decimal("0.00000001")  # XRP/ETH's tick size in the default config


class BracketParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``count`` market buys of ``size``, each with a take-profit at ``take_profit`` x and a
    stop-loss at ``stop_loss`` x the bar's close."""

    count: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    size: Decimal = Decimal("30")
    take_profit: Annotated[float, msgspec.Meta(gt=1)] = 1.3
    stop_loss: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.7


class Brackets(Strategy[BracketParams]):
    """Buys ``count`` brackets, one per bar from its first bar on (on the paper venue their exits
    are emulated: armed triggers in the contingent-order manager). Never more in one process."""

    params_type = BracketParams

    def on_start(self) -> None:
        """Nothing placed yet."""
        self._placed = 0

    def on_bar(self, bar: Bar) -> None:
        """One more bracket until ``count``."""
        if self._placed >= self.params.count:
            return
        self._placed += 1
        close = Decimal(repr(bar.close))
        self.buy(bar.symbol, size=self.params.size, tag="ops.bracket",
                 take_profit=(close * Decimal(repr(self.params.take_profit))).quantize(TICK),
                 stop_loss=(close * Decimal(repr(self.params.stop_loss))).quantize(TICK))

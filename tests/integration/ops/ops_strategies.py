"""Test strategies the daemon child imports by path (``tests.integration.ops.ops_strategies:<Class>``)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated

import msgspec

from actors.model.market import Bar
from actors.model.orders import OrderType
from actors.strategy_api import Strategy


class RestingParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``count`` resting buys of ``size`` at ``discount`` x the bar close."""

    count: Annotated[int, msgspec.Meta(ge=1, le=5)] = 2
    size: Decimal = Decimal("20")
    discount: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.7


class RestingBuys(Strategy[RestingParams]):
    """Keeps ``count`` LIMIT buys far below the market, so there are always open orders.

    An order that is cancelled (admin cancel, kill switch) is replaced at the next bar.
    """

    params_type = RestingParams

    def on_bar(self, bar: Bar) -> None:
        """Top up the resting orders."""
        sym = bar.symbol
        working = max(self.in_flight(sym), len(self.open_orders(sym)))
        if working < self.params.count:
            price = Decimal(repr(bar.close * self.params.discount)).quantize(Decimal("0.00000001"))
            self.buy(sym, size=self.params.size, type=OrderType.LIMIT, limit_price=price, tag="ops.resting")


class StallParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Block for ``block_s`` seconds in the ``after_bars``-th ``on_bar`` (once per process)."""

    after_bars: Annotated[int, msgspec.Meta(ge=1)] = 20
    block_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 2.5


_stalled_once = False


class StallOnce(Strategy[StallParams]):
    """A strategy whose callback hangs once: the actor makes no progress and, being
    synchronous code on the event loop, holds the loop (the watchdog sees loop lag)."""

    params_type = StallParams

    def on_start(self) -> None:
        """Count bars from here."""
        self._bars = 0

    def on_bar(self, bar: Bar) -> None:
        """Hang once."""
        global _stalled_once
        self._bars += 1
        if self._bars >= self.params.after_bars and not _stalled_once:
            _stalled_once = True
            self.log.warning("ops_test.stall_begin", block_s=self.params.block_s)
            time.sleep(self.params.block_s)
            self.log.warning("ops_test.stall_end")

"""A strategy that cheats: it reads the replayed data file and trades on prices from the future.

Planted for the lookahead check (``daemon.backtest.lookahead``): on each closed 1-minute bar it looks
up the last trade price ``horizon_min`` minutes after the bar's close in the file named by
its ``data`` param, buys when that future price is higher and it is flat, sells when it is
lower and it is long. Where the file ends before that moment it does nothing.
"""

from __future__ import annotations

import bisect
import csv
import gzip
from decimal import Decimal
from pathlib import Path

import msgspec

from actors.model.market import Bar
from actors.strategy_api import Strategy

_MINUTE_MS = 60_000


class PeekingParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of PeekingStrategy."""

    data: str
    horizon_min: int = 30
    size: Decimal = Decimal("100")


class PeekingStrategy(Strategy[PeekingParams]):
    """Buys before the price rises and sells before it falls, by reading the tape ahead."""

    params_type = PeekingParams

    def on_start(self) -> None:
        """Read the whole trade tape (ts_ms, price) the params name."""
        path = Path(self.params.data)
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            rows = [(int(r["ts_ms"]), float(r["price"])) for r in csv.DictReader(fh)]
        self._times = [ts for ts, _ in rows]
        self._prices = [price for _, price in rows]

    def on_bar(self, bar: Bar) -> None:
        """Trade toward the price ``horizon_min`` minutes after this bar's close."""
        target = bar.ts_ms + _MINUTE_MS + self.params.horizon_min * _MINUTE_MS
        if not self._times or target > self._times[-1]:
            return  # the file says nothing about that moment
        future = self._prices[bisect.bisect_right(self._times, target) - 1]
        sym = bar.symbol
        if future > bar.close and self.is_flat(sym):
            self.buy(sym, size=self.params.size, tag="peek.entry")
        elif future < bar.close and self.is_long(sym):
            self.sell(sym, size=self.position(sym), tag="peek.exit")

"""A tick-driven test strategy for the latency bench: one market order every ``every`` quotes.

Not a trading idea: it exists so that orders follow individual market events (not bar
closes), which is what tick-to-submit latency measures. On every ``every``-th quote of a
symbol it buys ``size`` when flat and sells the whole position when long, so buys and
sells alternate; a signal that finds the previous order still on its way is skipped.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.market import Quote
from actors.strategies.signals import check_size
from actors.strategy_api import Strategy

__all__ = ["EveryNthQuote", "EveryNthQuoteParams"]


class EveryNthQuoteParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of EveryNthQuote."""

    every: int = 10
    size: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.every < 1:
            raise ValueError(f"every: must be >= 1, got {self.every}")


class EveryNthQuote(Strategy[EveryNthQuoteParams]):
    """Buys ``size`` when flat / sells the position when long, on every ``every``-th quote."""

    params_type = EveryNthQuoteParams
    subscribe_quotes = True

    def on_start(self) -> None:
        """Start counting quotes."""
        self._quotes: dict[str, int] = {}
        self.skipped = 0

    def on_quote(self, quote: Quote) -> None:
        """Count the quote; trade on every ``every``-th one."""
        sym = quote.symbol
        n = self._quotes.get(sym, 0) + 1
        self._quotes[sym] = n
        if n % self.params.every:
            return
        if self.is_flat(sym):
            self.buy(sym, size=self.params.size, tag="tick.buy")
        elif self.is_long(sym):
            self.sell(sym, size=self.tradable(sym), tag="tick.sell")
        else:
            self.skipped += 1  # the previous order is still on its way

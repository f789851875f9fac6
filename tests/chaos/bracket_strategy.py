"""A test strategy that keeps brackets in flight (``tests.chaos.bracket_strategy:BracketTrader``).

On market events (quotes and trades), at most once every ``every_ms`` per symbol and only
while it is flat there (``is_flat``: nothing tradable held — the dust a base-asset fee leaves
below the quantity step rides with the next bracket's exits —, no open order, nothing in
flight), it opens a long
bracket: an entry and exits a few basis points from the market, so the exits trigger within
seconds on the simulator's own random walk or on prints the test injects. It cycles through
shapes so every path of the bracket is exercised:

* a MARKET or a LIMIT entry (the limit one tick inside the book: it rests, and fills from the
  next print that reaches it, often partially);
* a stop-loss and a take-profit, a trailing stop (``offset_bps``) and a take-profit, or a
  lone trailing stop (one native order instead of an OCO).

Levels vary a little with the step number, deterministically.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Annotated

import msgspec

from actors.kernel.clock import monotonic
from actors.model.market import Quote, Trade
from actors.model.orders import OrderType
from actors.strategy_api import Strategy, TrailingSpec

_BPS = Decimal(10_000)

#: The shape cycle: (entry type, exits) with exits "stop+tp", "trail+tp" or "trail".
SHAPES: tuple[tuple[OrderType, str], ...] = (
    (OrderType.MARKET, "stop+tp"),
    (OrderType.LIMIT, "stop+tp"),
    (OrderType.MARKET, "trail+tp"),
    (OrderType.LIMIT, "trail+tp"),
    (OrderType.LIMIT, "stop+tp"),
    (OrderType.MARKET, "trail"),
)


class BracketParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``sizes``/``ticks``: entry size and price tick per symbol; ``every_ms``: min gap between
    brackets of a symbol; ``stop_bps``/``tp_bps``: exit distance from the entry side of the book;
    ``trail_bps``: trailing offset (the venue's minimum is 10)."""

    sizes: dict[str, Decimal]
    ticks: dict[str, Decimal]
    every_ms: Annotated[int, msgspec.Meta(ge=1)] = 300
    stop_bps: Annotated[int, msgspec.Meta(ge=1, le=500)] = 6
    tp_bps: Annotated[int, msgspec.Meta(ge=1, le=500)] = 6
    trail_bps: Annotated[int, msgspec.Meta(ge=10, le=500)] = 12


class BracketTrader(Strategy[BracketParams]):
    """Opens one bracket at a time per symbol (see the module doc)."""

    params_type = BracketParams
    subscribe_trades = True
    subscribe_quotes = True

    def on_start(self) -> None:
        """Reset per-symbol state."""
        self._step: dict[str, int] = {}
        self._last_s: dict[str, float] = {}
        self._bid: dict[str, Decimal] = {}
        self._ask: dict[str, Decimal] = {}

    def on_quote(self, quote: Quote) -> None:
        """Remember the top of book, maybe act."""
        self._bid[quote.symbol] = Decimal(repr(quote.bid))
        self._ask[quote.symbol] = Decimal(repr(quote.ask))
        self._maybe_act(quote.symbol)

    def on_trade(self, trade: Trade) -> None:
        """Maybe act."""
        self._maybe_act(trade.symbol)

    def _maybe_act(self, symbol: str) -> None:
        # Process time, not event time: trades carry the venue's clock, quotes ours.
        now = monotonic()
        if symbol not in self._bid or now - self._last_s.get(symbol, -1e9) < self.params.every_ms / 1000:
            return
        size, tick = self.params.sizes.get(symbol), self.params.ticks.get(symbol)
        if size is None or tick is None or not self.is_flat(symbol):
            return
        bid, ask = self._bid[symbol], self._ask[symbol]
        if not 0 < bid < ask:
            return
        self._last_s[symbol] = now
        step = self._step.get(symbol, 0)
        self._step[symbol] = step + 1
        entry_type, exits = SHAPES[step % len(SHAPES)]
        wobble = Decimal(step % 3) / 2  # 1, 1.5, 2 times the configured distances
        stop = (bid * (1 - self.params.stop_bps * (1 + wobble) / _BPS)).quantize(tick, ROUND_DOWN)
        take = (ask * (1 + self.params.tp_bps * (1 + wobble) / _BPS)).quantize(tick, ROUND_UP)
        trailing = TrailingSpec(offset_bps=self.params.trail_bps + step % 3 * 4)
        limit: Decimal | None = None
        if entry_type is OrderType.LIMIT:
            inside = bid + tick
            limit = inside if inside < ask else bid  # the best bid: it rests until a print reaches it
        tag = f"bracket.{entry_type.value.lower()}.{exits}"
        if exits == "stop+tp":
            self.buy(symbol, size=size, type=entry_type, limit_price=limit, stop_loss=stop, take_profit=take, tag=tag)
        elif exits == "trail+tp":
            self.buy(symbol, size=size, type=entry_type, limit_price=limit, trailing=trailing, take_profit=take,
                     tag=tag)
        else:
            self.buy(symbol, size=size, type=entry_type, limit_price=limit, trailing=trailing, tag=tag)

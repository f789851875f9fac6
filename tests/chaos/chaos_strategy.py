"""A busy test strategy the daemon child imports (``tests.chaos.chaos_strategy:ChaosTrader``).

On market events (quotes and trades, at most one intent per symbol every ``every_ms``) it cycles
through small orders: market buy, a LIMIT buy a few ticks under the bid, market sell, a
LIMIT sell a few ticks over the ask, and LIMIT orders far from the market that rest until
the test fills them with injected prints or cancels them. Buys and sells alternate, so the
position stays near flat; resting orders are capped per symbol.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, Decimal
from typing import Annotated

import msgspec

from actors.model.market import Quote, Trade
from actors.model.orders import OrderType, Side
from actors.strategy_api import Strategy

#: The action cycle: (side, kind) with kind "market", "near" (a few ticks inside) or "far".
_CYCLE: tuple[tuple[Side, str], ...] = (
    (Side.BUY, "market"),
    (Side.BUY, "near"),
    (Side.SELL, "market"),
    (Side.SELL, "near"),
    (Side.BUY, "far"),
    (Side.SELL, "far"),
)


class ChaosParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``sizes``/``ticks``: order size and price tick per symbol; ``every_ms``: min gap between intents."""

    sizes: dict[str, Decimal]
    ticks: dict[str, Decimal]
    every_ms: Annotated[int, msgspec.Meta(ge=1)] = 400
    max_resting: Annotated[int, msgspec.Meta(ge=0)] = 4
    near_ticks: Annotated[int, msgspec.Meta(ge=0)] = 1
    far_bps: Annotated[float, msgspec.Meta(gt=0, lt=500)] = 40.0


class ChaosTrader(Strategy[ChaosParams]):
    """Trades often, on trades and quotes (see the module doc)."""

    params_type = ChaosParams
    subscribe_trades = True
    subscribe_quotes = True

    def on_start(self) -> None:
        """Reset per-symbol state."""
        self._step: dict[str, int] = {}
        self._last_ms: dict[str, int] = {}
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
        # Local time: event times mix the venue's clock (trades, skewed by faults) and ours (quotes).
        now_ms = time.monotonic_ns() // 1_000_000
        if symbol not in self._bid or now_ms - self._last_ms.get(symbol, -(10**12)) < self.params.every_ms:
            return
        size = self.params.sizes.get(symbol)
        tick = self.params.ticks.get(symbol)
        if size is None or tick is None:
            return
        self._last_ms[symbol] = now_ms
        step = self._step.get(symbol, 0)
        self._step[symbol] = step + 1
        side, kind = _CYCLE[step % len(_CYCLE)]
        if kind != "market" and len(self.open_orders(symbol)) >= self.params.max_resting:
            kind = "market"
        act = self.buy if side is Side.BUY else self.sell
        if kind == "market":
            act(symbol, size=size, tag="chaos.market")
            return
        bid, ask = self._bid[symbol], self._ask[symbol]
        if kind == "near":
            offset = tick * self.params.near_ticks
        else:
            offset = (bid * Decimal(repr(self.params.far_bps)) / Decimal(10_000)).quantize(tick, ROUND_DOWN)
        price = bid - offset if side is Side.BUY else ask + offset
        price = price.quantize(tick, ROUND_DOWN)
        if price <= 0:
            return
        act(symbol, size=size, type=OrderType.LIMIT, limit_price=price, tag=f"chaos.{kind}")

"""A test strategy for the trigger bench: keeps emulated exits armed close to the market.

Not a trading idea: it exists so that emulated triggers fire often, which is what
trigger-to-submit latency measures. On a quote that finds it flat (no position, nothing in
flight, no open order) it enters long ``size`` with exits ``delta_bps`` away from the mid:

- ``mode = "bracket"`` (default): one bracket, ``buy(stop_loss=mid*(1-δ), take_profit=mid*(1+δ))``;
  the paper venue has no native conditional orders, so both exits are emulated triggers
  and the first one crossed releases the market exit;
- ``mode = "trailing"``: a market buy, then, once long, a standalone emulated
  ``trailing_stop`` (``offset_bps = delta_bps``), which fires on the first pull-back of δ.

Triggers watch ``trigger`` (``bid_ask`` by default: a quote-only feed has no trades for
``last``). Trigger prices are rounded outwards to ``tick`` so they pass the tick filter.

``entry_origins`` keeps the ``recv_ns`` of the quotes its last entries were sent on: the
contingent-order manager releases a bracket's entry with the strategy's ``origin_ns``, so
the bench uses it to tell entries from triggered exits.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import msgspec

from actors.model.market import Quote
from actors.model.orders import OrderDenied, OrderEvent, Side
from actors.strategies.signals import check_size
from actors.strategy_api import Strategy, TriggerSource

__all__ = ["ArmedExits", "ArmedExitsParams"]

_BPS = Decimal(10_000)
#: Entries whose origin is remembered (far more than can be on their way at once).
_ORIGINS_KEPT = 4096


class ArmedExitsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of ArmedExits."""

    size: Decimal = Decimal("0.01")
    delta_bps: int = 3
    mode: Literal["bracket", "trailing"] = "bracket"
    trigger: Literal["last", "bid_ask", "mid"] = "bid_ask"
    tick: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.delta_bps < 1:
            raise ValueError(f"delta_bps: must be >= 1, got {self.delta_bps}")
        if self.tick <= 0:
            raise ValueError(f"tick: must be > 0, got {self.tick}")


class ArmedExits(Strategy[ArmedExitsParams]):
    """Enters when flat and keeps emulated exits ``delta_bps`` from the market (module docstring)."""

    params_type = ArmedExitsParams
    subscribe_quotes = True

    def on_start(self) -> None:
        """Nothing entered, nothing armed."""
        #: Symbols whose trailing stop was sent and has not ended yet (``trailing`` mode).
        self._stop_sent: set[str] = set()
        #: Entries sent (brackets or market buys) and exits armed.
        self.entries = 0
        self.exits_armed = 0
        #: ``recv_ns`` of the quotes the last entries were sent on (see the module docstring).
        self.entry_origins: set[int] = set()
        #: Risk-gate denials of what it sent, by reason code.
        self.denials: dict[str, int] = {}
        self._origin_order: deque[int] = deque()

    def on_quote(self, quote: Quote) -> None:
        """Enter when flat; in ``trailing`` mode, arm the stop once long."""
        sym = quote.symbol
        if quote.bid <= 0 or quote.ask <= 0:
            return
        p = self.params
        mid = (Decimal(repr(quote.bid)) + Decimal(repr(quote.ask))) / 2
        trigger = TriggerSource(p.trigger)
        if self.is_flat(sym):
            self._stop_sent.discard(sym)
            self.entries += 1
            self._remember_entry(quote.recv_ns)
            if p.mode == "trailing":
                self.buy(sym, size=p.size, tag="trig.entry")
                return
            delta = mid * p.delta_bps / _BPS
            stop = (mid - delta).quantize(p.tick, rounding=ROUND_FLOOR)
            target = (mid + delta).quantize(p.tick, rounding=ROUND_CEILING)
            self.buy(sym, size=p.size, stop_loss=stop, take_profit=target, trigger=trigger, tag="trig.bracket")
            self.exits_armed += 2
        elif p.mode == "trailing" and sym not in self._stop_sent and self.is_long(sym):
            self._stop_sent.add(sym)
            self.exits_armed += 1
            self.trailing_stop(sym, Side.SELL, size=self.tradable(sym), offset_bps=p.delta_bps, trigger=trigger,
                               tag="trig.stop")

    def _remember_entry(self, origin_ns: int) -> None:
        self.entry_origins.add(origin_ns)
        self._origin_order.append(origin_ns)
        if len(self._origin_order) > _ORIGINS_KEPT:
            self.entry_origins.discard(self._origin_order.popleft())

    def on_order_event(self, event: OrderEvent | OrderDenied) -> None:
        """Count denials; a denied trailing stop may be armed again on the next quote."""
        if isinstance(event, OrderDenied):
            self.denials[event.reason] = self.denials.get(event.reason, 0) + 1
            if event.intent.tag == "trig.stop":
                self._stop_sent.discard(event.intent.symbol)

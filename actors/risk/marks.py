"""The risk gate's marks: the latest price and feed time of each symbol it is fed.

``observe`` runs for every market event, so it only keeps the latest event that carries a
price (the price itself is derived when a decision needs it, which is rare) and the time of
an unpriced event that came after it (e.g. a one-sided quote). Ages are measured in feed
time: against the newest event timestamp seen, whatever the speed of a replay.

A priced event replaces everything kept of its symbol, and the feed clock only moves
forward: after a stretch of two-sided quotes of one symbol in time order the marks are
what the last quote alone leaves, so the feed may hand ``observe`` only that one (a
latest-only tap, ``actors.feed.Feed.add_tap``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from actors.model.market import Bar, MarketEvent, Quote, Trade
from actors.risk.checks import to_decimal


class MarketMarks:
    """Latest priced event, later unpriced event time, and the feed clock, per symbol."""

    __slots__ = ("_feed_now_ms", "_priced", "_unpriced_ts")

    def __init__(self) -> None:
        self._priced: dict[str, MarketEvent] = {}
        self._unpriced_ts: dict[str, int] = {}
        self._feed_now_ms = 0

    def observe(self, event: MarketEvent) -> None:
        """Note a market event's price and time (cheap; called for every event)."""
        cls = type(event)
        if cls is Quote:
            priced = event.bid > 0.0 and event.ask > 0.0  # type: ignore[attr-defined]
        elif cls is Trade:
            priced = event.price > 0.0  # type: ignore[attr-defined]
        elif type(event) is Bar:
            priced = event.close > 0.0
        else:
            priced = False
        if priced:
            self._priced[event.symbol] = event
            if self._unpriced_ts:
                self._unpriced_ts.pop(event.symbol, None)
        else:
            self._unpriced_ts[event.symbol] = event.ts_ms
        ts = event.ts_ms
        if ts > self._feed_now_ms:
            self._feed_now_ms = ts

    def last_price(self, symbol: str) -> float | None:
        """Trade price, quote mid or bar close of ``symbol``'s latest priced event."""
        ev = self._priced.get(symbol)
        if ev is None:
            return None
        if type(ev) is Quote:
            return (ev.bid + ev.ask) / 2.0
        if type(ev) is Trade:
            return ev.price
        if type(ev) is Bar:
            return ev.close
        return None

    def reference_price(self, symbol: str) -> Decimal | None:
        """Latest reference price of ``symbol`` (trade, quote mid or bar close), if any."""
        px = self.last_price(symbol)
        return to_decimal(px) if px is not None else None

    def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Reference prices of those ``symbols`` that have one."""
        out: dict[str, Decimal] = {}
        for symbol in symbols:
            if symbol not in out:
                px = self.last_price(symbol)
                if px is not None:
                    out[symbol] = to_decimal(px)
        return out

    def age_s(self, symbol: str) -> float | None:
        """Feed-time seconds since ``symbol``'s latest event (None: never seen)."""
        ts = self._unpriced_ts.get(symbol)
        if ts is None:
            ev = self._priced.get(symbol)
            if ev is None:
                return None
            ts = ev.ts_ms
        return max(0, self._feed_now_ms - ts) / 1000.0

"""Per-symbol feed bookkeeping and the immutable snapshot the risk gate and watchdog read."""

from __future__ import annotations

import msgspec

from actors.ports.market_data import SourceStats


class SymbolFeed(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's data freshness and counters at snapshot time.

    ``feed_age_ms`` is measured in feed time: the feed clock (the latest event time over
    all symbols) minus this symbol's latest event time, so a symbol that went quiet while
    others trade ages even in a fast replay. ``wall_age_s`` is the monotonic time since its
    last event entered the daemon, so a dead source ages every symbol. ``stale`` is true
    when either age exceeds ``stale_after_s``, or when no event was seen yet.
    """

    symbol: str
    last_ts_ms: int | None
    feed_age_ms: int | None
    wall_age_s: float | None
    stale: bool
    trades: int
    quotes: int
    bars: int
    books: int
    late_prints: int


class FeedSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Immutable view of the feed: freshness per symbol, counters, source state."""

    taken_ns: int
    source: str
    live: bool
    ended: bool
    feed_time_ms: int | None
    stale_after_s: float
    events: int
    unknown_symbol: int
    bars_published: int
    symbols: tuple[SymbolFeed, ...]
    source_stats: SourceStats

    def symbol(self, symbol: str) -> SymbolFeed | None:
        """The entry of ``symbol`` (None when it is not in the feed's universe)."""
        for s in self.symbols:
            if s.symbol == symbol:
                return s
        return None

    def is_stale(self, symbol: str) -> bool:
        """True when ``symbol`` has no fresh data (or is unknown to the feed)."""
        s = self.symbol(symbol)
        return True if s is None else s.stale


class SymbolState:
    """Mutable per-symbol counters owned by the feed actor."""

    __slots__ = ("bars", "books", "last_recv_ns", "last_ts_ms", "quotes", "trades")

    def __init__(self) -> None:
        self.last_ts_ms = -1
        self.last_recv_ns = 0
        self.trades = 0
        self.quotes = 0
        self.bars = 0
        self.books = 0

    def freeze(self, symbol: str, feed_ms: int, now_ns: int, stale_after_s: float, late: int) -> SymbolFeed:
        """Snapshot this symbol."""
        if self.last_ts_ms < 0:
            return SymbolFeed(symbol=symbol, last_ts_ms=None, feed_age_ms=None, wall_age_s=None, stale=True,
                              trades=self.trades, quotes=self.quotes, bars=self.bars, books=self.books,
                              late_prints=late)
        feed_age = max(0, feed_ms - self.last_ts_ms)
        wall_age = max(0.0, (now_ns - self.last_recv_ns) / 1e9)
        stale = feed_age > stale_after_s * 1000.0 or wall_age > stale_after_s
        return SymbolFeed(symbol=symbol, last_ts_ms=self.last_ts_ms, feed_age_ms=feed_age, wall_age_s=wall_age,
                          stale=stale, trades=self.trades, quotes=self.quotes, bars=self.bars, books=self.books,
                          late_prints=late)

"""Normalized market-data messages.

Numbers here are ``float``. A float holds any exchange price or size of up to 15
significant digits exactly as parsed from its decimal string, so equality with the
exchange's own figures holds, and floats keep the feed -> indicator hot path fast.
Money is computed elsewhere in ``Decimal``: order sizes, fills, fees, positions and
balances (see ``actors.model.orders``); the conversion happens at the order boundary.

``recv_ns`` is the monotonic time (``time.perf_counter_ns``) at which the event entered
the daemon; it is what tick-to-submit latency is measured from.
"""

from __future__ import annotations

from actors.model.base import Message


class MarketEvent(Message, frozen=True, kw_only=True, gc=False):
    """Common fields of every market-data event."""

    symbol: str
    ts_ms: int
    recv_ns: int = 0


class Trade(MarketEvent, frozen=True, kw_only=True, gc=False, tag="md.trade"):
    """One public trade print. ``side`` is the taker side: "buy" or "sell"."""

    price: float
    size: float
    side: str
    trade_id: int = 0


class Quote(MarketEvent, frozen=True, kw_only=True, gc=False, tag="md.quote"):
    """Top of book."""

    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0

    @property
    def mid(self) -> float:
        """Mid price."""
        return (self.bid + self.ask) / 2.0


class Bar(MarketEvent, frozen=True, kw_only=True, gc=False, tag="md.bar"):
    """OHLCV bar. ``ts_ms`` is the bar's open time; ``timeframe`` e.g. "1m"."""

    timeframe: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int = 0


class BookSnapshot(MarketEvent, frozen=True, kw_only=True, gc=False, tag="md.book_snapshot"):
    """Full order-book snapshot; levels are (price, size), best first."""

    seq: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


class BookDelta(MarketEvent, frozen=True, kw_only=True, gc=False, tag="md.book_delta"):
    """Order-book change covering sequence numbers first_seq..last_seq; size 0 removes a level."""

    first_seq: int
    last_seq: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]

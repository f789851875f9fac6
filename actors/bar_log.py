"""Logs every closed bar at DEBUG and keeps the most recent ones for the operator's charts.

Bars are rare compared with market events (one per symbol and timeframe per period), so
one log line each is affordable, but at info they would drown everything else (most of a
replay's log); ``[log] level = "debug"`` shows them, and the periodic ``daemon.summary``
line says what the daemon is doing. It subscribes to the feed like a strategy does.
The newest ``keep`` bars of each (symbol, timeframe) stay in a bounded ring that the
admin console draws its candlestick charts from (``history()``).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

import msgspec

from actors.kernel.actor import MessageActor
from actors.kernel.channel import Channel
from actors.model.market import Bar

DEFAULT_KEEP = 300
"""Bars kept per (symbol, timeframe): five hours of 1-minute bars."""


class BarSeries(msgspec.Struct, frozen=True, kw_only=True):
    """The recent closed bars of one symbol and timeframe, oldest first."""

    symbol: str
    timeframe: str
    bars: tuple[Bar, ...]


class BarHistory(msgspec.Struct, frozen=True, kw_only=True):
    """Recent bars of every (symbol, timeframe) seen; ``version`` grows with each bar taken in."""

    version: int
    series: tuple[BarSeries, ...]


class BarLog(MessageActor[Bar]):
    """Writes one ``feed.bar`` line (debug) per closed bar and keeps the newest ``keep`` per series."""

    kind = "bar_log"

    def __init__(self, name: str, bars: Channel[Bar], keep: int = DEFAULT_KEEP) -> None:
        super().__init__(name, bars)
        self._keep = keep
        self._rings: dict[tuple[str, str], deque[Bar]] = {}
        self._version = 0

    async def handle(self, msg: Bar) -> None:
        """Log the bar and remember it."""
        ring = self._rings.get((msg.symbol, msg.timeframe))
        if ring is None:
            ring = self._rings[(msg.symbol, msg.timeframe)] = deque(maxlen=self._keep)
        if ring and ring[-1].ts_ms >= msg.ts_ms:
            # A replay that loops starts again from its first bar: a chart's time axis must rise.
            ring.clear()
        ring.append(msg)
        self._version += 1
        self.log.debug(
            "feed.bar",
            symbol=msg.symbol,
            timeframe=msg.timeframe,
            open_time=datetime.fromtimestamp(msg.ts_ms / 1000, UTC).isoformat(),
            open=msg.open,
            high=msg.high,
            low=msg.low,
            close=msg.close,
            volume=msg.volume,
            trades=msg.trades,
        )

    def history(self) -> BarHistory:
        """A copy of the rings (sorted by symbol, then timeframe), safe to hand to another task."""
        series = tuple(
            BarSeries(symbol=symbol, timeframe=timeframe, bars=tuple(ring))
            for (symbol, timeframe), ring in sorted(self._rings.items())
        )
        return BarHistory(version=self._version, series=series)

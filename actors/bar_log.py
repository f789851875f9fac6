"""Logs every closed bar at INFO: what a user watching the JSON log expects to see.

Bars are rare compared with market events (one per symbol and timeframe per period),
so one log line each is affordable; it subscribes to the feed like a strategy does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from actors.kernel.actor import MessageActor
from actors.kernel.channel import Channel
from actors.model.market import Bar


class BarLog(MessageActor[Bar]):
    """Writes one ``feed.bar`` line per closed bar."""

    kind = "bar_log"

    def __init__(self, name: str, bars: Channel[Bar]) -> None:
        super().__init__(name, bars)

    async def handle(self, msg: Bar) -> None:
        """Log the bar."""
        self.log.info(
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

"""The ``--from``/``--to`` window of a backtest: parsing the bounds and filtering a source.

Bounds are UTC. ``--from`` is inclusive, ``--to`` exclusive: ``--from 2019-10-11
--to 2019-10-12`` is exactly the 11th. ``TimeRangeSource`` wraps any market-data source
and hands out only the events inside the window, so the feed, the market clock and every
actor downstream see a shorter tape and nothing else changes. Over a source that hands out
batches (``actors.feed.BatchSource``) it does too, cutting the batches (a ``QuoteRun`` stays
one), so a windowed replay keeps the feed's batch path.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from actors.feed import BatchSource, QuoteRun
from actors.model.market import MarketEvent
from actors.ports.capabilities import HasStartTime
from actors.ports.market_data import MarketDataSource, SourceStats

__all__ = ["TimeRangeSource", "format_bound", "parse_bound"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAY_MS = 86_400_000


def parse_bound(text: str) -> int:
    """Epoch ms of a ``YYYY-MM-DD`` date (its midnight UTC) or an ISO-8601 datetime (UTC if naive).

    Raises ValueError with a message naming the accepted forms.
    """
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            when = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime (YYYY-MM-DDTHH:MM[:SS][+00:00])")\
            from None
    return int(when.timestamp() * 1000)


def format_bound(ts_ms: int) -> str:
    """A compact UTC form for file names: ``20191011`` at midnight, else ``20191011T120000``."""
    when = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return when.strftime("%Y%m%d") if ts_ms % _DAY_MS == 0 else when.strftime("%Y%m%dT%H%M%S")


class TimeRangeSource:
    """A market-data source yielding only ``inner``'s events with ``start_ms <= ts_ms < end_ms``.

    The inner source hands out events in timestamp order, so the first event at or past
    ``end_ms`` ends the stream. ``start_ts_ms`` (``HasStartTime``) is where a market clock
    starts: the later of the window's start and the inner source's first event. When the
    inner source is a ``BatchSource``, so is this one (``event_batches``): the same events, cut
    out of the inner batches.
    """

    #: Present only when the inner source hands out batches (``actors.feed.BatchSource``).
    event_batches: Callable[[], AsyncIterator[Sequence[MarketEvent]]]

    def __init__(self, inner: MarketDataSource, start_ms: int | None = None, end_ms: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.symbols = inner.symbols
        self.start_ms = start_ms
        self.end_ms = end_ms
        if isinstance(inner, BatchSource):
            # An instance attribute: the feed's ``isinstance(source, BatchSource)`` sees it only here.
            self.event_batches = self._window_batches

    @property
    def start_ts_ms(self) -> int:
        """Market time of the first event the window can hold."""
        src: object = self.inner
        inner_start = src.start_ts_ms if isinstance(src, HasStartTime) else 0
        return max(inner_start, self.start_ms) if self.start_ms is not None else inner_start

    def stats(self) -> SourceStats:
        """The inner source's counters."""
        return self.inner.stats()

    async def close(self) -> None:
        """Close the inner source."""
        await self.inner.close()

    async def events(self) -> AsyncIterator[MarketEvent]:
        """The inner events inside the window, in order."""
        start, end = self.start_ms, self.end_ms
        async for ev in self.inner.events():
            ts = ev.ts_ms
            if end is not None and ts >= end:
                return
            if start is None or ts >= start:
                yield ev

    async def _window_batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        """The inner batches cut to the window: the events ``events()`` yields, in the same order.

        Resumable like the inner source's (a new call continues after its last batch). A
        ``QuoteRun`` is in time order: it is cut by bisection and stays a ``QuoteRun``.
        """
        inner = self.inner
        assert isinstance(inner, BatchSource)
        start, end = self.start_ms, self.end_ms
        async for batch in inner.event_batches():
            if type(batch) is QuoteRun:
                stamps = batch.ts_ms
                n = len(stamps)
                lo = 0 if start is None else bisect_left(stamps, start)
                hi = n if end is None else bisect_left(stamps, end)
                if lo < hi:
                    yield batch if lo == 0 and hi == n else QuoteRun(batch.symbol, batch[lo:hi], stamps[lo:hi])
                if hi < n:  # an event at or past the end: the stream ends there
                    return
                continue
            kept: list[MarketEvent] = []
            for ev in batch:
                ts = ev.ts_ms
                if end is not None and ts >= end:
                    if kept:
                        yield kept
                    return
                if start is None or ts >= start:
                    kept.append(ev)
            if kept:
                yield kept

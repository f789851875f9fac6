"""The market-data source interface the feed actor reads, and its counters.

A source yields normalized market events (``actors.model.market``) in the order they
happened. Sources stamp ``recv_ns`` (``time.perf_counter_ns``) when they hand an event
over; that moment is the event's entry into the daemon.

Sources are resumable: calling ``events()`` again after the iteration was interrupted
(e.g. the feed actor was restarted by its supervisor) continues after the last event
handed out, so a restart neither repeats nor skips data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from actors.model.market import MarketEvent


class SourceStats(msgspec.Struct, frozen=True, kw_only=True):
    """A point-in-time copy of a source's counters.

    ``rows``/``duplicates_skipped``/``out_of_order``/``gaps`` describe the data file (replay);
    ``events`` counts what was handed out, by kind; ``passes`` counts completed loops.
    """

    name: str
    events: int = 0
    trades: int = 0
    quotes: int = 0
    bars: int = 0
    rows: int = 0
    duplicates_skipped: int = 0
    out_of_order: int = 0
    gaps: int = 0
    passes: int = 0
    ended: bool = False


@runtime_checkable
class MarketDataSource(Protocol):
    """Where market events come from (replay file, synthetic walk, a venue stream)."""

    name: str
    symbols: tuple[str, ...]

    def events(self) -> AsyncIterator[MarketEvent]:
        """Yield events in order; ends when a finite source is exhausted. Resumable."""
        ...

    def stats(self) -> SourceStats:
        """Current counters."""
        ...

    async def close(self) -> None:
        """Release files and connections. Idempotent."""
        ...

"""The simulator's notion of "server time"."""

from __future__ import annotations

import time
from typing import Protocol


class SkewSource(Protocol):
    """Anything exposing the current injected clock skew."""

    @property
    def clock_skew_ms(self) -> int:
        """Milliseconds added to wall-clock time."""
        ...


class SimClock:
    """Wall clock plus the fault plan's skew.

    Skew shifts every server timestamp (``serverTime``, event times, the recvWindow check),
    which is how a drifting exchange clock looks to a client.
    """

    def __init__(self, skew: SkewSource) -> None:
        self._skew = skew

    def now_ms(self) -> int:
        """Current server time in ms since the epoch."""
        return time.time_ns() // 1_000_000 + self._skew.clock_skew_ms

"""The one place that reads time.

Two kinds of time, kept apart on purpose:

* **Business time** (``Clock.now_ms``): timestamps on records, per-minute and per-day risk
  limits, order ages, reconcile look-backs. Live it is the wall clock; in a replay or a
  backtest it is *market* time, advanced by the feed from the events' own timestamps, so a
  replay at any speed lives through exactly the minutes and days of its data.
* **Process time** (``monotonic``, ``perf_ns``): heartbeats, supervisor restart intensity,
  loop lag, request durations, latency histograms. These measure the process itself and are
  always real, whatever clock the pipeline runs on.

Everything else imports these names instead of ``time``/``datetime``; a test
(``tests/unit/test_clock_usage.py``) fails on a direct read anywhere else.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = [
    "Clock",
    "MarketClock",
    "WallClock",
    "boot_time_s",
    "monotonic",
    "monotonic_usec",
    "perf_ns",
    "perf_s",
    "wall_ms",
    "wall_s",
]

#: Real monotonic seconds (process time: intervals, heartbeats, deadlines).
monotonic = time.monotonic
#: Real monotonic nanoseconds with the best resolution (latency measurement).
perf_ns = time.perf_counter_ns
#: Real monotonic seconds with the best resolution (durations of work).
perf_s = time.perf_counter


def wall_ms() -> int:
    """Wall-clock epoch milliseconds (only for process facts: start time, file stamps)."""
    return time.time_ns() // 1_000_000


def wall_s() -> float:
    """Wall-clock epoch seconds (only for process facts: when a file was loaded)."""
    return time.time()


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds (what systemd expects in ``MONOTONIC_USEC``)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def boot_time_s() -> float:
    """Epoch seconds at which the machine booted (wall clock minus CLOCK_BOOTTIME)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


@runtime_checkable
class Clock(Protocol):
    """Business time: epoch milliseconds, wall time live, market time in replay/backtest."""

    def now_ms(self) -> int:
        """Current business time in epoch milliseconds; never goes backwards."""
        ...

    @property
    def simulated(self) -> bool:
        """True when time follows market data rather than the wall clock."""
        ...


class WallClock:
    """Business time is the wall clock (live trading, live market data)."""

    simulated = False

    def now_ms(self) -> int:
        """Wall-clock epoch milliseconds."""
        return time.time_ns() // 1_000_000


class MarketClock:
    """Business time follows the market data: the newest event timestamp seen.

    The feed calls ``advance`` with each event's ``ts_ms`` before anything downstream sees
    the event, so every actor reads the same market "now". It never moves backwards (a late
    print does not rewind time). Before the first event it reads ``start_ms``.
    """

    __slots__ = ("_now",)

    simulated = True

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """The newest market timestamp seen (or the start)."""
        return self._now

    def advance(self, ts_ms: int) -> None:
        """Move time forward to ``ts_ms`` (ignored if it is not later)."""
        if ts_ms > self._now:
            self._now = ts_ms

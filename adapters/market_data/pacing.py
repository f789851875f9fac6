"""Pacing of recorded or simulated market time against the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from actors.kernel.clock import monotonic

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class Pacer:
    """Holds a source to ``speed`` x real time, measured in the events' own timestamps.

    ``speed`` 1 = real time, N = N times faster, 0 = as fast as possible. With speed 0 the
    pacer still yields to the event loop every ``yield_every`` events so that a fast source
    never starves other tasks. The first paced event anchors feed time to the monotonic
    clock; a speed change re-anchors at the next event.
    """

    __slots__ = ("_anchor_ms", "_anchor_wall", "_clock", "_count", "_sleep", "speed", "yield_every")

    def __init__(self, speed: float, *, yield_every: int = 256, sleep: Sleep | None = None,
                 clock: Clock | None = None) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self.yield_every = max(1, yield_every)
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._clock: Clock = clock if clock is not None else monotonic
        self._anchor_ms: int | None = None
        self._anchor_wall = 0.0
        self._count = 0

    def set_speed(self, speed: float) -> None:
        """Change the speed; takes effect (re-anchored) at the next event."""
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self._anchor_ms = None

    async def wait_until(self, ts_ms: int) -> None:
        """Wait until the event at feed time ``ts_ms`` is due."""
        self._count += 1
        if self.speed <= 0.0:
            if self._count % self.yield_every == 0:
                await self._sleep(0)
            return
        now = self._clock()
        if self._anchor_ms is None:
            self._anchor_ms = ts_ms
            self._anchor_wall = now
        due = self._anchor_wall + (ts_ms - self._anchor_ms) / 1000.0 / self.speed
        if due > now:
            await self._sleep(due - now)
        elif self._count % self.yield_every == 0:
            await self._sleep(0)

"""Ordered hand-off of order events to a block-policy channel, without blocking state changes.

The order manager changes state synchronously and cannot wait for room in the events
channel in the middle of a change. ``EventOutbox.put`` sends at once when nothing is queued
and the channel has room; otherwise it queues, and one publisher task (``run``) delivers
the queue in order. Producers call ``wait_for_room`` between units of work to bound it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from actors.kernel.channel import Channel, ChannelClosed
from actors.kernel.clock import monotonic
from actors.model.orders import OrderEvent


class EventOutbox:
    """An ordered queue in front of ``channel``; ``limit`` is the depth producers wait below.

    ``on_progress`` is called after each delivery by the publisher (the actor's heartbeat).
    ``published`` counts deliveries over the outbox's lifetime (``reset`` keeps it).
    """

    def __init__(self, channel: Channel[OrderEvent], limit: int, on_progress: Callable[[], None]) -> None:
        self._channel = channel
        self._limit = limit
        self._on_progress = on_progress
        self.published = 0
        self.reset()

    def reset(self) -> None:
        """Drop queued events and start afresh (a restart of the owning actor)."""
        self._queue: deque[OrderEvent] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, event: OrderEvent) -> None:
        """Send now if possible, else queue behind the events already waiting (never blocks)."""
        queue = self._queue
        if not queue:
            try:
                if self._channel.try_send(event):
                    self.published += 1
                    return
            except ChannelClosed:
                return
        queue.append(event)
        self._wake.set()

    async def wait_for_room(self) -> None:
        """Wait while more than ``limit`` events are queued."""
        if len(self._queue) > self._limit:
            self._room.clear()
            await self._room.wait()

    async def run(self) -> None:
        """The publisher: deliver queued events in order, forever (cancel to stop)."""
        queue = self._queue
        channel = self._channel
        while True:
            if not queue:
                self._room.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await channel.send(queue[0])
            except ChannelClosed:
                queue.clear()
                continue
            queue.popleft()
            self.published += 1
            self._on_progress()
            if len(queue) <= self._limit // 2:
                self._room.set()

    async def flush(self, deadline: float) -> None:
        """Give the publisher until ``deadline`` (process time) to deliver what is queued."""
        while self._queue and monotonic() < deadline and not self._channel.closed:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), max(0.0, deadline - monotonic()))
            except TimeoutError:
                break

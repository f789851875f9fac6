"""A venue's per-subscriber stream of order updates and fills (shared by every venue adapter)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from actors.ports.venue import VenueUpdate


class UpdateStream(AsyncIterator[VenueUpdate]):
    """One subscriber's bounded buffer of venue updates; ends when the venue closes it.

    When the subscriber falls ``capacity`` updates behind, the oldest are dropped and
    counted: the reconciler re-reads the venue, so a lagging stream never grows memory.
    """

    def __init__(self, capacity: int, on_close: Callable[[UpdateStream], None]) -> None:
        self._buf: deque[VenueUpdate] = deque()
        self._capacity = capacity
        self._on_close = on_close
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def push(self, item: VenueUpdate) -> None:
        """Queue one update (ignored once closed)."""
        if self._closed:
            return
        if len(self._buf) >= self._capacity:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(item)
        self._wake()

    def end(self) -> None:
        """End the stream: iteration stops after the queued updates."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> VenueUpdate:
        while not self._buf:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buf.popleft()

    async def aclose(self) -> None:
        """Stop receiving updates."""
        self._closed = True
        self._on_close(self)

"""Bounded typed channels between actors, with a per-channel overflow policy.

Policies:
- ``block``: never drop; a producer waits while the channel is full (commands, order events).
- ``drop_oldest``: a full channel discards its oldest item to take the new one.
- ``conflate``: at most one pending item per key (e.g. per symbol); a newer item replaces
  the pending one in place, keeping its queue position. When more distinct keys than the
  capacity are pending, the oldest key's item is dropped (counted as dropped).

The implementation is a deque plus waiter futures, like ``asyncio.Queue`` but without its
per-call overhead (no ``put_nowait``/``QueueFull`` indirection, no task accounting), because
every market event crosses several channels.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class OverflowPolicy(StrEnum):
    """What a full channel does with a new item."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    CONFLATE = "conflate"


class ChannelClosed(Exception):
    """The channel was closed (and, for receivers, drained)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelStats:
    """A point-in-time view of a channel's counters."""

    name: str
    policy: str
    capacity: int
    depth: int
    high_water: int
    sent: int
    received: int
    dropped: int
    conflated: int
    closed: bool


class Channel(Generic[T]):
    """A bounded queue with counters and an overflow policy. Single event loop only."""

    __slots__ = (
        "_buf",
        "_closed",
        "_getters",
        "_key",
        "_latest",
        "_putters",
        "capacity",
        "conflated",
        "dropped",
        "high_water",
        "name",
        "policy",
        "received",
        "sent",
    )

    def __init__(
        self,
        name: str,
        capacity: int,
        policy: OverflowPolicy | str = OverflowPolicy.BLOCK,
        key: Callable[[T], Hashable] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"channel {name}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.policy = OverflowPolicy(policy)
        if self.policy is OverflowPolicy.CONFLATE and key is None:
            raise ValueError(f"channel {name}: conflate policy needs a key function")
        self._key = key
        # For conflate, _buf holds keys in arrival order and _latest the newest item per key.
        self._buf: deque[T] | deque[Hashable] = deque()
        self._latest: dict[Hashable, T] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.conflated = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def stats(self) -> ChannelStats:
        """Counters, depth and high-water mark."""
        return ChannelStats(
            self.name,
            self.policy.value,
            self.capacity,
            len(self._buf),
            self.high_water,
            self.sent,
            self.received,
            self.dropped,
            self.conflated,
            self._closed,
        )

    # -- sending -----------------------------------------------------------------------
    def try_send(self, item: T) -> bool:
        """Enqueue without waiting. Returns False only for a full ``block`` channel."""
        if self._closed:
            raise ChannelClosed(self.name)
        buf = self._buf
        if self.policy is OverflowPolicy.CONFLATE:
            k = self._key(item)  # type: ignore[misc]
            latest = self._latest
            if k in latest:
                latest[k] = item
                self.conflated += 1
                self.sent += 1
                return True
            if len(buf) >= self.capacity:
                old = buf.popleft()
                del latest[old]
                self.dropped += 1
            latest[k] = item
            buf.append(k)  # type: ignore[arg-type]
        else:
            if len(buf) >= self.capacity:
                if self.policy is OverflowPolicy.BLOCK:
                    return False
                buf.popleft()
                self.dropped += 1
            buf.append(item)
        self.sent += 1
        n = len(buf)
        if n > self.high_water:
            self.high_water = n
        getters = self._getters
        while getters:
            fut = getters.popleft()
            if not fut.done():
                fut.set_result(None)
                break
        return True

    async def send(self, item: T) -> None:
        """Enqueue; on a full ``block`` channel wait for room. Raises ChannelClosed."""
        while not self.try_send(item):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            except BaseException:
                fut.cancel()
                # Pass a wake-up we may have consumed on to the next waiting producer.
                if not self._closed and len(self._buf) < self.capacity:
                    self._wake(self._putters)
                raise

    # -- receiving ---------------------------------------------------------------------
    def _pop(self) -> T:
        if self.policy is OverflowPolicy.CONFLATE:
            k = self._buf.popleft()
            item = self._latest.pop(k)
        else:
            item = self._buf.popleft()  # type: ignore[assignment]
        self.received += 1
        if self._putters:
            self._wake(self._putters)
        return item

    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def try_recv(self) -> T | None:
        """Dequeue without waiting; None when empty (items are never None)."""
        if self._buf:
            return self._pop()
        return None

    async def recv(self) -> T:
        """Dequeue, waiting for an item. Raises ChannelClosed once closed and drained."""
        while not self._buf:
            if self._closed:
                raise ChannelClosed(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except BaseException:
                fut.cancel()
                if self._buf:
                    self._wake(self._getters)
                raise
        return self._pop()

    def drain(self, limit: int) -> list[T]:
        """Dequeue up to ``limit`` items without waiting (batch processing)."""
        buf = self._buf
        n = len(buf)
        if not n:
            return []
        if n > limit:
            n = limit
        if self.policy is OverflowPolicy.CONFLATE:
            latest = self._latest
            popk = buf.popleft
            out: list[T] = [latest.pop(popk()) for _ in range(n)]
        else:
            popi = buf.popleft
            out = [popi() for _ in range(n)]  # type: ignore[misc]
        self.received += n
        if self._putters:
            # Room for up to n producers: wake them in order.
            for _ in range(n):
                if not self._putters:
                    break
                self._wake(self._putters)
        return out

    @property
    def ready(self) -> bool:
        """True when a receive would not wait: an item is queued or the channel is closed."""
        return bool(self._buf) or self._closed

    async def __aiter__(self) -> AsyncIterator[T]:
        """Iterate until the channel is closed and drained."""
        while True:
            try:
                item = await self.recv()
            except ChannelClosed:
                return
            yield item

    def close(self) -> None:
        """Close: senders get ChannelClosed; receivers drain what is left, then stop."""
        if self._closed:
            return
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)


async def wait_any(channels: Sequence[Channel[Any]]) -> None:
    """Wait until at least one of ``channels`` is ready (has an item, or is closed).

    Receives nothing: the caller drains whichever channels are ready. Cheaper than a receive
    task per channel plus ``asyncio.wait``: one future, registered as a waiting receiver on
    every channel (a channel skips it once it is done). Single event loop only.
    """
    for ch in channels:
        if ch._buf or ch._closed:
            return
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    for ch in channels:
        ch._getters.append(fut)
    try:
        await fut
    except BaseException:
        if fut.done() and not fut.cancelled():
            # Woken, then cancelled: pass the wake-up on to the channels' other receivers.
            for ch in channels:
                if ch._buf:
                    ch._wake(ch._getters)
        else:
            fut.cancel()
        raise
    finally:
        for ch in channels:
            getters = ch._getters
            if getters and getters[-1] is fut:
                getters.pop()

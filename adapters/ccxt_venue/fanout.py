"""The ccxt venue's update subscribers: every update goes to each one's bounded stream."""

from __future__ import annotations

import contextlib

from actors.ports.venue import VenueError, VenueUpdate
from adapters.venue_updates import UpdateStream


class FailableStream(UpdateStream):
    """An update stream that can end with an error: its subscriber gets what was queued, then the error."""

    _error: VenueError | None = None

    def fail(self, error: VenueError) -> None:
        """End the stream; iteration raises ``error`` after the queued updates."""
        self._error = error
        self.end()

    async def __anext__(self) -> VenueUpdate:
        try:
            return await super().__anext__()
        except StopAsyncIteration:
            if self._error is not None:
                raise self._error from None
            raise


class UpdateFanout:
    """Subscribers of ``Venue.updates()``; an update published with none is dropped and counted.

    ``capacity`` bounds each subscriber's buffer (``UpdateStream`` drops its oldest and counts).
    """

    __slots__ = ("_capacity", "_streams", "dropped_unsubscribed")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._streams: list[FailableStream] = []
        self.dropped_unsubscribed = 0

    def __len__(self) -> int:
        return len(self._streams)

    @property
    def dropped(self) -> int:
        """Updates nobody got: published with no subscriber, or dropped by a lagging one."""
        return self.dropped_unsubscribed + sum(s.dropped for s in self._streams)

    def subscribe(self, *, ended: bool = False) -> FailableStream:
        """A new subscriber's stream (``ended``: one that ends at once, e.g. while the venue closes)."""
        stream = FailableStream(self._capacity, self._unsubscribe)
        if ended:
            stream.end()
        else:
            self._streams.append(stream)
        return stream

    def _unsubscribe(self, stream: UpdateStream) -> None:
        if isinstance(stream, FailableStream):
            with contextlib.suppress(ValueError):
                self._streams.remove(stream)

    def publish(self, item: VenueUpdate) -> None:
        """Hand ``item`` to every subscriber."""
        if not self._streams:
            self.dropped_unsubscribed += 1
            return
        for stream in self._streams:
            stream.push(item)

    def end_all(self) -> None:
        """End every subscriber's stream (they stop after what is queued) and forget them."""
        streams, self._streams = self._streams, []
        for stream in streams:
            stream.end()

    def fail_all(self, error: VenueError) -> None:
        """End every subscriber's stream with ``error`` (raised after what is queued) and forget them."""
        streams, self._streams = self._streams, []
        for stream in streams:
            stream.fail(error)

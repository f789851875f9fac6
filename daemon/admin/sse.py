"""Log tail and live log stream (``GET /logs``, ``GET /logs?follow=1`` as Server-Sent Events).

Records come from the ``LogRing`` (already redacted: the ring sits after the redactor in
the structlog chain). A tail over a large ring is scanned in slices with a yield to the
event loop between them; a follower registers its queue with ``LogRing.follow()`` and
the same step (no ``await`` in between) snapshots the backlog, so no record is lost or
repeated at the seam. A slow follower loses its oldest lines (bounded queue), never
memory; a disconnected one is noticed within a second and unregistered.

Wire format per record: ``id: <n>`` / ``event: log`` / ``data: <one JSON line>``; a
``: connected`` comment first (the client knows it is subscribed), ``: keepalive``
comments while idle, and ``event: end`` when the server shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from actors.kernel.clock import monotonic
from daemon.logging_setup import LEVELS, LogRing

SCAN_SLICE = 5000
ENCODE_SLICE = 500
_WAKE_S = 1.0


def _threshold(level: str | None) -> int:
    return LEVELS.get(level or "debug", 10)


def _matches(rec: dict[str, Any], threshold: int, logger: str | None) -> bool:
    if LEVELS.get(str(rec.get("level", "info")), 20) < threshold:
        return False
    return not (logger and rec.get("actor") != logger and rec.get("logger") != logger)


def encode_record(rec: dict[str, Any]) -> bytes:
    """One record as a JSON line (like the stdout renderer: unknown types as ``str``)."""
    return orjson.dumps(rec, default=str)


async def select(
    records: list[dict[str, Any]], n: int, level: str | None = None, logger: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``n`` of ``records`` at or above ``level`` (and of ``logger``), oldest first.

    Same selection as ``LogRing.tail``, but scanned in slices so that a filtered tail over
    a million records never blocks the loop for long.
    """
    threshold = _threshold(level)
    out: list[dict[str, Any]] = []
    if n <= 0:
        return out
    for scanned, rec in enumerate(reversed(records), 1):
        if _matches(rec, threshold, logger):
            out.append(rec)
            if len(out) >= n:
                break
        if scanned % SCAN_SLICE == 0:
            await asyncio.sleep(0)
    out.reverse()
    return out


async def tail(ring: LogRing, n: int, level: str | None = None, logger: str | None = None) -> list[dict[str, Any]]:
    """``select`` over a snapshot of the ring (the ring keeps changing while we yield)."""
    return await select(list(ring.records), n, level, logger)


async def encode_records(records: Iterable[dict[str, Any]]) -> list[bytes]:
    """JSON-encode records in slices, yielding to the loop between slices."""
    out: list[bytes] = []
    for i, rec in enumerate(records, 1):
        out.append(encode_record(rec))
        if i % ENCODE_SLICE == 0:
            await asyncio.sleep(0)
    return out


class LogStreams:
    """The live ``/logs?follow=1`` streams of one admin server (bounded number)."""

    def __init__(self, ring: LogRing, queue_size: int = 1000) -> None:
        self.ring = ring
        self.queue_size = queue_size
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._end: dict[str, Any] = {"event": "admin.stream_end"}  # identity marks shutdown
        self.closing = False

    @property
    def active(self) -> int:
        """Streams currently open."""
        return len(self._queues)

    def close_all(self) -> None:
        """Tell every stream to finish (server shutdown)."""
        self.closing = True
        for q in tuple(self._queues):
            if q.full():
                q.get_nowait()
            q.put_nowait(self._end)

    async def serve(
        self,
        request: web.Request,
        *,
        backlog: int,
        level: str | None,
        logger: str | None,
        keepalive_s: float,
    ) -> web.StreamResponse:
        """Stream the newest ``backlog`` matching records, then every new one, until disconnect."""
        threshold = _threshold(level)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        queue = self.ring.follow(self.queue_size)
        # Synchronously with follow(): the backlog ends exactly where the queue begins.
        snapshot = list(self.ring.records)
        self._queues.add(queue)
        seq = 0
        try:
            await resp.prepare(request)
            await resp.write(b": connected\n\n")
            if backlog > 0:
                picked = await select(snapshot, backlog, level, logger)
                for line in await encode_records(picked):
                    seq += 1
                    await resp.write(b"id: %d\nevent: log\ndata: %s\n\n" % (seq, line))
            last_write = monotonic()
            while not self.closing:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                try:
                    async with asyncio.timeout(min(_WAKE_S, keepalive_s)):
                        rec = await queue.get()
                except TimeoutError:
                    if monotonic() - last_write >= keepalive_s:
                        await resp.write(b": keepalive\n\n")
                        last_write = monotonic()
                    continue
                if rec is self._end:
                    break
                if not _matches(rec, threshold, logger):
                    continue
                seq += 1
                await resp.write(b"id: %d\nevent: log\ndata: %s\n\n" % (seq, encode_record(rec)))
                last_write = monotonic()
            if self.closing:
                await resp.write(b"event: end\ndata: {}\n\n")
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self._queues.discard(queue)
            self.ring.unfollow(queue)
        return resp

"""One accepted websocket: an ordered send queue, a reader loop, and fault switches."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from aiohttp import WSMsgType, web

#: How long a server-initiated close waits for the client's close frame.
CLOSE_TIMEOUT_S = 2.0


class WsConnection:
    """A websocket with a writer task draining a FIFO queue.

    ``send`` never blocks the caller (the venue pushes events synchronously); a client that
    lets more than ``max_queue`` frames pile up is disconnected, like Binance does with slow
    consumers. ``stalled`` stops sending but keeps answering pings (a zombie stream);
    ``blackhole`` also stops the pongs.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        conn_id: int,
        path: str,
        max_queue: int,
        opened_ms: int,
    ) -> None:
        self.ws = ws
        self.conn_id = conn_id
        self.path = path
        self.opened_ms = opened_ms
        self.stalled = False
        self.blackhole = False
        self.closed = False
        self.sent = 0
        self._transport = transport
        self._max_queue = max_queue
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()

    def send(self, text: str) -> None:
        """Queue a text frame (dropped while stalled or closed)."""
        if self.closed or self.stalled or self.blackhole:
            return
        if len(self._queue) >= self._max_queue:
            self.abort()
            return
        self._queue.append(text)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        ws = self.ws
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue and not self.closed:
                text = self._queue.popleft()
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    self.abort()
                    return
                self.sent += 1

    async def run(self, on_text: Callable[[WsConnection, str], None]) -> None:
        """Serve the connection until it closes; ``on_text`` handles each client frame."""
        writer = asyncio.create_task(self._write_loop())
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type == WSMsgType.TEXT:
                    on_text(self, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    on_text(self, bytes(msg.data).decode("utf-8", errors="replace"))
                elif msg.type == WSMsgType.PING:
                    if not self.blackhole:
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await self.ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    continue
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    break
        finally:
            self.closed = True
            self._queue.clear()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def close(self, code: int = 1001, message: str = "") -> None:
        """Send a close frame with ``code`` and wait (briefly) for the client's reply."""
        if self.ws.closed:
            return
        self.closed = True
        self._queue.clear()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (the client sees code 1006)."""
        self.closed = True
        self._queue.clear()
        if self._transport is not None:
            self._transport.abort()


class ChangeSignal:
    """Lets waiters await a condition on connection state: every ``notify()`` wakes them all."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every waiter, then re-arm with a fresh event for the next change."""
        changed, self._event = self._event, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds, re-checking it after each change."""

        async def until() -> None:
            while not predicate():
                await self._event.wait()

        await asyncio.wait_for(until(), timeout_s)


async def accept(
    request: web.Request,
    rejection: tuple[int, float | None] | None,
    *,
    conn_id: int,
    max_queue: int,
    opened_ms: int,
) -> WsConnection | web.Response:
    """Answer a websocket upgrade: the injected handshake rejection, or an accepted connection."""
    if rejection is not None:
        status, retry_after = rejection
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return web.Response(status=status, text="Too many requests", headers=headers)
    ws = web.WebSocketResponse(autoping=False, compress=False, timeout=2.0, max_msg_size=1 << 20)
    transport = request.transport
    await ws.prepare(request)
    return WsConnection(ws, transport, conn_id=conn_id, path=request.path, max_queue=max_queue, opened_ms=opened_ms)

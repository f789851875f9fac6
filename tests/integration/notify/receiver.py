"""A webhook receiver on 127.0.0.1 for Apprise's ``json://`` URLs (aiohttp, in the test's loop)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from actors.kernel.clock import perf_ns


class Receiver:
    """Records every POSTed JSON body with its arrival time; can be stopped and started on the same port."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.port = 0
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the first start picks a free port; later starts reuse it)."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            server: Any = site._server
            self.port = server.sockets[0].getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, path: str = "hook") -> str:
        """The Apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        body["recv_ns"] = perf_ns()
        body["path"] = request.path
        self.messages.append(body)
        self._arrived.set()
        return web.Response(text="ok")

    async def wait_count(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages arrived (the timeout is a safety net)."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < n:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages

    def titles(self) -> list[str]:
        """The titles received, in arrival order."""
        return [str(m.get("title", "")) for m in self.messages]

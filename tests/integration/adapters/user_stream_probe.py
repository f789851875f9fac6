"""A raw WS-API user-data subscription for tests that need events ccxt drops (``listStatus``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from adapters.binance_sim import BinanceSimulator, sign

WAIT = 5.0
Event = dict[str, Any]


class UserStreamProbe:
    """Reads user-data events of one subscription, in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    async def next_event(self) -> Event:
        """The next user-data event (``subscriptionId`` frames only)."""
        while True:
            msg = await asyncio.wait_for(self._ws.receive(), WAIT)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = orjson.loads(msg.data)
            if "event" in frame:
                event: Event = frame["event"]
                return event

    async def until(self, done: Callable[[list[Event]], bool]) -> list[Event]:
        """Events (``outboundAccountPosition`` left out) until ``done(events)`` holds."""
        events: list[Event] = []
        while not done(events):
            event = await self.next_event()
            if event["e"] != "outboundAccountPosition":
                events.append(event)
        return events


def list_done(list_id: int) -> Callable[[list[Event]], bool]:
    """Predicate: a ``listStatus`` ``ALL_DONE`` for ``list_id`` has arrived."""
    return lambda events: any(
        e["e"] == "listStatus" and e["g"] == list_id and e["L"] == "ALL_DONE" for e in events
    )


@asynccontextmanager
async def user_stream(sim: BinanceSimulator) -> AsyncIterator[UserStreamProbe]:
    """Subscribe to ``sim``'s user-data stream over the WS-API (signed like ccxt does)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.ws_api_url) as ws:
        ts = sim.clock.now_ms()
        cfg = sim.config
        signature = sign(cfg.api_secret, f"apiKey={cfg.api_key}&recvWindow=10000&timestamp={ts}")
        params = {"apiKey": cfg.api_key, "recvWindow": 10000, "timestamp": ts, "signature": signature}
        request = {"id": "1", "method": "userDataStream.subscribe.signature", "params": params}
        await ws.send_str(orjson.dumps(request).decode())
        reply = orjson.loads((await asyncio.wait_for(ws.receive(), WAIT)).data)
        assert reply["status"] == 200, reply
        yield UserStreamProbe(ws)

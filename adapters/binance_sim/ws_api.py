"""WebSocket API (``/ws-api/v3``): signed user-data subscription and its event stream (§5).

After ``userDataStream.subscribe.signature`` succeeds, the connection receives
``{"subscriptionId": n, "event": {...}}`` frames: executionReport, listStatus,
outboundAccountPosition, balanceUpdate and eventStreamTerminated. Duplicate and out-of-order executionReports are
injected here, between the venue and the socket, so the venue's own state stays correct.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.exchange import SimExchange, UserEvent
from adapters.binance_sim.faults import FaultPlan
from adapters.binance_sim.market_data import PublicTrade
from adapters.binance_sim.requestlog import LoggedRequest, RequestLog
from adapters.binance_sim.signing import verify_ws_params
from adapters.binance_sim.ws_conn import ChangeSignal, WsConnection, accept

_AUTH_CODES = (-1022, -2014, -2015)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


@dataclass(eq=False)
class ApiConn:
    """A WS-API connection and its active user-data subscriptions."""

    conn: WsConnection
    subscription_ids: list[int] = field(default_factory=list)
    next_subscription_id: int = 0


class UserStreamHub:
    """All WS-API connections; forwards the venue's user events to subscribed ones."""

    def __init__(
        self,
        exchange: SimExchange,
        faults: FaultPlan,
        clock: SimClock,
        config: SimulatorConfig,
        log: RequestLog,
    ) -> None:
        self._exchange = exchange
        self._faults = faults
        self._clock = clock
        self._config = config
        self._log = log
        self._conns: dict[WsConnection, ApiConn] = {}
        self._held: UserEvent | None = None
        self._ids = itertools.count(1)
        self._changed = ChangeSignal()
        exchange.add_listener(self)

    # ------------------------------------------------------------ introspection
    @property
    def connections(self) -> list[WsConnection]:
        """Live WS-API connections."""
        return list(self._conns)

    def subscription_count(self) -> int:
        """Active user-data subscriptions across connections."""
        return sum(len(c.subscription_ids) for c in self._conns.values())

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds; re-checked on every subscription change."""
        await self._changed.wait_for(predicate, timeout_s)

    def _notify(self) -> None:
        self._changed.notify()

    # ------------------------------------------------------------ connection handling
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``/ws-api/v3``."""
        conn = await accept(
            request,
            self._faults.take_handshake_rejection(request.path),
            conn_id=next(self._ids),
            max_queue=self._config.ws_queue_max,
            opened_ms=self._clock.now_ms(),
        )
        if not isinstance(conn, WsConnection):
            return conn
        self._conns[conn] = ApiConn(conn)
        self._notify()
        try:
            await conn.run(self._on_text)
        finally:
            self._conns.pop(conn, None)
            self._notify()
        return conn.ws

    def _reply_error(self, conn: WsConnection, req_id: Any, err: ApiError) -> None:
        status = 401 if err.code in _AUTH_CODES else err.status
        conn.send(_dumps({"id": req_id, "status": status, "error": {"code": err.code, "msg": err.msg}}))

    def _on_text(self, conn: WsConnection, text: str) -> None:
        self._log.append(LoggedRequest("WS", conn.path, "", text, time_ms=self._clock.now_ms()))
        aconn = self._conns.get(conn)
        if aconn is None:
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._reply_error(conn, None, ApiError(400, -1100, "Malformed request: not valid JSON."))
            return
        if not isinstance(msg, dict):
            self._reply_error(conn, None, ApiError(400, -1100, "Malformed request: expected an object."))
            return
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", {})
        if not isinstance(params, dict):
            self._reply_error(conn, req_id, ApiError(400, -1100, "Malformed request: params must be an object."))
            return
        now = self._clock.now_ms()
        if method == "userDataStream.subscribe.signature":
            try:
                verify_ws_params(params, api_key=self._config.api_key, secret=self._config.api_secret, server_time=now)
            except ApiError as err:
                self._reply_error(conn, req_id, err)
                return
            sid = aconn.next_subscription_id
            aconn.next_subscription_id += 1
            aconn.subscription_ids.append(sid)
            conn.send(
                _dumps(
                    {
                        "id": req_id,
                        "status": 200,
                        "result": {"subscriptionId": sid},
                        "rateLimits": [
                            {
                                "rateLimitType": "REQUEST_WEIGHT",
                                "interval": "MINUTE",
                                "intervalNum": 1,
                                "limit": self._config.weight_limit_per_minute,
                                "count": 2,
                            }
                        ],
                    }
                )
            )
            self._notify()
        elif method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            if wanted is None:
                aconn.subscription_ids.clear()
            elif wanted in aconn.subscription_ids:
                aconn.subscription_ids.remove(wanted)
            else:
                self._reply_error(conn, req_id, ApiError(400, -2035, "Subscription not found."))
                return
            conn.send(_dumps({"id": req_id, "status": 200, "result": {}}))
            self._notify()
        elif method == "session.subscriptions":
            result = [{"subscriptionId": s} for s in aconn.subscription_ids]
            conn.send(_dumps({"id": req_id, "status": 200, "result": result}))
        elif method == "ping":
            conn.send(_dumps({"id": req_id, "status": 200, "result": {}}))
        elif method == "time":
            conn.send(_dumps({"id": req_id, "status": 200, "result": {"serverTime": now}}))
        else:
            self._reply_error(conn, req_id, ApiError(400, -1100, f"Unsupported method: {method!r}."))

    # ------------------------------------------------------------ venue events
    def on_public_trade(self, symbol: str, trade: PublicTrade) -> None:
        """Public data does not go to the WS API."""

    def on_book_changed(self, symbol: str) -> None:
        """Public data does not go to the WS API."""

    def on_user_events(self, events: list[UserEvent]) -> None:
        """Forward user events, applying the duplicate / out-of-order report faults."""
        if not any(c.subscription_ids for c in self._conns.values()):
            self._held = None
            return
        for ev in events:
            if ev.kind != "execution":
                self._send(ev.payload)
                continue
            if self._held is None and self._faults.take_exec_swap():
                self._held = ev
                continue
            self._send(ev.payload)
            if self._held is not None:
                held, self._held = self._held, None
                self._send(held.payload)
            if ev.exec_type == "TRADE" and self._faults.take_exec_duplicate():
                self._send(ev.payload)

    def _send(self, payload: dict[str, Any]) -> None:
        for aconn in self._conns.values():
            for sid in aconn.subscription_ids:
                aconn.conn.send(_dumps({"subscriptionId": sid, "event": payload}))

    # ------------------------------------------------------------ fault actions
    async def drop(self, *, code: int | None = 1001) -> int:
        """Close every WS-API connection with ``code`` (``None``: abort → 1006)."""
        targets = list(self._conns.values())
        if code is None:
            for a in targets:
                a.conn.abort()
        else:
            await asyncio.gather(*(a.conn.close(code, "going away") for a in targets))
        return len(targets)

    def stall(self, *, blackhole: bool = False) -> int:
        """Stop sending on every WS-API connection (``blackhole``: also stop ponging)."""
        for a in self._conns.values():
            a.conn.stalled = True
            a.conn.blackhole = blackhole
        return len(self._conns)

    def terminate_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every subscription and end them."""
        now = self._clock.now_ms()
        count = 0
        for aconn in self._conns.values():
            for sid in aconn.subscription_ids:
                aconn.conn.send(_dumps({"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": now}}))
                count += 1
            aconn.subscription_ids.clear()
        self._notify()
        return count

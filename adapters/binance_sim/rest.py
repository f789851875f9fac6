"""REST API (``/api/v3/*``): aiohttp routes, a middleware for logging/limits/faults, errors.

Every response carries ``X-MBX-USED-WEIGHT-1M``. Unknown paths answer
``400 {"code":-1020}`` (ccxt: BadRequest) instead of aiohttp's text 404, which ccxt would
turn into a retryable ExchangeNotAvailable that hides the problem (§3.4).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from adapters.binance_sim import errors, list_payloads, payloads
from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig
from adapters.binance_sim.decimals import fmt
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.exchange import SimExchange
from adapters.binance_sim.faults import FaultPlan, RestFault
from adapters.binance_sim.history import RecordedHistory
from adapters.binance_sim.market_data import TIMEFRAMES_MS
from adapters.binance_sim.order_lists import CanceledList
from adapters.binance_sim.order_params import parse_new_order
from adapters.binance_sim.ratelimit import RateLimiter
from adapters.binance_sim.requestlog import LoggedRequest, RequestLog
from adapters.binance_sim.signing import verify_rest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PARAMS = web.RequestKey("binance_params", dict)
_RAW_BODY = web.RequestKey("binance_raw_body", str)
_LOSE = web.RequestKey("binance_lose_response", RestFault)
_WS_PREFIXES = ("/stream", "/ws")


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=lambda o: json.dumps(o, separators=(",", ":")))


def _int(
    params: Mapping[str, str], name: str, *, default: int | None = None, lo: int | None = None, hi: int | None = None
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.illegal(name) from None
    if lo is not None and value < lo:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{lo}'.")
    if hi is not None and value > hi:
        value = hi  # Binance caps over-large limits rather than refusing them
    return value


def _canceled_list(done: CanceledList) -> dict[str, Any]:
    return list_payloads.list_result(
        done.order_list, (payloads.cancel_result(o, done.cancel_client_id, done.time_ms) for o in done.canceled)
    )


class RestApi:
    """Route table and handlers of the REST API.

    ``history`` (symbol -> recorded history) answers the history endpoints (klines,
    aggTrades, historicalTrades) of the symbols it has, instead of their live market.
    """

    def __init__(
        self,
        exchange: SimExchange,
        faults: FaultPlan,
        limiter: RateLimiter,
        clock: SimClock,
        config: SimulatorConfig,
        log: RequestLog,
        history: Mapping[str, RecordedHistory] | None = None,
    ) -> None:
        self._ex = exchange
        self._faults = faults
        self._limiter = limiter
        self._clock = clock
        self._config = config
        self._log = log
        self._history: Mapping[str, RecordedHistory] = history or {}

    def add_routes(self, app: web.Application) -> None:
        """Register every REST route (call after websocket routes: the catch-all goes last)."""
        r = app.router
        get, post, delete = r.add_get, r.add_post, r.add_delete
        get("/api/v3/ping", self.ping, allow_head=False)
        get("/api/v3/time", self.time, allow_head=False)
        get("/api/v3/exchangeInfo", self.exchange_info, allow_head=False)
        get("/api/v3/depth", self.depth, allow_head=False)
        get("/api/v3/trades", self.trades, allow_head=False)
        get("/api/v3/aggTrades", self.agg_trades, allow_head=False)
        get("/api/v3/historicalTrades", self.historical_trades, allow_head=False)
        get("/api/v3/klines", self.klines, allow_head=False)
        get("/api/v3/avgPrice", self.avg_price, allow_head=False)
        get("/api/v3/ticker/24hr", self.ticker_24hr, allow_head=False)
        get("/api/v3/ticker/price", self.ticker_price, allow_head=False)
        get("/api/v3/ticker/bookTicker", self.book_ticker, allow_head=False)
        get("/api/v3/account", self.account, allow_head=False)
        post("/api/v3/order", self.new_order)
        post("/api/v3/order/test", self.test_order)
        get("/api/v3/order", self.get_order, allow_head=False)
        delete("/api/v3/order", self.cancel_order)
        get("/api/v3/openOrders", self.open_orders, allow_head=False)
        delete("/api/v3/openOrders", self.cancel_open_orders)
        get("/api/v3/allOrders", self.all_orders, allow_head=False)
        get("/api/v3/myTrades", self.my_trades, allow_head=False)
        post("/api/v3/orderList/oco", self.new_oco)
        post("/api/v3/orderList/oto", self.new_oto)
        post("/api/v3/orderList/otoco", self.new_otoco)
        post("/api/v3/order/oco", self.new_legacy_oco)
        get("/api/v3/orderList", self.get_order_list, allow_head=False)
        delete("/api/v3/orderList", self.cancel_order_list)
        get("/api/v3/openOrderList", self.open_order_lists, allow_head=False)
        get("/api/v3/allOrderList", self.all_order_lists, allow_head=False)
        r.add_route("*", "/{tail:.*}", self.unsupported)

    # ------------------------------------------------------------ middleware
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Log, then apply ban / injected faults / weight limits, then render ApiError."""
        raw_body = await request.text() if request.body_exists else ""
        # The *raw* query: aiohttp's ``query_string`` is percent-decoded, which would break
        # signature checks on anything ccxt had to encode.
        raw_query = request.rel_url.raw_query_string
        now = self._clock.now_ms()
        headers = {k: v for k, v in request.headers.items()}
        entry = LoggedRequest(request.method, request.path, raw_query, raw_body, headers, now)
        self._log.append(entry)
        if request.path.startswith(_WS_PREFIXES):
            return await handler(request)
        params: dict[str, str] = dict(parse_qsl(raw_query, keep_blank_values=True))
        if raw_body:
            params.update(parse_qsl(raw_body, keep_blank_values=True))
        request[_PARAMS] = params
        request[_RAW_BODY] = raw_body
        try:
            banned = self._limiter.banned(now)
            if banned is not None:
                raise banned
            for fault in self._faults.take_rest_faults(request.method, request.path):
                if fault.kind == "delay" and fault.delay_s > 0:
                    await asyncio.sleep(fault.delay_s)
                elif fault.kind in ("error", "rate_limit"):
                    entry.status, entry.error_code = fault.status, fault.code
                    return self._fault_response(fault, now)
                elif fault.kind == "lose_response":
                    request[_LOSE] = fault
            limited = self._limiter.admit(request.method, request.path, params, now)
            if limited is not None:
                raise limited
            response = await handler(request)
        except ApiError as err:
            response = _json(err.body(), status=err.status, headers=err.headers)
            entry.error_code = err.code
        entry.status = response.status
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self._limiter.used_weight(now))
        return response

    def _fault_response(self, fault: RestFault, now: int) -> web.Response:
        headers: dict[str, str] = {}
        if fault.retry_after_s is not None:
            headers["Retry-After"] = str(fault.retry_after_s)
        weight = fault.used_weight if fault.used_weight is not None else self._limiter.used_weight(now)
        headers["X-MBX-USED-WEIGHT-1M"] = str(weight)
        if fault.kind == "rate_limit":
            body = {
                "code": -1003,
                "msg": "Too much request weight used; current limit is "
                f"{self._config.weight_limit_per_minute} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
            }
            return _json(body, status=fault.status, headers=headers)
        if fault.code is not None:
            return _json({"code": fault.code, "msg": fault.msg}, status=fault.status, headers=headers)
        return web.Response(status=fault.status, text=fault.text, headers=headers)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _params(request: web.Request) -> dict[str, str]:
        return request[_PARAMS]

    def _signed(self, request: web.Request) -> dict[str, str]:
        params = request[_PARAMS]
        verify_rest(
            raw_query=request.rel_url.raw_query_string,
            raw_body=request[_RAW_BODY],
            params=params,
            api_key_header=request.headers.get("X-MBX-APIKEY"),
            api_key=self._config.api_key,
            secret=self._config.api_secret,
            server_time=self._clock.now_ms(),
        )
        return params

    def _symbol_list(self, params: Mapping[str, str]) -> list[str] | None:
        if params.get("symbol"):
            return [self._ex.state(params["symbol"]).cfg.symbol]
        raw = params.get("symbols")
        if not raw:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.")
        return [self._ex.state(n).cfg.symbol for n in names]

    # ------------------------------------------------------------ public endpoints
    async def ping(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ping``."""
        return _json({})

    async def time(self, request: web.Request) -> web.Response:
        """``GET /api/v3/time``."""
        return _json({"serverTime": self._clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """``GET /api/v3/exchangeInfo`` (optionally filtered by ``symbol``/``symbols``)."""
        wanted = self._symbol_list(self._params(request))
        symbols = [self._ex.configs[n] for n in wanted] if wanted else list(self._ex.configs.values())
        return _json(
            payloads.exchange_info(
                symbols, self._clock.now_ms(), self._config.weight_limit_per_minute, self._config.order_limit_per_10s
            )
        )

    async def depth(self, request: web.Request) -> web.Response:
        """``GET /api/v3/depth``: the book at ``lastUpdateId`` (no ``T``/``E`` on purpose)."""
        params = self._params(request)
        st = self._ex.state(params.get("symbol"))
        limit = _int(params, "limit", default=100, lo=1, hi=5000)
        assert limit is not None
        update_id, bids, asks = st.book.snapshot(limit)
        update_id -= self._faults.take_stale_snapshot()
        return _json(payloads.depth_snapshot(update_id, bids, asks))

    async def trades(self, request: web.Request) -> web.Response:
        """``GET /api/v3/trades`` (recent public trades)."""
        params = self._params(request)
        st = self._ex.state(params.get("symbol"))
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        return _json([payloads.recent_trade(t) for t in list(st.stats.recent)[-limit:]])

    async def agg_trades(self, request: web.Request) -> web.Response:
        """``GET /api/v3/aggTrades`` (recorded history first: :mod:`adapters.binance_sim.history`)."""
        params = self._params(request)
        st = self._ex.state(params.get("symbol"))
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        from_id = _int(params, "fromId", lo=0)
        start_ms = _int(params, "startTime", lo=0)
        end_ms = _int(params, "endTime", lo=0)
        hist = self._history.get(st.cfg.symbol)
        if hist is not None and hist.serves_trades:
            trades = hist.agg_trades(from_id=from_id, start_ms=start_ms, end_ms=end_ms, limit=limit)
        else:
            trades = st.stats.agg_trades(from_id=from_id, start_ms=start_ms, end_ms=end_ms, limit=limit)
        return _json([payloads.agg_trade(t) for t in trades])

    async def historical_trades(self, request: web.Request) -> web.Response:
        """``GET /api/v3/historicalTrades`` (``fromId``, ``limit``): recorded trades, else recent ones."""
        params = self._params(request)
        st = self._ex.state(params.get("symbol"))
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        from_id = _int(params, "fromId", lo=0)
        hist = self._history.get(st.cfg.symbol)
        if hist is not None and hist.serves_trades:
            trades = hist.historical_trades(from_id=from_id, limit=limit)
        else:
            recent = list(st.stats.recent)
            trades = [t for t in recent if t.trade_id >= from_id][:limit] if from_id is not None else recent[-limit:]
        return _json([payloads.recent_trade(t) for t in trades])

    async def klines(self, request: web.Request) -> web.Response:
        """``GET /api/v3/klines``."""
        params = self._params(request)
        st = self._ex.state(params.get("symbol"))
        interval = params.get("interval")
        if not interval:
            raise errors.mandatory("interval")
        if interval not in TIMEFRAMES_MS:
            raise ApiError(400, -1120, "Invalid interval.")
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        start_ms = _int(params, "startTime", lo=0)
        end_ms = _int(params, "endTime", lo=0)
        hist = self._history.get(st.cfg.symbol)
        if hist is not None and hist.serves_klines(interval):
            candles = hist.klines(interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
        else:
            candles = st.stats.klines(
                interval, start_ms=start_ms, end_ms=end_ms, limit=limit, now_ms=self._clock.now_ms()
            )
        return _json([payloads.kline_row(c, interval) for c in candles])

    async def avg_price(self, request: web.Request) -> web.Response:
        """``GET /api/v3/avgPrice`` (last price, not a true 5-minute average)."""
        st = self._ex.state(self._params(request).get("symbol"))
        return _json({"mins": 5, "price": fmt(st.stats.last_price), "closeTime": self._clock.now_ms()})

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/24hr``: an object for ``symbol``, an array otherwise."""
        params = self._params(request)
        now = self._clock.now_ms()
        wanted = self._symbol_list(params)

        def one(name: str) -> dict[str, Any]:
            st = self._ex.symbols[name]
            return payloads.ticker_24h(name, st.stats.rolling_24h(now), st.book.best_bid(), st.book.best_ask())

        if params.get("symbol"):
            assert wanted is not None
            return _json(one(wanted[0]))
        return _json([one(n) for n in (wanted or list(self._ex.symbols))])

    async def ticker_price(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/price``."""
        params = self._params(request)
        wanted = self._symbol_list(params)
        rows = [
            {"symbol": n, "price": fmt(self._ex.symbols[n].stats.last_price)}
            for n in (wanted or list(self._ex.symbols))
        ]
        return _json(rows[0] if params.get("symbol") else rows)

    async def book_ticker(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/bookTicker``."""
        params = self._params(request)
        wanted = self._symbol_list(params)
        rows = []
        for n in wanted or list(self._ex.symbols):
            book = self._ex.symbols[n].book
            bt = payloads.ws_book_ticker(n, book.update_id, book.best_bid(), book.best_ask())
            rows.append({"symbol": n, "bidPrice": bt["b"], "bidQty": bt["B"], "askPrice": bt["a"], "askQty": bt["A"]})
        return _json(rows[0] if params.get("symbol") else rows)

    async def unsupported(self, request: web.Request) -> web.Response:
        """Catch-all: ``400 {"code":-1020}``."""
        raise errors.unsupported()

    # ------------------------------------------------------------ signed endpoints
    async def account(self, request: web.Request) -> web.Response:
        """``GET /api/v3/account``."""
        self._signed(request)
        acct = self._ex.account
        return _json(payloads.account(acct, acct.update_time_ms or self._clock.now_ms()))

    async def new_order(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v3/order``; may apply the order and then lose the reply (fault 19)."""
        params = self._signed(request)
        now = self._clock.now_ms()
        req = parse_new_order(params, self._ex.configs)
        limited = self._limiter.admit_order(now)
        if limited is not None:
            limited.headers["X-MBX-ORDER-COUNT-10S"] = str(self._limiter.order_count(now))
            raise limited
        order, fills, transact = self._ex.place_order(req)
        body = payloads.order_result(order, fills, req.resp_type, transact)
        await self._maybe_lose_reply(request)
        return _json(body, headers={"X-MBX-ORDER-COUNT-10S": str(self._limiter.order_count(now))})

    @staticmethod
    async def _maybe_lose_reply(request: web.Request) -> None:
        """Lose the reply of an applied order entry when a ``lose_response`` fault matched it."""
        lose = request.get(_LOSE)
        if lose is not None:
            if lose.lose_mode == "abort":
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing left to answer on; aiohttp ends the handler quietly
            await asyncio.sleep(lose.delay_s)

    async def test_order(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order/test``: validation only."""
        params = self._signed(request)
        self._ex.validate(parse_new_order(params, self._ex.configs))
        return _json({})

    def _lookup_params(self, params: Mapping[str, str]) -> tuple[int | None, str | None]:
        return _int(params, "orderId", lo=0), params.get("origClientOrderId") or None

    async def get_order(self, request: web.Request) -> web.Response:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        params = self._signed(request)
        order_id, client_id = self._lookup_params(params)
        return _json(payloads.order_query(self._ex.query_order(params.get("symbol"), order_id, client_id)))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/order``."""
        params = self._signed(request)
        order_id, client_id = self._lookup_params(params)
        order, cancel_id, transact = self._ex.cancel_order(
            params.get("symbol"), order_id, client_id, params.get("newClientOrderId") or None
        )
        return _json(payloads.cancel_result(order, cancel_id, transact))

    def _admit_orders(self, count: int) -> str:
        """Count ``count`` new orders against the 10 s limit; the ``X-MBX-ORDER-COUNT-10S`` value."""
        now = self._clock.now_ms()
        for _ in range(count):
            limited = self._limiter.admit_order(now)
            if limited is not None:
                limited.headers["X-MBX-ORDER-COUNT-10S"] = str(self._limiter.order_count(now))
                raise limited
        return str(self._limiter.order_count(now))

    async def _new_list(
        self, request: web.Request, place: Callable[[Mapping[str, str]], dict[str, Any]], legs: int
    ) -> web.Response:
        params = self._signed(request)
        count = self._admit_orders(legs)
        body = place(params)
        await self._maybe_lose_reply(request)  # the list is placed, its answer may be lost
        return _json(body, headers={"X-MBX-ORDER-COUNT-10S": count})

    async def new_oco(self, request: web.Request) -> web.Response:
        """``POST /api/v3/orderList/oco`` (counts as 2 orders)."""
        return await self._new_list(request, self._ex.lists.place_oco, 2)

    async def new_legacy_oco(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order/oco``, the deprecated OCO form (counts as 2 orders)."""
        return await self._new_list(request, self._ex.lists.place_legacy_oco, 2)

    async def new_oto(self, request: web.Request) -> web.Response:
        """``POST /api/v3/orderList/oto`` (counts as 2 orders)."""
        return await self._new_list(request, self._ex.lists.place_oto, 2)

    async def new_otoco(self, request: web.Request) -> web.Response:
        """``POST /api/v3/orderList/otoco`` (counts as 3 orders)."""
        return await self._new_list(request, self._ex.lists.place_otoco, 3)

    async def get_order_list(self, request: web.Request) -> web.Response:
        """``GET /api/v3/orderList`` by ``orderListId`` or ``origClientOrderId``."""
        params = self._signed(request)
        found = self._ex.lists.query(_int(params, "orderListId", lo=0), params.get("origClientOrderId") or None)
        return _json(list_payloads.list_summary(found))

    async def cancel_order_list(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/orderList``: every open order of the list, one cancel id."""
        params = self._signed(request)
        done = self._ex.lists.cancel(
            params.get("symbol"),
            _int(params, "orderListId", lo=0),
            params.get("listClientOrderId") or None,
            params.get("newClientOrderId") or None,
        )
        return _json(_canceled_list(done))

    async def open_order_lists(self, request: web.Request) -> web.Response:
        """``GET /api/v3/openOrderList``."""
        self._signed(request)
        return _json([list_payloads.list_summary(lst) for lst in self._ex.lists.store.open_lists()])

    async def all_order_lists(self, request: web.Request) -> web.Response:
        """``GET /api/v3/allOrderList``."""
        params = self._signed(request)
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        lists = self._ex.lists.all_lists(
            from_id=_int(params, "fromId", lo=0),
            start_ms=_int(params, "startTime", lo=0),
            end_ms=_int(params, "endTime", lo=0),
            limit=limit,
        )
        return _json([list_payloads.list_summary(lst) for lst in lists])

    async def open_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/openOrders`` (all symbols without ``symbol``)."""
        params = self._signed(request)
        return _json([payloads.order_query(o) for o in self._ex.open_orders(params.get("symbol") or None)])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/openOrders``."""
        params = self._signed(request)
        out: list[dict[str, Any]] = []
        for item in self._ex.cancel_all(params.get("symbol")):
            if isinstance(item, CanceledList):
                out.append(_canceled_list(item))
            else:
                order, cancel_id, transact = item
                out.append(payloads.cancel_result(order, cancel_id, transact))
        return _json(out)

    async def all_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/allOrders``."""
        params = self._signed(request)
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        orders = self._ex.all_orders(
            params.get("symbol"),
            order_id=_int(params, "orderId", lo=0),
            start_ms=_int(params, "startTime", lo=0),
            end_ms=_int(params, "endTime", lo=0),
            limit=limit,
        )
        return _json([payloads.order_query(o) for o in orders])

    async def my_trades(self, request: web.Request) -> web.Response:
        """``GET /api/v3/myTrades``."""
        params = self._signed(request)
        limit = _int(params, "limit", default=500, lo=1, hi=1000)
        assert limit is not None
        fills = self._ex.my_trades(
            params.get("symbol"),
            order_id=_int(params, "orderId", lo=0),
            from_id=_int(params, "fromId", lo=0),
            start_ms=_int(params, "startTime", lo=0),
            end_ms=_int(params, "endTime", lo=0),
            limit=limit,
        )
        return _json([payloads.my_trade(f) for f in fills])

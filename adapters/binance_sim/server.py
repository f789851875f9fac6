"""The simulator process: one aiohttp server on 127.0.0.1 serving REST, market streams and WS API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from adapters.binance_sim import ccxt_support
from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig
from adapters.binance_sim.exchange import SimExchange
from adapters.binance_sim.faults import FaultPlan
from adapters.binance_sim.history import RecordedHistory, load_history
from adapters.binance_sim.market_driver import MarketDriver, make_driver
from adapters.binance_sim.market_ws import MarketStreamHub
from adapters.binance_sim.ratelimit import RateLimiter
from adapters.binance_sim.requestlog import RequestLog
from adapters.binance_sim.rest import RestApi
from adapters.binance_sim.ws_api import UserStreamHub

log = logging.getLogger(__name__)
#: How often the periodic-drop task looks at its knob while drops are off.
_CHAOS_IDLE_S = 0.1


class BinanceSimulator:
    """A Binance SPOT look-alike that the unchanged ccxt client works against.

    Typical use::

        sim = BinanceSimulator(SimulatorConfig())
        await sim.start()                       # binds 127.0.0.1:<ephemeral>
        ex = ccxt.pro.binance(sim.ccxt_config())
        ...
        await ex.close(); await sim.stop()

    ``sim.faults`` is the run-time fault plan; the ``drop_*``/``stall_*``/
    ``terminate_user_streams`` methods act on live connections; ``sim.requests`` logs what
    clients sent.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.faults = FaultPlan.from_config(self.config.faults)
        self.clock = SimClock(self.faults)
        self.requests = RequestLog(self.config.request_log_max)
        self.exchange = SimExchange(self.config, self.clock)
        self.limiter = RateLimiter(
            weight_limit=self.config.weight_limit_per_minute,
            order_limit_10s=self.config.order_limit_per_10s,
            ban_after_429s=self.config.ban_after_429s,
            ban_seconds=self.config.ban_seconds,
            faults=self.faults,
        )
        self.market_streams = MarketStreamHub(self.exchange, self.faults, self.clock, self.config, self.requests)
        self.user_streams = UserStreamHub(self.exchange, self.faults, self.clock, self.config, self.requests)
        #: Recorded history per symbol (``config.history``), read before the server listens.
        self.history: dict[str, RecordedHistory] = load_history(self.config.history)
        self.rest = RestApi(
            self.exchange, self.faults, self.limiter, self.clock, self.config, self.requests, self.history
        )
        self.driver: MarketDriver = make_driver(self.exchange, self.config.market)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=1 << 20)
        app.router.add_get("/ws-api/v3", self.user_streams.handle, allow_head=False)
        for path in ("/stream/ws", "/stream/ws/{label:.*}", "/ws", "/ws/{label:.*}"):
            app.router.add_get(path, self.market_streams.handle, allow_head=False)
        self.rest.add_routes(app)
        return app

    async def start(self) -> None:
        """Build the market, bind ``config.host:config.port`` (0 = ephemeral) and start driving."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self.driver.prepare()
        runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=self.config.shutdown_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, reuse_address=True)
        await site.start()
        self._runner, self._site = runner, site
        self._port = int(runner.addresses[0][1])
        self._tasks = [
            asyncio.create_task(self.market_streams.run(), name="binance-sim-market-streams"),
            asyncio.create_task(self._chaos_drops(), name="binance-sim-chaos"),
        ]
        self.driver.start()
        log.info("binance simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop driving, drop every connection and release the port."""
        await self.driver.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in self.market_streams.connections + self.user_streams.connections:
            conn.abort()
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BinanceSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def suspend_listener(self, *, drop_connections: bool = True) -> None:
        """Stop accepting connections ("port down"); by default also cut the existing ones."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if drop_connections:
            for conn in self.market_streams.connections + self.user_streams.connections:
                conn.abort()
            server = self._runner.server if self._runner is not None else None
            if server is not None:
                for handler in list(server.connections):
                    handler.force_close()

    async def resume_listener(self) -> None:
        """Listen again on the same port after :meth:`suspend_listener`."""
        if self._runner is None or self._site is not None:
            return
        site = web.TCPSite(self._runner, self.config.host, self.port, reuse_address=True)
        await site.start()
        self._site = site

    # ------------------------------------------------------------------ addresses and ccxt
    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def host_port(self) -> str:
        """``host:port`` of the simulator."""
        return f"{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host_port}"

    @property
    def ws_url(self) -> str:
        """Market-stream base URL (ccxt appends ``/<n>``)."""
        return f"ws://{self.host_port}/stream/ws"

    @property
    def ws_api_url(self) -> str:
        """WebSocket API URL."""
        return f"ws://{self.host_port}/ws-api/v3"

    def ccxt_config(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        *,
        enable_rate_limit: bool = True,
        keep_alive_ms: int = 10_000,
        timeout_ms: int = 10_000,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """ccxt constructor dict pointing every URL at this simulator (credentials default to the config's)."""
        return ccxt_support.ccxt_config(
            self.host_port,
            self.config.api_key if api_key is None else api_key,
            self.config.api_secret if secret is None else secret,
            enable_rate_limit=enable_rate_limit,
            keep_alive_ms=keep_alive_ms,
            timeout_ms=timeout_ms,
            options=options,
        )

    def point_ccxt_at(self, exchange: Any) -> None:
        """Rewrite all ``exchange.urls['api']`` strings of a ccxt binance instance to this simulator."""
        ccxt_support.point_ccxt_at(exchange, self.host_port)

    # ------------------------------------------------------------------ market control
    def inject_trade(
        self,
        symbol: str,
        price: Decimal | str,
        qty: Decimal | str,
        taker_side: str = "SELL",
        *,
        rebuild_book: bool = True,
    ) -> None:
        """Print a public trade now (fills resting user orders it reaches); optionally re-centre the book."""
        self.exchange.market_print(symbol, Decimal(price), Decimal(qty), taker_side.upper())
        if rebuild_book:
            self.driver.rebuild_book(symbol)

    def pause_market(self) -> None:
        """Stop the market driver's prints."""
        self.driver.pause()

    def resume_market(self) -> None:
        """Resume the market driver's prints."""
        self.driver.resume()

    def deposit(self, asset: str, amount: Decimal | str, *, with_position: bool = True) -> None:
        """Credit ``asset``; emits ``balanceUpdate`` (+ ``outboundAccountPosition`` unless disabled)."""
        self.exchange.deposit(asset, Decimal(amount), with_position=with_position)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}``."""
        return {a: (b.free, b.locked) for a, b in self.exchange.account.snapshot()}

    def flush_depth(self) -> None:
        """Publish pending depth deltas now instead of at the next 100 ms tick."""
        self.market_streams.flush_depth_now()

    # ------------------------------------------------------------------ connection faults
    async def drop_market_connections(self, *, code: int | None = 1001, stream_contains: str | None = None) -> int:
        """Close market sockets (optionally only those with a matching stream) with ``code``;
        ``code=None`` aborts the TCP connection (client sees 1006). Returns how many."""
        return await self.market_streams.drop(code=code, stream_contains=stream_contains)

    async def drop_user_connections(self, *, code: int | None = 1001) -> int:
        """Close WS-API sockets with ``code`` (``None``: abort → 1006). Returns how many."""
        return await self.user_streams.drop(code=code)

    def stall_market_connections(self, *, stream_contains: str | None = None, blackhole: bool = False) -> int:
        """Silently stop sending on market sockets (``blackhole``: stop ponging too)."""
        return self.market_streams.stall(stream_contains=stream_contains, blackhole=blackhole)

    def stall_user_connections(self, *, blackhole: bool = False) -> int:
        """Silently stop sending on WS-API sockets (``blackhole``: stop ponging too)."""
        return self.user_streams.stall(blackhole=blackhole)

    def terminate_user_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every user-data subscription and end it."""
        return self.user_streams.terminate_streams()

    async def wait_for_stream(self, stream: str, *, count: int = 1, timeout_s: float = 5.0) -> None:
        """Wait until ``count`` connections subscribe ``stream`` (e.g. ``btcusdt@trade``)."""
        await self.market_streams.wait_for(lambda: self.market_streams.subscribers(stream) >= count, timeout_s)

    async def wait_for_user_subscription(self, *, count: int = 1, timeout_s: float = 5.0) -> None:
        """Wait until ``count`` user-data subscriptions are active."""
        await self.user_streams.wait_for(lambda: self.user_streams.subscription_count() >= count, timeout_s)

    async def _chaos_drops(self) -> None:
        """Periodic socket drops every ``faults.ws_drop_interval_s`` (0: none).

        The knob is read on every turn, so ``faults.set(ws_drop_interval_s=...)`` starts,
        changes and stops the drops at run time.
        """
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            interval = self.faults.ws_drop_interval_s
            if interval <= 0:
                last = loop.time()
                await asyncio.sleep(_CHAOS_IDLE_S)
                continue
            left = last + max(0.05, interval) - loop.time()
            if left > 0:
                await asyncio.sleep(min(left, _CHAOS_IDLE_S))
                continue
            last = loop.time()
            abort = self.faults.rng.random() < self.faults.ws_drop_abort_ratio
            code = None if abort else 1001
            await self.drop_market_connections(code=code)
            await self.drop_user_connections(code=code)


async def run_simulator(config: SimulatorConfig, *, on_ready: Callable[[BinanceSimulator], None] | None = None) -> None:
    """Run a simulator until cancelled (what ``aaiti sim`` wires up); ``on_ready`` sees it bound."""
    sim = BinanceSimulator(config)
    await sim.start()
    try:
        if on_ready is not None:
            on_ready(sim)
        await asyncio.Event().wait()
    finally:
        await sim.stop()


__all__ = ["BinanceSimulator", "run_simulator"]

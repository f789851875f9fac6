"""A live venue through ccxt / ccxt.pro, implementing ``actors.ports.venue.Venue``.

:class:`CcxtVenue` is a facade over parts with one job each:

- :mod:`adapters.ccxt_venue.rest` — REST calls under circuit breakers (``rest`` for reads and
  cancels, a latching ``orders`` breaker for submission), read retries, rate-limit and ban
  pauses, time resync after -1021, and (:mod:`adapters.ccxt_venue.auth_refusal`) the pause
  after the venue refused our credentials;
- :mod:`adapters.ccxt_venue.order_path` — submit, cancel, query and the REST reads, with
  ccxt's errors mapped to ``OrderRejected`` / ``VenueUnavailable`` / ``OrderNotFound``
  (a submit whose outcome is unknown is never resent: the caller resolves it by query);
  refused credentials → ``VenueAuthenticationError`` (reads, cancels), and the update
  streams end with it once, when the venue starts refusing them;
- :mod:`adapters.ccxt_venue.native_orders` and :mod:`adapters.ccxt_venue.list_path` — Binance
  spot's conditional types, trailing deltas, icebergs and OCO / OTO lists
  (``actors.ports.capabilities.NativeOrders``);
- :mod:`adapters.ccxt_venue.order_tracking` — what was last handed out per order, the
  regress filter and fill de-duplication;
- :mod:`adapters.ccxt_venue.user_stream` — the user-data engine behind :meth:`CcxtVenue.updates`
  (ccxt.pro ``watch_orders`` / ``watch_my_trades``, REST polls across gaps and stalls).

``stats()`` returns a frozen :class:`CcxtVenueStats` (breakers, reconnects by stream,
malformed, polls, last stream message age, …) for metrics; ``connection_health()`` the
breakers and reconnects as ``actors.ports.capabilities.ReportsConnectionHealth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog

from actors.kernel import clock as kernel_clock
from actors.kernel.clock import Clock, WallClock
from actors.model.orders import Balance, Fill, OrderListRequest, OrderRequest, VenueOrder
from actors.ports.capabilities import ConnectionHealth, NativeSupport
from actors.ports.venue import VenueAuthenticationError, VenueUpdate
from adapters.ccxt_venue import native_orders
from adapters.ccxt_venue.client import credential_source
from adapters.ccxt_venue.fanout import UpdateFanout
from adapters.ccxt_venue.list_path import OrderListPath
from adapters.ccxt_venue.order_path import OrderPath
from adapters.ccxt_venue.order_tracking import OrderTracker
from adapters.ccxt_venue.rest import RestGateway
from adapters.ccxt_venue.session import VenueSession
from adapters.ccxt_venue.shared import breaker_view, open_exchange, release_exchange
from adapters.ccxt_venue.user_stream import UserStreamEngine, user_ws_filter
from adapters.circuit_breaker import BreakerSnapshot, CircuitBreaker
from config.schema.trading import CcxtVenueSection


class CcxtVenueStats(msgspec.Struct, frozen=True, kw_only=True):
    """A point-in-time copy of the adapter's counters (what metrics read)."""

    name: str
    started: bool
    breakers: tuple[BreakerSnapshot, ...]
    stream_connected: bool
    reconnects: dict[str, int]
    stalls: int
    last_stream_message_age_s: float | None
    malformed: int
    malformed_by_reason: dict[str, int]
    polls: int
    poll_failures: int
    stale_reports: int
    duplicate_reports: int
    duplicate_fills: int
    unresolved_fills: int
    dropped_updates: int
    rate_limited: int
    bans: int
    time_resyncs: int
    subscribers: int
    credentials_refused: str | None = None
    credential_refusals: int = 0


class CcxtVenue:
    """``actors.ports.venue.Venue`` over ccxt (REST) and ccxt.pro (user-data streams).

    ``config`` is the ``venue.ccxt`` section; ``name`` the venue name stored with orders and
    fills; ``symbols`` the unified symbols traded (open orders and fills are read per
    symbol). ``exchange``: an already built ccxt.pro instance to use (e.g. shared with the
    market-data source; not closed by :meth:`close`); by default one is built from
    ``config`` at :meth:`start`. ``environ`` overrides ``os.environ`` for credentials;
    ``clock`` is business time (where fill polls start, when an IP ban ends);
    ``monotonic`` is monotonic seconds (breakers, backoff, ages); ``rng`` seeds the jitter.
    """

    def __init__(
        self,
        config: CcxtVenueSection,
        *,
        name: str = "binance",
        symbols: Sequence[str] = (),
        exchange: Any | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = WallClock(),
        monotonic: Callable[[], float] = kernel_clock.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        log: Any = structlog.get_logger("aaiti").bind(component="ccxt_venue", venue=name)
        self._session = VenueSession(name, config, tuple(dict.fromkeys(symbols)), log, exchange=exchange)
        self._owns_exchange = exchange is None
        self._environ = environ
        self._start_lock = asyncio.Lock()
        self._fanout = UpdateFanout(config.update_buffer)
        self._tracker = OrderTracker(self._fanout.publish)
        self._rest = RestGateway(
            self._session, clock=clock, monotonic=monotonic, on_order_latched=self._resync,
            on_credentials_refused=self._credentials_refused,
        )
        self._orders = OrderPath(self._session, self._rest, self._tracker)
        self._lists = OrderListPath(self._session, self._orders, self._tracker)
        self._user_stream = UserStreamEngine(
            self._session, self._rest, self._orders, self._tracker, self._fanout,
            clock=clock, monotonic=monotonic, rng=rng or random.Random(),
        )

    def _resync(self) -> None:
        self._user_stream.request_resync()

    def _credentials_refused(self, error: VenueAuthenticationError) -> None:
        # Subscribers (the order manager) learn it from their stream and halt trading.
        self._fanout.fail_all(error)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the exchange (if not given) and load its markets (with retries). Idempotent.

        Raises ``VenueUnavailable`` when the markets cannot be loaded.
        """
        session = self._session
        async with self._start_lock:
            if session.started:
                return
            session.errors.load()
            session.closing = False
            session.credentials_source = credential_source(session.config, self._environ)
            session.exchange, self._owns_exchange = open_exchange(
                session.config, session.exchange, environ=self._environ,
                on_malformed=session.malformed.on_undecodable_frame,
            )
            ex = session.exchange
            await self._rest.read("load_markets", ex.load_markets, private=False)
            session.markets = frozenset(ex.markets or {})
            unknown = [s for s in session.symbols if s not in session.markets]
            if unknown:
                session.log.error("ccxt_venue.unknown_symbols", symbols=unknown)
            session.started = True
            self._user_stream.venue_started()
            session.log.info(
                "ccxt_venue.started",
                exchange=session.config.exchange_id,
                markets=len(session.markets),
                credentials=session.credentials_source,
                base_url=session.config.base_url or None,
            )

    async def close(self) -> None:
        """Stop the user-data engine, end update streams, close the exchange if we built it. Idempotent."""
        session = self._session
        session.closing = True
        await self._user_stream.stop()
        ex = session.exchange
        if ex is not None:
            # A shared exchange lives on: release only our user-data socket.
            await release_exchange(ex, owned=self._owns_exchange, ours=(user_ws_filter(ex),))
            if self._owns_exchange:
                session.exchange = None
        session.started = False

    @property
    def exchange(self) -> Any:
        """The underlying ccxt.pro instance (None before :meth:`start`)."""
        return self._session.exchange

    # -- stats and controls ---------------------------------------------------------------------
    def stats(self) -> CcxtVenueStats:
        """A frozen copy of the counters and breaker states."""
        session, rest, tracker, engine = self._session, self._rest, self._tracker, self._user_stream
        return CcxtVenueStats(
            name=self.name,
            started=session.started,
            breakers=rest.breaker_snapshots(),
            stream_connected=engine.connected,
            reconnects=dict(engine.reconnects),
            stalls=engine.stalls,
            last_stream_message_age_s=engine.last_message_age_s(),
            malformed=session.malformed.total,
            malformed_by_reason=dict(session.malformed.by_reason),
            polls=engine.polls,
            poll_failures=engine.poll_failures,
            stale_reports=tracker.stale,
            duplicate_reports=tracker.duplicates,
            duplicate_fills=tracker.duplicate_fills,
            unresolved_fills=tracker.unresolved_fills,
            dropped_updates=self._fanout.dropped,
            rate_limited=rest.rate_limited,
            bans=rest.bans,
            time_resyncs=rest.time_resyncs,
            subscribers=len(self._fanout),
            credentials_refused=rest.credentials.refused,
            credential_refusals=rest.credentials.refusals,
        )

    def connection_health(self) -> ConnectionHealth:
        """The breakers and the user-data stream's reconnects (``ReportsConnectionHealth``)."""
        return ConnectionHealth(
            breakers=tuple(breaker_view(s) for s in self._rest.breaker_snapshots()),
            reconnects=dict(self._user_stream.reconnects),
        )

    @property
    def rest_breaker(self) -> CircuitBreaker:
        """The breaker of reads and cancels."""
        return self._rest.rest_breaker

    @property
    def order_breaker(self) -> CircuitBreaker:
        """The (latching) breaker of order submission."""
        return self._rest.order_breaker

    @property
    def submit_expiry_s(self) -> float:
        """Seconds after an order request was sent beyond which the venue can no longer accept it.

        Binance refuses a signed request once ``recvWindow`` has passed since its timestamp
        (and tolerates a client clock up to 1 s ahead). Until then a request whose answer
        was lost may still be executed, so an order the venue does not know yet is not
        lost before this (the reconciler waits for it), plus a second of margin.
        """
        window_ms = self._session.config.recv_window_ms
        options = getattr(self._session.exchange, "options", None)
        if isinstance(options, Mapping):
            with contextlib.suppress(TypeError, ValueError):
                window_ms = int(options.get("recvWindow") or window_ms)
        return window_ms / 1000.0 + 2.0

    def reset_order_breaker(self, reason: str = "operator") -> None:
        """Close a latched order circuit (after the operator or the reconciler confirmed venue truth)."""
        self._rest.reset_order_breaker(reason)

    # -- Venue -----------------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order with our client order id. Raises OrderRejected or VenueUnavailable.

        Such a request may still be executed until :attr:`submit_expiry_s` after it was sent.
        """
        return await self._orders.submit(request)

    # -- NativeOrders ----------------------------------------------------------------------------
    def native_support(self) -> NativeSupport:
        """What the venue runs natively: on Binance spot the conditional types, trailing deltas in
        bps, icebergs and OCO / OTO lists; nothing on other exchanges (``NativeOrders``)."""
        return native_orders.native_support(self._session.config.exchange_id)

    async def submit_list(self, request: OrderListRequest) -> list[VenueOrder]:
        """Place a native OCO or OTO list; the legs' venue orders in ``request.orders`` order.

        Raises ``OrderRejected`` (nothing placed; ``UNSUPPORTED_ORDER_TYPE`` when the venue does
        not run it) or ``VenueUnavailable`` (outcome unknown: resolve each leg by query).
        """
        return await self._lists.submit_list(request)

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel by our client order id. Raises OrderNotFound or VenueUnavailable."""
        return await self._orders.cancel(client_order_id, symbol)

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by our client order id; None if the venue never saw it."""
        return await self._orders.query(client_order_id, symbol)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders of ``symbol``, or of every configured symbol (all symbols if none configured)."""
        return await self._orders.open_orders(symbol)

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Our executions with ``ts_ms >= since_ms``, oldest first (per configured symbol).

        A fill whose order cannot be resolved to our client order id now is left out and
        counted (``unresolved_fills``) — the next call finds it.
        """
        return await self._orders.fills_since(since_ms, symbol)

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset (assets at zero left out)."""
        return await self._orders.balances()

    def updates(self) -> AsyncIterator[VenueUpdate]:
        """A new subscription to order updates and fills (see :mod:`adapters.ccxt_venue.user_stream`)."""
        return self._user_stream.subscribe()

"""A live venue through ccxt / ccxt.pro, implementing ``actors.ports.venue.Venue``.

REST (orders, queries, balances)
- Orders carry OUR client order id (``params={'clientOrderId': …}`` → Binance
  ``newClientOrderId``); a cancel and a query go by that id too (``origClientOrderId``).
- Every REST call runs under a circuit breaker (``adapters.circuit_breaker``): ``rest``
  for reads and cancels, ``orders`` — latching by default — for order submission. While a
  breaker is open, calls fail fast with ``VenueUnavailable("CIRCUIT_OPEN")`` (a submit:
  ``OrderRejected("CIRCUIT_OPEN")``) and nothing is sent. The latched order breaker is
  reset by the adapter itself after a complete REST re-read of open orders and fills (the
  user-stream engine does it; or call :meth:`CcxtVenue.reset_order_breaker`): no trial
  *orders* are ever used to probe.
- 429 (``DDoSProtection``): every breaker is forced open for ``Retry-After`` (read from
  ``exchange.last_response_headers``; ``rate_limit_pause_s`` when absent) — no REST call goes
  out until it passes. 418 (IP ban): the same until the ban ends (``Retry-After`` or the
  "banned until" time in the body). 400 ``-1015`` (``RateLimitExceeded``, too many new
  orders): only the order breaker pauses.
- ``InvalidNonce`` (-1021, clock skew): ``load_time_difference()`` and one more attempt.
- Reads (queries, open orders, fills, balances, market loading) are retried on
  ``NetworkError`` with tenacity: exponential backoff with jitter, ``read_retry_attempts``
  attempts. Never retried: ``InsufficientFunds``, ``InvalidOrder``, ``OrderNotFound``,
  ``AuthenticationError``, ``BadRequest`` (nor rate limits, nor an open circuit). Orders
  and cancels are never retried (except once after a time resync: -1021 is a definite
  refusal).

Submit outcomes (ARCHITECTURE.md §4)
- definite refusal → ``OrderRejected(reason)``: INSUFFICIENT_FUNDS, WOULD_TAKE,
  INVALID_ORDER, UNKNOWN_SYMBOL, BAD_REQUEST, AUTHENTICATION, MARKET_CLOSED, REJECTED,
  CLOCK_SKEW (-1021 after a resync), PRECISION / INVALID_PRICE (checked before sending:
  ccxt would silently round the size or price), CIRCUIT_OPEN (the order breaker refused
  the call: nothing was sent);
- anything else — timeout, disconnect, 5xx, ``OperationFailed``, unknown ``ExchangeError``,
  rate limit, a malformed reply, and Binance's "Duplicate order sent." (an order with our
  id *exists*) — → ``VenueUnavailable(reason)``: the order stays in flight and the caller
  resolves it with :meth:`CcxtVenue.query`; nothing is ever resent. Such a request may
  still be executed until :attr:`CcxtVenue.submit_expiry_s` after it was sent.

User data (:meth:`CcxtVenue.updates`)
One engine task (started by the first ``updates()`` call, stopped by ``close()``) keeps
``watch_orders`` and ``watch_my_trades`` pending, each bounded by
``user_stream_idle_timeout_s``. On a stream error, a stall (idle timeout: a zombie stream
and a quiet account look the same), ``eventStreamTerminated``, or a failed subscription
(ccxt raises ``KeyError('spot')``), it closes the ws-API client (spec §6.4), polls REST —
open orders, the final state of tracked orders that left the open list, fills since the
last seen — and re-dials with exponential backoff and jitter (reset after
``reconnect_stable_s`` up). While the stream is down it keeps polling every
``poll_interval_s``; after every (re)subscription it polls once more, since events during
the gap are never replayed. Updates go to every subscriber's bounded buffer.

ccxt.pro resolves a watch only when a message arrives while it is pending: reports that
land between one ``watch_*`` returning and the next being armed sit in ccxt's cache until
the *next* message (the last fill of a burst could wait for the idle timeout). So after a
burst has been quiet for 0.25 s the engine re-reads the tail of ccxt's ``orders`` and
``myTrades`` caches; the regress filter and fill de-duplication make that idempotent.

Normalisation: reports are validated (``adapters.ccxt_venue.normalize``); a malformed one
(bad JSON, missing fields, unknown symbol, negative size, filled > size…) is logged once
with context, counted by reason and skipped. Order updates whose ``filled`` decreased, or
that repeat or regress the status at the same ``filled``, are dropped and counted; fills
are de-duplicated by ``<symbol>:<trade id>``.

``stats()`` returns a frozen :class:`CcxtVenueStats` (breakers, reconnects by stream,
malformed, polls, last stream message age, …) for metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import msgspec
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from actors.model.orders import Balance, Fill, OrderRequest, OrderStatus, OrderType, VenueOrder
from actors.ports.venue import OrderNotFound, OrderRejected, VenueUnavailable, VenueUpdate
from adapters.ccxt_venue import normalize
from adapters.ccxt_venue.backoff import Backoff
from adapters.ccxt_venue.client import (
    build_exchange,
    close_ws_clients,
    credential_source,
    install_message_guard,
    ws_clients,
)
from adapters.circuit_breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
)
from adapters.venue_updates import UpdateStream
from config.schema.trading import CcxtVenueSection

_TRACK_MAX = 10_000
_SEEN_FILLS_MAX = 50_000
_MY_TRADES_LIMIT = 1000
_MY_TRADES_PAGES = 50
_FILL_OVERLAP_MS = 5_000
_FIRST_POLL_LOOKBACK_MS = 60_000
_QUERIES_PER_POLL = 50
_LOG_FIRST = 10
_LOG_EVERY = 1000
_SETTLE_S = 0.25
_DRAIN_TAIL = 50
_BULK_RESOLVE_MIN = 5
_RECV_WINDOW_MS = 10_000  # ccxt's default for Binance
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")

_RANK: Mapping[OrderStatus, int] = MappingProxyType({
    OrderStatus.INITIALIZED: 0,
    OrderStatus.SUBMITTED: 0,
    OrderStatus.ACCEPTED: 1,
    OrderStatus.TRIGGERED: 1,
    OrderStatus.PENDING_UPDATE: 1,
    OrderStatus.PARTIALLY_FILLED: 1,
    OrderStatus.PENDING_CANCEL: 2,
    OrderStatus.DENIED: 3,
    OrderStatus.REJECTED: 3,
    OrderStatus.CANCELED: 3,
    OrderStatus.EXPIRED: 3,
    OrderStatus.FILLED: 3,
})


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


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


@dataclass(slots=True)
class _Tracked:
    """What we last emitted for an order (regress filter)."""

    symbol: str
    venue_order_id: str
    filled: Decimal
    status: OrderStatus


class _StreamStalled(Exception):
    """No user-data message within the idle timeout."""


class _StreamTerminated(Exception):
    """The session's connection or subscription ended while no watch was pending to see it."""


class CcxtVenue:
    """``actors.ports.venue.Venue`` over ccxt (REST) and ccxt.pro (user-data streams).

    ``config`` is the ``venue.ccxt`` section; ``name`` the venue name stored with orders and
    fills; ``symbols`` the unified symbols traded (open orders and fills are read per
    symbol). ``exchange``: an already built ccxt.pro instance to use (e.g. shared with the
    market-data source; not closed by :meth:`close`); by default one is built from
    ``config`` at :meth:`start`. ``environ`` overrides ``os.environ`` for credentials;
    ``clock`` is monotonic seconds (breakers, backoff, ages); ``rng`` seeds the jitter.
    """

    def __init__(
        self,
        config: CcxtVenueSection,
        *,
        name: str = "binance",
        symbols: Sequence[str] = (),
        exchange: Any | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._cfg = config
        self._symbols = tuple(dict.fromkeys(symbols))
        self._ex: Any = exchange
        self._owns_exchange = exchange is None
        self._environ = environ
        self._clock = clock
        self._rng = rng or random.Random()
        self._log: Any = structlog.get_logger("aaiti").bind(component="ccxt_venue", venue=name)
        self._markets: frozenset[str] = frozenset()
        self._started = False
        self._closing = False
        self._start_lock = asyncio.Lock()
        self._errors: Any = None
        self._rest_breaker = CircuitBreaker(
            "rest",
            BreakerPolicy(
                failure_threshold=config.breaker_failure_threshold,
                window_s=config.breaker_window_s,
                break_s=config.breaker_break_s,
                half_open_calls=config.breaker_half_open_calls,
            ),
            clock=clock,
            on_change=self._on_breaker_change,
        )
        self._order_breaker = CircuitBreaker(
            "orders",
            BreakerPolicy(
                failure_threshold=config.order_breaker_failure_threshold,
                window_s=0.0,
                break_s=config.breaker_break_s,
                half_open_calls=1,
                latching=config.order_breaker_latching,
            ),
            clock=clock,
            on_change=self._on_breaker_change,
        )
        self._tracked: OrderedDict[str, _Tracked] = OrderedDict()
        self._coid_by_vid: OrderedDict[str, str] = OrderedDict()
        self._seen_fills: OrderedDict[str, None] = OrderedDict()
        self._malformed_seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._fill_cursor: dict[str, int] = {}
        self._streams: list[UpdateStream] = []
        self._engine: asyncio.Task[None] | None = None
        self._resync_wanted = asyncio.Event()
        self._started_evt = asyncio.Event()
        self._stream_up = False
        self._last_msg: float | None = None
        self._reconnects: dict[str, int] = {"user": 0}
        self._malformed: dict[str, int] = {}
        self._stalls = 0
        self._polls = 0
        self._poll_failures = 0
        self._stale = 0
        self._duplicates = 0
        self._duplicate_fills = 0
        self._unresolved_fills = 0
        self._dropped_gone = 0
        self._rate_limited = 0
        self._bans = 0
        self._time_resyncs = 0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the exchange (if not given) and load its markets (with retries). Idempotent.

        Raises ``VenueUnavailable`` when the markets cannot be loaded.
        """
        async with self._start_lock:
            if self._started:
                return
            from ccxt.base import errors as ccxt_errors

            self._errors = ccxt_errors
            self._closing = False
            if self._ex is None:
                self._ex = build_exchange(self._cfg, environ=self._environ, on_malformed=self._on_ws_malformed)
                self._owns_exchange = True
            else:
                install_message_guard(self._ex, self._on_ws_malformed)
            await self._read("load_markets", self._ex.load_markets)
            self._markets = frozenset(self._ex.markets or {})
            unknown = [s for s in self._symbols if s not in self._markets]
            if unknown:
                self._log.error("ccxt_venue.unknown_symbols", symbols=unknown)
            self._started = True
            self._started_evt.set()
            self._log.info(
                "ccxt_venue.started",
                exchange=self._cfg.exchange_id,
                markets=len(self._markets),
                credentials=credential_source(self._cfg, self._environ),
                base_url=self._cfg.base_url or None,
            )

    async def close(self) -> None:
        """Stop the user-data engine, end update streams, close the exchange if we built it. Idempotent."""
        self._closing = True
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await engine
        for stream in self._streams:
            stream.end()
        self._streams.clear()
        self._stream_up = False
        self._started_evt.clear()
        if self._ex is not None and self._owns_exchange:
            with contextlib.suppress(Exception):
                await self._ex.close()
            self._ex = None
        elif self._ex is not None:  # shared exchange: release only our user-data socket
            await close_ws_clients(self._ex, self._user_ws_clients())
        self._started = False

    @property
    def exchange(self) -> Any:
        """The underlying ccxt.pro instance (None before :meth:`start`)."""
        return self._ex

    # -- stats and controls ---------------------------------------------------------------------
    def stats(self) -> CcxtVenueStats:
        """A frozen copy of the counters and breaker states."""
        age = None if self._last_msg is None else max(0.0, self._clock() - self._last_msg)
        return CcxtVenueStats(
            name=self.name,
            started=self._started,
            breakers=(self._rest_breaker.snapshot(), self._order_breaker.snapshot()),
            stream_connected=self._stream_up,
            reconnects=dict(self._reconnects),
            stalls=self._stalls,
            last_stream_message_age_s=age,
            malformed=sum(self._malformed.values()),
            malformed_by_reason=dict(self._malformed),
            polls=self._polls,
            poll_failures=self._poll_failures,
            stale_reports=self._stale,
            duplicate_reports=self._duplicates,
            duplicate_fills=self._duplicate_fills,
            unresolved_fills=self._unresolved_fills,
            dropped_updates=self._dropped_gone + sum(s.dropped for s in self._streams),
            rate_limited=self._rate_limited,
            bans=self._bans,
            time_resyncs=self._time_resyncs,
            subscribers=len(self._streams),
        )

    @property
    def rest_breaker(self) -> CircuitBreaker:
        """The breaker of reads and cancels."""
        return self._rest_breaker

    @property
    def order_breaker(self) -> CircuitBreaker:
        """The (latching) breaker of order submission."""
        return self._order_breaker

    @property
    def submit_expiry_s(self) -> float:
        """Seconds after an order request was sent beyond which the venue can no longer accept it.

        Binance refuses a signed request once ``recvWindow`` has passed since its timestamp
        (and tolerates a client clock up to 1 s ahead). Until then a request whose answer
        was lost may still be executed, so an order the venue does not know yet is not
        lost before this (the reconciler waits for it), plus a second of margin.
        """
        window_ms = _RECV_WINDOW_MS
        options = getattr(self._ex, "options", None)
        if isinstance(options, Mapping):
            with contextlib.suppress(TypeError, ValueError):
                window_ms = int(options.get("recvWindow") or window_ms)
        return window_ms / 1000.0 + 2.0

    def reset_order_breaker(self, reason: str = "operator") -> None:
        """Close a latched order circuit (after the operator or the reconciler confirmed venue truth)."""
        if self._order_breaker.state is not BreakerState.CLOSED:
            self._log.warning("ccxt_venue.order_breaker_reset", reason=reason)
        self._order_breaker.reset()

    def _on_breaker_change(self, snap: BreakerSnapshot) -> None:
        log = self._log.warning if snap.state is BreakerState.OPEN else self._log.info
        log(
            "ccxt_venue.breaker_state",
            breaker=snap.name,
            state=snap.state.value,
            reason=snap.reason,
            latched=snap.latched,
            trips_total=snap.trips_total,
            open_for_s=snap.open_remaining_s,
        )
        if snap.latched:
            self._resync_wanted.set()

    def _count_malformed(self, reason: str, **context: Any) -> None:
        n = self._malformed.get(reason, 0) + 1
        self._malformed[reason] = n
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            self._log.warning("ccxt_venue.malformed", reason=reason, count=n, **context)

    def _on_ws_malformed(self, url: str, excerpt: str, exc: BaseException) -> None:
        self._count_malformed("undecodable_frame", url=url, frame=excerpt, error=repr(exc)[:300])

    # -- REST plumbing ---------------------------------------------------------------------------
    def _require_started(self) -> Any:
        if not self._started or self._ex is None or self._closing:
            raise VenueUnavailable("NOT_STARTED", f"ccxt venue {self.name} is not started")
        return self._ex

    def _is(self, exc: BaseException, *names: str) -> bool:
        errors = self._errors
        return errors is not None and any(isinstance(exc, getattr(errors, n)) for n in names)

    def _retryable_read(self, exc: BaseException) -> bool:
        return self._is(exc, "NetworkError") and not self._is(
            exc, "DDoSProtection", "RateLimitExceeded", "InvalidNonce"
        )

    def _retry_after_s(self) -> float | None:
        headers = getattr(self._ex, "last_response_headers", None) or {}
        try:
            items = headers.items()
        except AttributeError:
            return None
        for key, value in items:
            if str(key).lower() == "retry-after":
                try:
                    return max(0.0, float(value))
                except (TypeError, ValueError):
                    return None
        return None

    def _on_rate_limit(self, exc: BaseException, op: str) -> str:
        """Pause every REST call after a 429/418/-1015; returns the reason code."""
        text = str(exc)
        banned = " 418 " in f" {text} " or "banned" in text.lower()
        pause = self._retry_after_s()
        if banned:
            self._bans += 1
            match = _BANNED_UNTIL.search(text)
            if pause is None and match is not None:
                pause = max(0.0, (int(match.group(1)) - _wall_ms()) / 1000.0)
            reason = "IP_BANNED"
        else:
            self._rate_limited += 1
            reason = "RATE_LIMITED"
        if pause is None:
            pause = self._cfg.rate_limit_pause_s
        # 429/418 are per IP: everything stops. A 400 -1015 (too many new orders) is the
        # order-rate limit: only order entry pauses.
        order_rate_only = self._is(exc, "RateLimitExceeded") and not self._is(exc, "DDoSProtection") and not banned
        breakers = (self._order_breaker,) if order_rate_only else (self._rest_breaker, self._order_breaker)
        for breaker in breakers:
            breaker.force_open(pause, reason.lower())
        self._log.warning("ccxt_venue.rate_limited", op=op, reason=reason, pause_s=pause, error=text[:300])
        return reason

    async def _resync_time(self, op: str) -> None:
        ex = self._ex
        self._time_resyncs += 1
        before = ex.options.get("timeDifference") if isinstance(getattr(ex, "options", None), dict) else None
        await self._rest_breaker.call(ex.load_time_difference)
        after = ex.options.get("timeDifference") if isinstance(getattr(ex, "options", None), dict) else None
        self._log.warning("ccxt_venue.time_resynced", op=op, time_difference_ms_before=before,
                          time_difference_ms=after)

    def _unavailable(self, exc: BaseException, op: str) -> VenueUnavailable:
        """The VenueUnavailable for an exception that ended a REST call (the caller handles and logs it)."""
        if isinstance(exc, CircuitOpenError):
            return VenueUnavailable("CIRCUIT_OPEN", f"{op}: {exc}")
        if isinstance(exc, VenueUnavailable):
            return exc
        if self._is(exc, "RequestTimeout"):
            reason = "TIMEOUT"
        elif self._is(exc, "DDoSProtection", "RateLimitExceeded"):
            reason = "IP_BANNED" if "banned" in str(exc).lower() else "RATE_LIMITED"
        elif self._is(exc, "OnMaintenance"):
            reason = "MAINTENANCE"
        elif self._is(exc, "InvalidNonce"):
            reason = "CLOCK_SKEW"
        elif self._is(exc, "NetworkError"):
            reason = "NETWORK"
        elif self._is(exc, "AuthenticationError"):
            reason = "AUTHENTICATION"
        elif self._is(exc, "OperationFailed"):
            reason = "VENUE_ERROR"
        elif self._is(exc, "ExchangeError"):
            reason = "EXCHANGE_ERROR"
        else:
            reason = "ADAPTER_ERROR"
        return VenueUnavailable(reason, f"{op}: {type(exc).__name__}: {str(exc)[:300]}")

    async def _read(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A REST read under the rest breaker: retried on NetworkError, resync on -1021.

        Raises ccxt's OrderNotFound / BadSymbol as they are (callers map them); anything else
        that ends the call becomes ``VenueUnavailable``.
        """
        cfg = self._cfg
        resynced = False
        while True:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(cfg.read_retry_attempts),
                    wait=wait_exponential_jitter(
                        multiplier=cfg.read_retry_initial_s, max=cfg.read_retry_max_s, jitter=cfg.read_retry_initial_s
                    ),
                    retry=retry_if_exception(self._retryable_read),
                    reraise=True,
                ):
                    with attempt:
                        try:
                            return await self._rest_breaker.call(fn, *args, **kwargs)
                        except Exception as exc:
                            if self._is(exc, "DDoSProtection", "RateLimitExceeded"):
                                self._on_rate_limit(exc, op)
                            raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is(exc, "InvalidNonce") and not resynced:
                    resynced = True
                    try:
                        await self._resync_time(op)
                    except Exception as sync_exc:
                        raise self._unavailable(sync_exc, f"{op}/time_resync") from None
                    continue
                if self._is(exc, "OrderNotFound", "BadSymbol"):
                    raise
                raise self._unavailable(exc, op) from None
            raise VenueUnavailable("ADAPTER_ERROR", f"{op}: retry loop ended without a result")

    # -- Venue: orders ---------------------------------------------------------------------------
    def _check_request(self, ex: Any, req: OrderRequest) -> tuple[float, float | None]:
        if req.symbol not in self._markets:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not listed on {self.name}")
        if not req.size.is_finite() or req.size <= 0:
            raise OrderRejected("INVALID_QUANTITY", f"size {req.size}")
        amount = float(req.size)
        try:
            rounded = Decimal(str(ex.amount_to_precision(req.symbol, amount)))
        except Exception as exc:
            raise OrderRejected("INVALID_QUANTITY", f"size {req.size}: {exc}") from None
        if rounded != req.size:
            raise OrderRejected("PRECISION", f"size {req.size} is not a multiple of the step (would send {rounded})")
        if req.type is OrderType.MARKET:
            if req.price is not None:
                raise OrderRejected("INVALID_PRICE", "market orders take no price")
            return amount, None
        if req.price is None or not req.price.is_finite() or req.price <= 0:
            raise OrderRejected("INVALID_PRICE", f"limit price {req.price}")
        price = float(req.price)
        try:
            rounded_p = Decimal(str(ex.price_to_precision(req.symbol, price)))
        except Exception as exc:
            raise OrderRejected("INVALID_PRICE", f"price {req.price}: {exc}") from None
        if rounded_p != req.price:
            raise OrderRejected("PRECISION", f"price {req.price} is not on the tick (would send {rounded_p})")
        return amount, price

    def _submit_refusal(self, exc: BaseException) -> OrderRejected | None:
        """The OrderRejected for a definite refusal of a submit, None when the outcome is unknown."""
        text = str(exc)
        if self._is(exc, "InvalidOrder") and "duplicate order" in text.lower():
            return None  # an order with our id exists: resolve by query
        table = (
            ("InsufficientFunds", "INSUFFICIENT_FUNDS"),
            ("OrderImmediatelyFillable", "WOULD_TAKE"),
            ("BadSymbol", "UNKNOWN_SYMBOL"),
            ("InvalidOrder", "INVALID_ORDER"),
            ("BadRequest", "BAD_REQUEST"),
            ("AuthenticationError", "AUTHENTICATION"),
            ("MarketClosed", "MARKET_CLOSED"),
            ("OperationRejected", "REJECTED"),
        )
        for name, reason in table:
            if self._is(exc, name):
                return OrderRejected(reason, text[:300])
        return None

    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order with our client order id. Raises OrderRejected or VenueUnavailable."""
        ex = self._require_started()
        amount, price = self._check_request(ex, request)
        coid = request.client_order_id
        self._track_new(coid, request.symbol)
        resynced = False
        while True:
            try:
                raw = await self._order_breaker.call(
                    ex.create_order,
                    request.symbol,
                    request.type.value,
                    request.side.value,
                    amount,
                    price,
                    {"clientOrderId": coid},
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is(exc, "InvalidNonce"):
                    if not resynced:
                        resynced = True
                        try:
                            await self._resync_time("submit")
                        except Exception as sync_exc:
                            raise OrderRejected("CLOCK_SKEW", f"time resync failed: {sync_exc!r}") from None
                        continue
                    raise OrderRejected("CLOCK_SKEW", str(exc)[:300]) from None
                if self._is(exc, "DDoSProtection", "RateLimitExceeded"):
                    self._on_rate_limit(exc, "submit")
                refusal = self._submit_refusal(exc)
                if refusal is not None:
                    self._forget(coid)
                    raise refusal from None
                if isinstance(exc, CircuitOpenError):
                    # Nothing was sent: a definite (local) refusal, not an unknown outcome that
                    # would keep the order in flight until its request could no longer arrive.
                    self._forget(coid)
                    raise OrderRejected("CIRCUIT_OPEN", f"submit {coid}: {exc}") from None
                raise self._unavailable(exc, f"submit {coid}") from None
        try:
            vo = normalize.venue_order(self.name, raw, self._markets, client_order_id=coid)
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where="submit_reply", client_order_id=coid, detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"submit {coid}: {exc}") from None
        self._record(vo)
        trades = raw.get("trades") if isinstance(raw, Mapping) else None
        if isinstance(trades, list):
            for t in trades:
                if isinstance(t, Mapping):
                    self._emit_fill_raw(
                        {
                            **t,
                            "symbol": t.get("symbol") or vo.symbol,
                            "side": t.get("side") or vo.side.value,
                            "order": t.get("order") or vo.venue_order_id,
                            "timestamp": t.get("timestamp") or vo.ts_ms,
                        },
                        coid,
                        "submit_reply",
                    )
        return vo

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel by our client order id. Raises OrderNotFound or VenueUnavailable."""
        ex = self._require_started()
        tracked = self._tracked.get(client_order_id)
        vid = tracked.venue_order_id if tracked is not None and tracked.venue_order_id else None
        resynced = False
        while True:
            try:
                raw = await self._rest_breaker.call(ex.cancel_order, vid, symbol, {"clientOrderId": client_order_id})
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is(exc, "OrderNotFound"):
                    raise OrderNotFound("ORDER_NOT_FOUND", str(exc)[:300]) from None
                if self._is(exc, "InvalidNonce") and not resynced:
                    resynced = True
                    try:
                        await self._resync_time("cancel")
                    except Exception as sync_exc:
                        raise self._unavailable(sync_exc, "cancel/time_resync") from None
                    continue
                if self._is(exc, "DDoSProtection", "RateLimitExceeded"):
                    self._on_rate_limit(exc, "cancel")
                raise self._unavailable(exc, f"cancel {client_order_id}") from None
        try:
            vo = normalize.venue_order(self.name, raw, self._markets, client_order_id=client_order_id)
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where="cancel_reply", client_order_id=client_order_id,
                                  detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"cancel {client_order_id}: {exc}") from None
        self._record(vo)
        return vo

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by our client order id; None if the venue never saw it."""
        vo = await self._fetch_by_client_id(client_order_id, symbol)
        if vo is not None:
            self._record(vo)
        return vo

    async def _fetch_by_client_id(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        ex = self._require_started()
        if symbol not in self._markets:
            return None
        try:
            raw = await self._read(
                f"query {client_order_id}", ex.fetch_order, None, symbol, {"clientOrderId": client_order_id}
            )
        except Exception as exc:
            if self._is(exc, "OrderNotFound", "BadSymbol"):
                return None
            raise
        try:
            vo = normalize.venue_order(self.name, raw, self._markets, client_order_id=client_order_id)
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where="query_reply", client_order_id=client_order_id,
                                  detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"query {client_order_id}: {exc}") from None
        return vo

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders of ``symbol``, or of every configured symbol (all symbols if none configured)."""
        ex = self._require_started()
        targets: Iterable[str | None] = (symbol,) if symbol is not None else (self._symbols or (None,))
        out: list[VenueOrder] = []
        for sym in targets:
            if sym is not None and sym not in self._markets:
                continue
            try:
                raw_list = await self._read(f"open_orders {sym or '*'}", ex.fetch_open_orders, sym)
            except Exception as exc:
                if self._is(exc, "OrderNotFound", "BadSymbol"):
                    raise self._unavailable(exc, "open_orders") from None
                raise
            for raw in raw_list or ():
                try:
                    vo = normalize.venue_order(self.name, raw, self._markets)
                except normalize.Malformed as exc:
                    self._count_malformed(exc.reason, where="open_orders", detail=exc.detail)
                    continue
                out.append(vo)
        return out

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Our executions with ``ts_ms >= since_ms``, oldest first (per configured symbol).

        Binance REST trades carry the venue order id only: our client order id comes from the
        adapter's cache or a ``fetch_order`` by venue id; a fill whose order cannot be
        resolved now is left out and counted (``unresolved_fills``) — the next call finds it.
        """
        self._require_started()
        targets = (symbol,) if symbol is not None else self._fill_symbols()
        out: list[Fill] = []
        for sym in targets:
            if sym not in self._markets:
                continue
            out.extend(await self._fills_of(sym, since_ms))
        out.sort(key=lambda f: (f.ts_ms, f.trade_id))
        return out

    def _fill_symbols(self) -> tuple[str, ...]:
        if self._symbols:
            return self._symbols
        return tuple(dict.fromkeys(t.symbol for t in self._tracked.values()))

    async def _fills_of(self, symbol: str, since_ms: int) -> list[Fill]:
        ex = self._require_started()
        fills: list[Fill] = []
        seen: set[str] = set()
        since = since_ms
        for _ in range(_MY_TRADES_PAGES):
            try:
                page = await self._read(
                    f"fills {symbol}", ex.fetch_my_trades, symbol, since, _MY_TRADES_LIMIT
                )
            except Exception as exc:
                if self._is(exc, "OrderNotFound", "BadSymbol"):
                    raise self._unavailable(exc, "fills_since") from None
                raise
            page = [t for t in (page or ()) if isinstance(t, Mapping)]
            await self._learn_order_ids(symbol, page)
            newest = since
            fresh = 0
            for raw in page:
                ts = raw.get("timestamp")
                if isinstance(ts, int) and ts > newest:
                    newest = ts
                key = f"{symbol}:{raw.get('id')}"
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                if isinstance(ts, int) and ts < since_ms:
                    continue
                f = await self._fill_from_raw(raw, "fills_since")
                if f is not None:
                    fills.append(f)
            if len(page) < _MY_TRADES_LIMIT or fresh == 0 or newest <= since:
                break
            since = newest
        return fills

    async def _learn_order_ids(self, symbol: str, trades: Sequence[Mapping[str, Any]]) -> None:
        """Map many unknown venue order ids to our client ids with one order-list read.

        Binance REST trades carry no client order id: resolving each unknown order with its
        own ``fetch_order`` costs one request per order (after a restart, every order in the
        fills lookback), which grows start-up time and request weight with the account's
        activity. From ``_BULK_RESOLVE_MIN`` unknown orders on, one ``fetch_orders`` (the
        latest orders of the symbol) resolves them; what it misses falls back to single
        queries. A failure here only means those single queries.
        """
        unknown = {normalize.trade_order_id(t) for t in trades if not self._coid_for_trade(t)}
        unknown.discard("")
        if len(unknown) < _BULK_RESOLVE_MIN or not (getattr(self._ex, "has", None) or {}).get("fetchOrders"):
            return
        ex = self._require_started()
        try:
            orders = await self._read(f"orders {symbol}", ex.fetch_orders, symbol, None, _MY_TRADES_LIMIT)
        except Exception as exc:
            self._log.info("ccxt_venue.order_ids_bulk_failed", symbol=symbol, error=repr(exc)[:300])
            return
        for raw in orders or ():
            if isinstance(raw, Mapping):
                self._remember_vid(str(raw.get("id") or ""), normalize.order_client_id(raw))

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset (assets at zero left out)."""
        ex = self._require_started()
        raw = await self._read("balances", ex.fetch_balance)
        try:
            return normalize.balances(raw if isinstance(raw, Mapping) else {})
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where="balances", detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"balances: {exc}") from None

    # -- tracking and emission ------------------------------------------------------------------
    def _track_new(self, coid: str, symbol: str) -> None:
        if coid not in self._tracked:
            self._tracked[coid] = _Tracked(symbol, "", Decimal(0), OrderStatus.SUBMITTED)
            self._trim(self._tracked, _TRACK_MAX)

    def _forget(self, coid: str) -> None:
        tr = self._tracked.get(coid)
        if tr is not None and tr.status is OrderStatus.SUBMITTED and not tr.venue_order_id:
            del self._tracked[coid]

    @staticmethod
    def _trim(d: OrderedDict[Any, None] | OrderedDict[str, Any], limit: int) -> None:
        while len(d) > limit:
            d.popitem(last=False)

    def _remember_vid(self, vid: str, coid: str) -> None:
        if vid and coid:
            self._coid_by_vid[vid] = coid
            self._coid_by_vid.move_to_end(vid)
            self._trim(self._coid_by_vid, _TRACK_MAX)

    def _record(self, vo: VenueOrder, *, count: bool = True) -> bool:
        """Note the venue's view of an order; True if it is news (not stale, not a repeat)."""
        self._remember_vid(vo.venue_order_id, vo.client_order_id)
        tr = self._tracked.get(vo.client_order_id)
        if tr is not None:
            if vo.filled < tr.filled:
                self._stale += count
                return False
            if vo.filled == tr.filled:
                if vo.status is tr.status:
                    self._duplicates += count
                    return False
                if _RANK[vo.status] <= _RANK[tr.status]:
                    self._stale += count
                    return False
            tr.filled = vo.filled
            tr.status = vo.status
            tr.venue_order_id = vo.venue_order_id or tr.venue_order_id
            self._tracked.move_to_end(vo.client_order_id)
            return True
        self._tracked[vo.client_order_id] = _Tracked(vo.symbol, vo.venue_order_id, vo.filled, vo.status)
        self._trim(self._tracked, _TRACK_MAX)
        return True

    def _emit(self, item: VenueUpdate) -> None:
        if not self._streams:
            self._dropped_gone += 1
            return
        for stream in self._streams:
            stream.push(item)

    def _emit_order(self, vo: VenueOrder, *, count: bool = True) -> None:
        if self._record(vo, count=count):
            self._emit(vo)

    def _coid_for_trade(self, raw: Mapping[str, Any]) -> str:
        coid = normalize.trade_client_order_id(raw)
        if coid:
            return coid
        return self._coid_by_vid.get(normalize.trade_order_id(raw), "")

    async def _resolve_coid(self, raw: Mapping[str, Any]) -> str:
        coid = self._coid_for_trade(raw)
        if coid:
            return coid
        vid = normalize.trade_order_id(raw)
        symbol = raw.get("symbol")
        if not vid or not isinstance(symbol, str) or symbol not in self._markets:
            return ""
        ex = self._require_started()
        try:
            order = await self._read(f"order_of_trade {vid}", ex.fetch_order, vid, symbol)
        except Exception as exc:
            if self._is(exc, "OrderNotFound", "BadSymbol"):
                return ""
            raise
        coid = normalize.order_client_id(order) if isinstance(order, Mapping) else ""
        self._remember_vid(vid, coid)
        return coid

    async def _fill_from_raw(self, raw: Mapping[str, Any], where: str) -> Fill | None:
        """Validate a ccxt trade into a Fill (our client order id resolved); None when skipped."""
        coid = await self._resolve_coid(raw)
        if not coid:
            self._unresolved_fills += 1
            self._log.warning("ccxt_venue.fill_unresolved", where=where, trade_id=str(raw.get("id")),
                              order_id=normalize.trade_order_id(raw), symbol=str(raw.get("symbol")))
            return None
        try:
            return normalize.fill(self.name, raw, self._markets, coid)
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where=where, detail=exc.detail, trade_id=str(raw.get("id")))
            return None

    def _emit_fill(self, f: Fill) -> None:
        if f.trade_id in self._seen_fills:
            self._duplicate_fills += 1
            return
        self._seen_fills[f.trade_id] = None
        self._trim(self._seen_fills, _SEEN_FILLS_MAX)
        if f.ts_ms > self._fill_cursor.get(f.symbol, 0):
            self._fill_cursor[f.symbol] = f.ts_ms
        self._emit(f)

    def _emit_fill_raw(self, raw: Mapping[str, Any], coid: str, where: str) -> None:
        try:
            f = normalize.fill(self.name, raw, self._markets, coid)
        except normalize.Malformed as exc:
            self._count_malformed(exc.reason, where=where, detail=exc.detail, client_order_id=coid)
            return
        self._emit_fill(f)

    # -- updates: the user-data engine ----------------------------------------------------------
    def updates(self) -> AsyncIterator[VenueUpdate]:
        """A new subscription to order updates and fills (see the module doc)."""
        stream = UpdateStream(self._cfg.update_buffer, self._unsubscribe)
        if self._closing:
            stream.end()
            return stream
        self._streams.append(stream)
        if self._engine is None or self._engine.done():
            self._engine = asyncio.get_running_loop().create_task(self._run_engine(), name=f"{self.name}.user-data")
        return stream

    def _unsubscribe(self, stream: UpdateStream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)

    @staticmethod
    def _cancelling() -> bool:
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    def _stream_supported(self) -> bool:
        ex = self._ex
        has = getattr(ex, "has", None) or {}
        return bool(has.get("watchOrders")) and bool(has.get("watchMyTrades")) and bool(getattr(ex, "apiKey", ""))

    def _user_ws_clients(self) -> list[Any]:
        ex = self._ex
        url = None
        with contextlib.suppress(Exception):
            url = ex.urls["api"]["ws"]["ws-api"]["spot"]
        if url:
            return ws_clients(ex, lambda u, _c: u == url)

        def user_side(_url: str, client: Any) -> bool:
            keys = list(getattr(client, "subscriptions", None) or {}) + list(getattr(client, "futures", None) or {})
            return any(str(k).startswith(("orders", "myTrades", "balance")) for k in keys)

        return ws_clients(ex, user_side)

    def _session_lost(self, client: Any) -> str:
        """Why the user-data session ended unseen ("" while it holds).

        A socket that closes while no watch is pending (between one resolving and the next
        being armed) fails nobody: ccxt just deregisters the client, and the next ``watch_*``
        re-dials silently. Likewise ccxt drops its subscription record on Binance's
        ``eventStreamTerminated`` and leaves pending watches hanging (spec §5.5); the next
        ``watch_*`` subscribes again silently. Either way executions in between are never
        sent, so the session must end and REST be polled. ``client`` is the session's ws
        client (None: not identifiable; rely on errors and the idle timeout).
        """
        if client is None:
            return ""
        if client not in self._user_ws_clients():
            return "the user-data socket closed between watches"
        if getattr(self._ex, "ensure_user_data_stream_ws_subscribe_signature", None) is not None and (
            "spot" not in (getattr(client, "subscriptions", None) or {})
        ):
            return "the venue ended the user-data subscription"
        return ""

    async def _await_user_ready(self) -> None:
        """Wait until the user-data subscription is confirmed (Binance spot); else return at once."""
        ensure = getattr(self._ex, "ensure_user_data_stream_ws_subscribe_signature", None)
        if ensure is not None:
            await ensure("spot")

    def _arm(self, key: str) -> asyncio.Task[Any]:
        ex = self._ex
        coro = ex.watch_orders() if key == "orders" else ex.watch_my_trades()
        return asyncio.ensure_future(coro)

    async def _run_engine(self) -> None:
        try:
            await self._engine_loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug here must not end updates silently: end the subscribers' streams, so they
            # subscribe again (which starts a new engine) and the reconciler covers the gap.
            self._log.error("ccxt_venue.engine_crashed", error=repr(exc))
            streams, self._streams = self._streams, []
            for stream in streams:
                stream.end()
        finally:
            self._stream_up = False

    async def _engine_loop(self) -> None:
        cfg = self._cfg
        await self._started_evt.wait()
        now = _wall_ms()
        for sym in self._symbols:
            self._fill_cursor.setdefault(sym, now - _FIRST_POLL_LOOKBACK_MS)
        if not self._stream_supported():
            self._log.warning("ccxt_venue.user_stream_unavailable", polling_every_s=cfg.poll_interval_s)
            while True:
                await self._poll_safe("no_stream")
                await asyncio.sleep(cfg.poll_interval_s)
        backoff = Backoff(
            cfg.reconnect_initial_s, cfg.reconnect_max_s, stable_s=cfg.reconnect_stable_s, rng=self._rng,
            clock=self._clock,
        )
        first = True
        while True:
            reason = await self._stream_session(backoff, first)
            first = False
            self._stream_up = False
            self._reconnects["user"] += 1
            await close_ws_clients(self._ex, self._user_ws_clients())
            delay = backoff.next_delay()
            # An idle timeout is routine on a quiet account; anything else is worth a warning.
            log = self._log.info if reason.startswith("stall:") else self._log.warning
            log("ccxt_venue.user_stream_down", reason=reason, redial_in_s=round(delay, 3), attempt=backoff.attempt)
            await self._poll_while_down(delay)

    async def _stream_session(self, backoff: Backoff, first: bool) -> str:
        """One connection of the user-data stream; returns why it ended."""
        cfg = self._cfg
        watches: dict[str, asyncio.Task[Any]] = {}
        wake: asyncio.Task[Any] | None = None
        try:
            watches = {"trades": self._arm("trades"), "orders": self._arm("orders")}
            await asyncio.wait_for(self._await_user_ready(), cfg.dial_timeout_s)
            clients = self._user_ws_clients()
            session_client = clients[0] if len(clients) == 1 else None
            self._stream_up = True
            backoff.connected()
            self._last_msg = self._clock()
            self._log.info("ccxt_venue.user_stream_up", reconnect=not first)
            poll_pending = not await self._poll_safe("connect" if first else "reconnect")
            next_poll = self._clock() + cfg.poll_interval_s
            settle_at: float | None = self._clock()
            while True:
                if self._order_breaker.latched:
                    poll_pending = True
                idle_left = cfg.user_stream_idle_timeout_s - (self._clock() - (self._last_msg or 0.0))
                timeout = max(0.0, idle_left)
                if poll_pending:
                    timeout = min(timeout, max(0.0, next_poll - self._clock()))
                if settle_at is not None:
                    timeout = min(timeout, max(0.0, settle_at - self._clock()))
                if wake is None or wake.done():
                    self._resync_wanted.clear()
                    wake = asyncio.ensure_future(self._resync_wanted.wait())
                done, _ = await asyncio.wait(
                    [*watches.values(), wake], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for key in ("trades", "orders"):
                    task = watches[key]
                    if task in done:
                        result = task.result()  # raises the stream's error
                        self._last_msg = self._clock()
                        if key == "trades":
                            await self._on_trades(result)
                        else:
                            self._on_orders(result)
                        settle_at = self._clock() + _SETTLE_S
                lost = self._session_lost(session_client)
                if lost:
                    # Re-arming a watch now would quietly re-dial or subscribe again, and whatever
                    # happened in between would never be polled: end the session like any drop.
                    raise _StreamTerminated(lost)
                for key in ("trades", "orders"):
                    if watches[key] in done:
                        watches[key] = self._arm(key)
                if wake in done:
                    poll_pending = True
                    next_poll = self._clock()
                if settle_at is not None and not done and self._clock() >= settle_at:
                    settle_at = None
                    await self._drain_caches()
                backoff.reset_if_stable()
                if not done and self._clock() - (self._last_msg or 0.0) >= cfg.user_stream_idle_timeout_s:
                    raise _StreamStalled(f"no user-data message for {cfg.user_stream_idle_timeout_s}s")
                if poll_pending and self._clock() >= next_poll:
                    poll_pending = not await self._poll_safe("retry")
                    next_poll = self._clock() + cfg.poll_interval_s
        except asyncio.CancelledError:
            if self._cancelling():
                raise
            return "client closed"
        except _StreamStalled as exc:
            self._stalls += 1
            return f"stall: {exc}"
        except _StreamTerminated as exc:
            return f"terminated: {exc}"
        except TimeoutError:
            self._stalls += 1
            return f"subscription not confirmed within {cfg.dial_timeout_s}s"
        except KeyError as exc:
            # ccxt's failed-subscribe quirk: the real error is the context (spec §5.2).
            cause = exc.__context__
            if cause is not None and self._is(cause, "InvalidNonce"):
                with contextlib.suppress(Exception):
                    await self._resync_time("user_stream")
            return f"subscription failed: {cause!r}"
        except Exception as exc:
            if self._is(exc, "InvalidNonce"):
                with contextlib.suppress(Exception):
                    await self._resync_time("user_stream")
            return repr(exc)[:300]
        finally:
            pending = [t for t in (*watches.values(), wake) if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                # asyncio.wait neither raises the tasks' errors nor swallows our own cancellation.
                await asyncio.wait(pending)
            for task in watches.values():  # consume results/errors nobody will read
                if task.done() and not task.cancelled():
                    task.exception()

    async def _poll_while_down(self, delay_s: float) -> None:
        """Poll REST now and every ``poll_interval_s`` until ``delay_s`` has passed."""
        deadline = self._clock() + delay_s
        while True:
            await self._poll_safe("stream_down")
            left = deadline - self._clock()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self._cfg.poll_interval_s))
            if self._clock() >= deadline:
                return

    async def _poll_safe(self, why: str) -> bool:
        """One REST poll; True when complete. Errors are logged here and counted."""
        latched_before = self._order_breaker.latched
        try:
            await self._poll(why)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._poll_failures += 1
            self._log.warning("ccxt_venue.poll_failed", why=why, error=repr(exc)[:300])
            return False
        if latched_before and self._order_breaker.latched:
            self.reset_order_breaker("venue state re-read over REST")
        return True

    async def _poll(self, why: str) -> None:
        """Re-read open orders, tracked orders that left the open list, and fills since the last seen."""
        self._polls += 1
        vos = await self.open_orders()
        open_ids = set()
        for vo in vos:
            open_ids.add(vo.client_order_id)
            self._emit_order(vo)
        gone = [
            (coid, tr.symbol)
            for coid, tr in self._tracked.items()
            if _RANK[tr.status] in (1, 2) and coid not in open_ids
        ][:_QUERIES_PER_POLL]
        for coid, symbol in gone:
            found = await self._fetch_by_client_id(coid, symbol)
            if found is not None:
                self._emit_order(found)
        for sym in self._fill_symbols():
            if sym not in self._markets:
                continue
            since = self._fill_cursor.get(sym, _wall_ms() - _FIRST_POLL_LOOKBACK_MS) - _FILL_OVERLAP_MS
            for f in await self._fills_of(sym, since):
                self._emit_fill(f)

    def _known_bad(self, key: tuple[Any, ...]) -> bool:
        """True if this exact structure was already judged malformed (and counted); else remember it."""
        if key in self._malformed_seen:
            return True
        self._malformed_seen[key] = None
        self._trim(self._malformed_seen, _TRACK_MAX)
        return False

    async def _on_trades(self, result: Any, *, where: str = "watch_my_trades") -> None:
        for raw in result or ():
            if not isinstance(raw, Mapping):
                self._count_malformed("not_an_object", where=where, item=repr(raw)[:200])
                continue
            key = ("trade", raw.get("symbol"), raw.get("id"))
            if f"{raw.get('symbol')}:{raw.get('id')}" in self._seen_fills or key in self._malformed_seen:
                if where == "watch_my_trades":
                    self._duplicate_fills += 1
                continue
            try:
                coid = await self._resolve_coid(raw)
            except VenueUnavailable as exc:
                self._unresolved_fills += 1
                self._log.warning("ccxt_venue.fill_unresolved", where=where, error=str(exc))
                continue
            if not coid:
                self._unresolved_fills += 1
                self._log.warning("ccxt_venue.fill_unresolved", where=where, trade_id=str(raw.get("id")),
                                  order_id=normalize.trade_order_id(raw), symbol=str(raw.get("symbol")))
                continue
            try:
                f = normalize.fill(self.name, raw, self._markets, coid)
            except normalize.Malformed as exc:
                if not self._known_bad(key):
                    self._count_malformed(exc.reason, where=where, detail=exc.detail, trade=_excerpt(raw))
                continue
            self._emit_fill(f)

    def _on_orders(self, result: Any, *, where: str = "watch_orders") -> None:
        count = where == "watch_orders"
        for raw in result or ():
            if not isinstance(raw, Mapping):
                self._count_malformed("not_an_object", where=where, item=repr(raw)[:200])
                continue
            try:
                vo = normalize.venue_order(self.name, raw, self._markets)
            except normalize.Malformed as exc:
                key = ("order", raw.get("symbol"), raw.get("id"), raw.get("status"), raw.get("filled"),
                       raw.get("amount"))
                if not self._known_bad(key):
                    self._count_malformed(exc.reason, where=where, detail=exc.detail, report=_excerpt(raw))
                continue
            self._emit_order(vo, count=count)

    async def _drain_caches(self) -> None:
        """Hand out what ccxt cached while no watch was pending (see the module doc)."""
        ex = self._ex
        trades = getattr(ex, "myTrades", None)
        orders = getattr(ex, "orders", None)
        if trades:
            await self._on_trades(_tail(trades, _DRAIN_TAIL), where="cache")
        if orders:
            self._on_orders(_tail(orders, _DRAIN_TAIL), where="cache")


def _tail(cache: Any, n: int) -> list[Any]:
    """The last ``n`` items of a ccxt cache (oldest first)."""
    out: list[Any] = []
    with contextlib.suppress(Exception):
        for item in reversed(cache):
            out.append(item)
            if len(out) >= n:
                break
    out.reverse()
    return out


def _excerpt(raw: Mapping[str, Any]) -> str:
    info = raw.get("info")
    return repr(info if info is not None else raw)[:300]

"""A ``MarketDataSource`` over ccxt.pro websockets: trades, top of book, optionally the book.

Streams (one pump task each, per symbol): ``watch_trades`` → :class:`Trade`;
``watch_bids_asks`` (bookTicker) or ``watch_ticker(name="ticker")`` → :class:`Quote`;
optionally ``watch_order_book`` → :class:`BookSnapshot` of the top ``order_book_depth``
levels. ``recv_ns`` (``actors.kernel.clock.perf_ns``) is stamped when ccxt hands the data
over; an item without a usable exchange timestamp gets the injected business clock's now.

Resilience (a websocket must never stay silently dead):
- every ``watch_*`` is bounded by ``stream_idle_timeout_s``: a silent stall (socket up, pongs
  flowing, no data) is detected, the stream's ws client is closed and re-dialled;
- a socket error (close frame, abort, keepalive timeout, refused dial) → close, then
  re-dial and resubscribe after an exponential backoff with jitter (``reconnect_initial_s``
  doubling up to ``reconnect_max_s``), reset once a stream was up ``reconnect_stable_s``;
- a depth gap (ccxt ``ChecksumError``) → ``watch_order_book`` again (a fresh REST snapshot);
  a crossed or non-advancing book is never published: the stale book is dropped from
  ccxt's cache and the stream re-dialled; a subscribe error backs off like a drop (no hot
  retry loop);
- malformed items (missing or impossible prices/sizes, unknown sides, crossed quotes) and
  frames ccxt cannot parse are logged (first ones per reason, then every 1000th), counted
  and skipped.
Reconnects, stalls and resyncs are counted per stream (``stats()``; reconnects also by
``connection_health()``, ``actors.ports.capabilities.ReportsConnectionHealth``).

Events are buffered in one bounded queue (drop-oldest, counted): ``events()`` is resumable
— a new iteration continues with what arrived since.

Note (ccxt.pro): a message that lands while no ``watch_*`` of its stream is pending stays
in ccxt's cache and is handed out with the next message; on a live stream that is the
next print or book update.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from actors.kernel import clock as kernel_clock
from actors.kernel.clock import Clock, WallClock, perf_ns
from actors.model.market import BookSnapshot, MarketEvent, Quote, Trade
from actors.ports.capabilities import ConnectionHealth
from actors.ports.market_data import SourceStats
from adapters.ccxt_venue.backoff import reconnect_backoff
from adapters.ccxt_venue.client import close_ws_clients, subscribed_to, ws_clients
from adapters.ccxt_venue.shared import (
    CcxtErrors,
    MalformedCounter,
    current_task_cancelling,
    epoch_ms_or_now,
    open_exchange,
    release_exchange,
)
from config.schema.trading import CcxtVenueSection

_SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


class CcxtSourceStats(SourceStats, frozen=True, kw_only=True):
    """``SourceStats`` plus the stream health the feed's metrics need.

    ``reconnects``/``stalls``/``resyncs``/``last_message_age_s`` are keyed by stream
    (``trades:BTC/USDT``, ``quotes:BTC/USDT``, ``book:BTC/USDT``).
    """

    books: int = 0
    dropped: int = 0
    malformed: int = 0
    malformed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    reconnects: dict[str, int] = msgspec.field(default_factory=dict)
    stalls: dict[str, int] = msgspec.field(default_factory=dict)
    resyncs: dict[str, int] = msgspec.field(default_factory=dict)
    connected: dict[str, bool] = msgspec.field(default_factory=dict)
    last_message_age_s: dict[str, float | None] = msgspec.field(default_factory=dict)


class _Malformed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class _Stalled(Exception):
    """No data within the idle timeout."""


class _BrokenBook(Exception):
    """The book ccxt holds cannot be published (crossed, empty, or not advancing)."""


@dataclass(slots=True)
class _Stream:
    """One subscription's state."""

    kind: str
    symbol: str
    key: str
    reconnects: int = 0
    stalls: int = 0
    resyncs: int = 0
    connected: bool = False
    last_msg: float | None = None
    last_trade_id: int = -1
    last_seq: int = -1
    task: asyncio.Task[None] | None = field(default=None, repr=False)


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it is done, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: nobody else will


def _num(value: Any, what: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed("missing_field" if value is None else "bad_number", f"{what}={value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise _Malformed("impossible_value", f"{what}={value!r}")
    return x


class CcxtMarketSource:
    """Live market data for ``symbols`` (unified, e.g. ``BTC/USDT``) from ccxt.pro.

    ``config`` is the ``venue.ccxt`` section (exchange, timeouts, which streams). ``exchange``:
    an already built ccxt.pro instance to share (not closed by :meth:`close`); by default one
    is built at the first :meth:`events` call. ``buffer`` bounds the event queue. ``clock``
    is business time (the timestamp of an item the exchange did not stamp); ``monotonic``
    is monotonic seconds (idle timeouts, backoff, message ages); ``rng`` seeds the jitter.
    """

    def __init__(
        self,
        config: CcxtVenueSection,
        symbols: Sequence[str],
        *,
        name: str = "ccxt",
        exchange: Any | None = None,
        environ: Mapping[str, str] | None = None,
        buffer: int = 100_000,
        clock: Clock = WallClock(),
        monotonic: Callable[[], float] = kernel_clock.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("CcxtMarketSource needs at least one symbol")
        self.name = name
        self.symbols = tuple(dict.fromkeys(symbols))
        self._cfg = config
        self._ex: Any = exchange
        self._owns_exchange = exchange is None
        self._environ = environ
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._log: Any = structlog.get_logger("aaiti").bind(component="ccxt_source", source=name)
        self._queue: deque[MarketEvent] = deque()
        self._capacity = buffer
        self._wakeup = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._errors = CcxtErrors()
        self._streams: dict[str, _Stream] = {}
        for sym in self.symbols:
            kinds = []
            if config.trades:
                kinds.append("trades")
            if config.quotes != "none":
                kinds.append("quotes")
            if config.order_book:
                kinds.append("book")
            for kind in kinds:
                key = f"{kind}:{sym}"
                self._streams[key] = _Stream(kind, sym, key)
        if not self._streams:
            raise ValueError("no market stream enabled (venue.ccxt.trades / quotes / order_book)")
        self._events = self._trades = self._quotes = self._books = 0
        self._dropped = 0
        self._malformed = MalformedCounter(self._log, "ccxt_source.malformed")

    # -- MarketDataSource ----------------------------------------------------------------------
    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield live events until :meth:`close`. Resumable."""
        await self._ensure_running()
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._queue.popleft()
            self._events += 1
            kind = type(event)
            if kind is Trade:
                self._trades += 1
            elif kind is Quote:
                self._quotes += 1
            elif kind is BookSnapshot:
                self._books += 1
            yield event

    def connection_health(self) -> ConnectionHealth:
        """Reconnects per stream (``ReportsConnectionHealth``); this source has no breakers."""
        return ConnectionHealth(reconnects={s.key: s.reconnects for s in self._streams.values()})

    def stats(self) -> CcxtSourceStats:
        """Current counters."""
        now = self._monotonic()
        streams = self._streams.values()
        return CcxtSourceStats(
            name=self.name,
            events=self._events,
            trades=self._trades,
            quotes=self._quotes,
            books=self._books,
            gaps=sum(s.resyncs for s in streams),
            ended=self._closed,
            dropped=self._dropped,
            malformed=self._malformed.total,
            malformed_by_reason=dict(self._malformed.by_reason),
            reconnects={s.key: s.reconnects for s in streams},
            stalls={s.key: s.stalls for s in streams},
            resyncs={s.key: s.resyncs for s in streams},
            connected={s.key: s.connected for s in streams},
            last_message_age_s={
                s.key: (None if s.last_msg is None else max(0.0, now - s.last_msg)) for s in streams
            },
        )

    async def close(self) -> None:
        """Stop the streams and close the exchange if it was built here. Idempotent."""
        self._closed = True
        tasks = [s.task for s in self._streams.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for s in self._streams.values():
            s.task = None
            s.connected = False
        if self._ex is not None:
            # A shared exchange lives on: release only our market-data sockets.
            ours = [subscribed_to(self._key_parts(stream)) for stream in self._streams.values()]
            await release_exchange(self._ex, owned=self._owns_exchange, ours=ours)
            if self._owns_exchange:
                self._ex = None
        self._wakeup.set()

    @property
    def exchange(self) -> Any:
        """The underlying ccxt.pro instance (None before the first ``events()``)."""
        return self._ex

    # -- start-up --------------------------------------------------------------------------------
    async def _ensure_running(self) -> None:
        async with self._start_lock:
            if self._started or self._closed:
                return
            self._errors.load()
            self._ex, self._owns_exchange = open_exchange(
                self._cfg, self._ex, environ=self._environ, on_malformed=self._malformed.on_undecodable_frame
            )
            await self._load_markets()
            unknown = [s for s in self.symbols if s not in (self._ex.markets or {})]
            if unknown:
                self._log.error("ccxt_source.unknown_symbols", symbols=unknown)
            loop = asyncio.get_running_loop()
            for stream in self._streams.values():
                if stream.symbol in unknown:
                    continue
                stream.task = loop.create_task(self._pump(stream), name=f"{self.name}.{stream.key}")
            self._started = True
            self._log.info("ccxt_source.started", exchange=self._cfg.exchange_id, streams=list(self._streams))

    async def _load_markets(self) -> None:
        backoff = reconnect_backoff(self._cfg, rng=self._rng, clock=self._monotonic)
        while True:
            try:
                await self._ex.load_markets()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._errors.is_a(exc, "NetworkError"):
                    raise
                delay = backoff.next_delay()
                self._log.warning("ccxt_source.load_markets_failed", error=repr(exc)[:300], retry_in_s=delay)
                await asyncio.sleep(delay)

    # -- helpers -------------------------------------------------------------------------------
    def _publish(self, event: MarketEvent) -> None:
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def _timestamp(self, raw: Mapping[str, Any]) -> int:
        """The item's exchange timestamp, or the business clock's now when it has none."""
        return epoch_ms_or_now(raw.get("timestamp"), self._clock)

    def _key_parts(self, stream: _Stream) -> tuple[str, ...]:
        if stream.kind == "trades":
            return ("trade:", stream.symbol)
        if stream.kind == "book":
            return ("orderbook:", stream.symbol)
        if self._cfg.quotes == "bids_asks":
            return ("bidask:", stream.symbol)
        return ("ticker:", stream.symbol)

    async def _redial(self, stream: _Stream) -> None:
        """Close the stream's ws client: the next watch re-dials and resubscribes."""
        ex = self._ex
        if stream.kind == "book":
            # A book surviving in ccxt's cache would take deltas that beat the new subscription's
            # acknowledgement, on top of a stale snapshot.
            books = getattr(ex, "orderbooks", None)
            if isinstance(books, dict):
                books.pop(stream.symbol, None)
            stream.last_seq = -1
        clients = ws_clients(ex, subscribed_to(self._key_parts(stream)))
        await close_ws_clients(ex, clients)

    def _watch(self, stream: _Stream) -> Any:
        ex = self._ex
        if stream.kind == "trades":
            return ex.watch_trades(stream.symbol)
        if stream.kind == "book":
            depth = self._cfg.order_book_depth
            limit = next((n for n in _SNAPSHOT_LIMITS if n >= max(depth, 100)), 1000)
            return ex.watch_order_book(stream.symbol, limit)
        if self._cfg.quotes == "bids_asks":
            return ex.watch_bids_asks([stream.symbol])
        return ex.watch_ticker(stream.symbol, {"name": "ticker"})

    # -- pumps -----------------------------------------------------------------------------------
    async def _pump(self, stream: _Stream) -> None:
        cfg = self._cfg
        backoff = reconnect_backoff(cfg, rng=self._rng, clock=self._monotonic)
        idle = cfg.stream_idle_timeout_s
        while True:
            task = asyncio.ensure_future(self._watch(stream))
            try:
                done, _ = await asyncio.wait({task}, timeout=idle)
                if not done:
                    raise _Stalled(f"no data for {idle}s")
                result = task.result()
                recv_ns = perf_ns()
                stream.last_msg = self._monotonic()
                if not stream.connected:
                    stream.connected = True
                    if stream.reconnects or stream.resyncs:
                        self._log.info("ccxt_source.stream_up", stream=stream.key)
                backoff.connected()
                backoff.reset_if_stable()
                self._handle(stream, result, recv_ns)
                continue
            except asyncio.CancelledError:
                if current_task_cancelling():
                    task.cancel()
                    if task.done() and not task.cancelled():
                        task.exception()
                    raise
                error: BaseException = ConnectionResetError("ws client closed")
                action = "redial"
            except _Stalled as exc:
                await _cancel_and_wait(task)
                stream.stalls += 1
                error, action = exc, "redial"
            except _BrokenBook as exc:
                stream.resyncs += 1
                error, action = exc, "redial"
            except Exception as exc:
                error = exc
                if self._errors.is_a(exc, "ChecksumError"):
                    stream.resyncs += 1
                    action = "resync"
                else:
                    action = "redial"
            stream.connected = False
            if action == "resync":
                # ccxt dropped the book and its subscription; the next watch sends a fresh
                # SUBSCRIBE and takes a new snapshot. Only back off if it keeps happening.
                stream.last_seq = -1
                self._log.warning("ccxt_source.book_resync", stream=stream.key, error=repr(error)[:200])
                if stream.resyncs % 3 == 0:
                    await asyncio.sleep(backoff.next_delay())
                continue
            stream.reconnects += 1
            await self._redial(stream)
            delay = backoff.next_delay()
            level = "error" if self._errors.is_a(error, "ExchangeError") else "warning"
            getattr(self._log, level)(
                "ccxt_source.stream_down", stream=stream.key, error=repr(error)[:300], redial_in_s=round(delay, 3),
                attempt=backoff.attempt,
            )
            await asyncio.sleep(delay)

    def _handle(self, stream: _Stream, result: Any, recv_ns: int) -> None:
        if stream.kind == "trades":
            for raw in result or ():
                try:
                    trade = self._trade(stream, raw, recv_ns)
                except _Malformed as exc:
                    self._malformed.count(exc.reason, stream=stream.key, detail=exc.detail)
                    continue
                if trade is not None:
                    self._publish(trade)
        elif stream.kind == "quotes":
            tickers: list[Any]
            if self._cfg.quotes == "bids_asks" and isinstance(result, Mapping) and "bid" not in result:
                tickers = [v for k, v in result.items() if k == stream.symbol]
            else:
                tickers = [result]
            for raw in tickers:
                try:
                    self._publish(self._quote(stream, raw, recv_ns))
                except _Malformed as exc:
                    self._malformed.count(exc.reason, stream=stream.key, detail=exc.detail)
        else:
            book = self._book(stream, result, recv_ns)
            if book is not None:
                self._publish(book)

    def _trade(self, stream: _Stream, raw: Any, recv_ns: int) -> Trade | None:
        if not isinstance(raw, Mapping):
            raise _Malformed("not_an_object", type(raw).__name__)
        if raw.get("symbol") not in (None, stream.symbol):
            raise _Malformed("unknown_symbol", repr(raw.get("symbol")))
        side = raw.get("side")
        if side not in ("buy", "sell"):
            raise _Malformed("bad_side", repr(side))
        price = _num(raw.get("price"), "price")
        size = _num(raw.get("amount"), "amount")
        tid_raw = raw.get("id")
        tid = int(tid_raw) if isinstance(tid_raw, str) and tid_raw.isdigit() else 0
        if tid:
            if tid <= stream.last_trade_id:
                return None  # already handed out (cache replay after a reconnect)
            stream.last_trade_id = tid
        return Trade(
            symbol=stream.symbol, ts_ms=self._timestamp(raw), recv_ns=recv_ns, price=price, size=size,
            side=side, trade_id=tid,
        )

    def _quote(self, stream: _Stream, raw: Any, recv_ns: int) -> Quote:
        if not isinstance(raw, Mapping):
            raise _Malformed("not_an_object", type(raw).__name__)
        bid = _num(raw.get("bid"), "bid")
        ask = _num(raw.get("ask"), "ask")
        if bid > ask:
            raise _Malformed("crossed_quote", f"bid {bid} > ask {ask}")
        bid_size = _num(raw.get("bidVolume") or 0.0, "bidVolume", positive=False)
        ask_size = _num(raw.get("askVolume") or 0.0, "askVolume", positive=False)
        return Quote(
            symbol=stream.symbol, ts_ms=self._timestamp(raw), recv_ns=recv_ns, bid=bid, ask=ask,
            bid_size=bid_size, ask_size=ask_size,
        )

    def _book(self, stream: _Stream, raw: Any, recv_ns: int) -> BookSnapshot | None:
        if not isinstance(raw, Mapping):
            self._malformed.count("not_an_object", stream=stream.key, detail=type(raw).__name__)
            return None
        nonce = raw.get("nonce")
        seq = nonce if isinstance(nonce, int) and not isinstance(nonce, bool) else 0
        if seq and seq <= stream.last_seq:
            return None  # nothing new since the last publication
        depth = self._cfg.order_book_depth
        try:
            bids = tuple((_num(p, "bid price"), _num(q, "bid size")) for p, q, *_ in (raw.get("bids") or ())[:depth])
            asks = tuple((_num(p, "ask price"), _num(q, "ask size")) for p, q, *_ in (raw.get("asks") or ())[:depth])
        except (_Malformed, TypeError, ValueError) as exc:
            raise _BrokenBook(f"bad level: {exc}") from None
        if not bids and not asks:
            return None
        if bids and asks and bids[0][0] >= asks[0][0]:
            raise _BrokenBook(f"crossed book: bid {bids[0][0]} >= ask {asks[0][0]} at {seq}")
        if any(bids[i][0] <= bids[i + 1][0] for i in range(len(bids) - 1)) or any(
            asks[i][0] >= asks[i + 1][0] for i in range(len(asks) - 1)
        ):
            raise _BrokenBook("levels out of order")
        stream.last_seq = seq
        return BookSnapshot(
            symbol=stream.symbol, ts_ms=self._timestamp(raw), recv_ns=recv_ns, seq=seq, bids=bids, asks=asks
        )

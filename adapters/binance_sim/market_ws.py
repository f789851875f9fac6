"""Market-data websocket (``/stream/ws/{n}``): SUBSCRIBE/UNSUBSCRIBE and the public streams.

Binance semantics kept here (§4 of the spec): every connection starts without streams
(the ``/{n}`` label is ignored); acks echo the request ``id`` and go out before the first
event of the stream; a repeated SUBSCRIBE is acked again without doubling the feed; depth
deltas carry one contiguous update-id sequence per symbol, shared with REST ``/depth``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from adapters.binance_sim import payloads
from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig
from adapters.binance_sim.exchange import SimExchange, SymbolState, UserEvent
from adapters.binance_sim.faults import FaultPlan
from adapters.binance_sim.market_data import TIMEFRAMES_MS, PublicTrade
from adapters.binance_sim.requestlog import LoggedRequest, RequestLog
from adapters.binance_sim.ws_conn import ChangeSignal, WsConnection, accept

_DEPTH_FAST_S = 0.1
_SLOW_EVERY = 10  # the 1000 ms depth cadence, in fast ticks
_SIMPLE_KINDS = ("trade", "aggTrade", "bookTicker", "miniTicker", "ticker")
_GLOBAL_STREAMS = ("!miniTicker@arr", "!ticker@arr")


def dumps(obj: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(obj).decode()


@dataclass(frozen=True, slots=True)
class Stream:
    """A parsed stream name: ``symbol`` is the upper-case id (None for ``!…@arr``)."""

    name: str
    symbol: str | None
    kind: str
    arg: str = ""


def parse_stream(name: str, symbols: Iterable[str]) -> Stream | None:
    """Parse ``btcusdt@depth@100ms``-style names; ``None`` for anything not served."""
    if name in _GLOBAL_STREAMS:
        return Stream(name, None, name[1:].split("@")[0])
    sym, _, rest = name.partition("@")
    upper = sym.upper()
    if not rest or sym != sym.lower() or upper not in symbols:
        return None
    if rest in _SIMPLE_KINDS:
        return Stream(name, upper, rest)
    if rest in ("depth", "depth@1000ms"):
        return Stream(name, upper, "depth", "1000ms")
    if rest == "depth@100ms":
        return Stream(name, upper, "depth", "100ms")
    if rest.startswith("kline_") and rest[len("kline_") :] in TIMEFRAMES_MS:
        return Stream(name, upper, "kline", rest[len("kline_") :])
    return None


@dataclass(eq=False)
class MarketConn:
    """A market-data connection and its streams."""

    conn: WsConnection
    streams: set[str] = field(default_factory=set)
    late_acks: list[tuple[str, Any]] = field(default_factory=list)


class MarketStreamHub:
    """All market-data connections; fans venue events out to the subscribed ones."""

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
        self._conns: dict[WsConnection, MarketConn] = {}
        self._subs: dict[str, set[MarketConn]] = {}
        self._parsed: dict[str, Stream] = {}
        self._lower = {s: s.lower() for s in exchange.symbols}
        self._last_top: dict[str, object] = {}
        self._kline_open: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._changed = ChangeSignal()
        exchange.add_listener(self)

    # ------------------------------------------------------------ introspection
    @property
    def connections(self) -> list[WsConnection]:
        """Live market-data connections."""
        return list(self._conns)

    def subscribers(self, stream: str) -> int:
        """How many connections currently subscribe ``stream``."""
        return len(self._subs.get(stream, ()))

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds; re-checked on every (un)subscribe and disconnect."""
        await self._changed.wait_for(predicate, timeout_s)

    def _notify(self) -> None:
        self._changed.notify()

    # ------------------------------------------------------------ connection handling
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``/stream/ws[/{label}]`` and ``/ws[/{label}]``."""
        conn = await accept(
            request,
            self._faults.take_handshake_rejection(request.path),
            conn_id=next(self._ids),
            max_queue=self._config.ws_queue_max,
            opened_ms=self._clock.now_ms(),
        )
        if not isinstance(conn, WsConnection):
            return conn
        mconn = MarketConn(conn)
        self._conns[conn] = mconn
        label = request.match_info.get("label", "")
        if "@" in label:  # raw-stream URL form /ws/<stream>[/<stream>…]: subscribed from the start
            self._subscribe(mconn, label.split("/"))
        self._notify()
        try:
            await conn.run(self._on_text)
        finally:
            self._remove(mconn)
        return conn.ws

    def _remove(self, mconn: MarketConn) -> None:
        self._conns.pop(mconn.conn, None)
        for name in mconn.streams:
            subs = self._subs.get(name)
            if subs is not None:
                subs.discard(mconn)
                if not subs:
                    del self._subs[name]
        mconn.streams.clear()
        self._notify()

    def _on_text(self, conn: WsConnection, text: str) -> None:
        self._log.append(LoggedRequest("WS", conn.path, "", text, time_ms=self._clock.now_ms()))
        mconn = self._conns.get(conn)
        if mconn is None:
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send(dumps({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1"}, "id": None}))
            return
        if not isinstance(msg, dict):
            conn.send(dumps({"error": {"code": 3, "msg": "Invalid JSON: expected object"}, "id": None}))
            return
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                conn.send(dumps({"error": {"code": 1, "msg": "Invalid value type: expected Array"}, "id": req_id}))
                return
            bad = [p for p in params if self._parse(p) is None]
            if bad:
                msg_text = f"Invalid request: invalid stream {bad[0]}"
                conn.send(dumps({"error": {"code": 2, "msg": msg_text}, "id": req_id}))
                return
            if method == "UNSUBSCRIBE":
                self._unsubscribe(mconn, params)
                conn.send(dumps({"result": None, "id": req_id}))
                return
            fault = self._faults.take_subscribe_fault(params)
            if fault is not None and fault.kind == "error":
                conn.send(dumps({"error": {"code": fault.code, "msg": fault.msg}, "id": req_id}))
                return
            if fault is not None and fault.kind == "late_ack":
                mconn.late_acks.extend((p, req_id) for p in params)
            elif fault is None:
                conn.send(dumps({"result": None, "id": req_id}))
            self._subscribe(mconn, params)
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send(dumps({"result": sorted(mconn.streams), "id": req_id}))
        elif method == "SET_PROPERTY":
            conn.send(dumps({"result": None, "id": req_id}))
        elif method == "GET_PROPERTY":
            conn.send(dumps({"result": False, "id": req_id}))
        else:
            conn.send(dumps({"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": req_id}))

    def _parse(self, name: str) -> Stream | None:
        parsed = self._parsed.get(name)
        if parsed is None:
            parsed = parse_stream(name, self._exchange.symbols)
            if parsed is not None:
                self._parsed[name] = parsed
        return parsed

    def _subscribe(self, mconn: MarketConn, names: list[str]) -> None:
        for name in names:
            stream = self._parse(name)
            if stream is None:
                continue
            mconn.streams.add(name)
            self._subs.setdefault(name, set()).add(mconn)
            # Binance only pushes bookTicker on change; an immediate snapshot keeps a quiet
            # (static) market observable without changing what a live one looks like.
            if stream.kind == "bookTicker" and stream.symbol is not None:
                book = self._exchange.symbols[stream.symbol].book
                top = payloads.ws_book_ticker(stream.symbol, book.update_id, book.best_bid(), book.best_ask())
                mconn.conn.send(dumps(top))
        self._notify()

    def _unsubscribe(self, mconn: MarketConn, names: list[str]) -> None:
        for name in names:
            mconn.streams.discard(name)
            subs = self._subs.get(name)
            if subs is not None:
                subs.discard(mconn)
                if not subs:
                    del self._subs[name]
        self._notify()

    def _send(self, subs: Iterable[MarketConn], text: str) -> None:
        for mconn in subs:
            mconn.conn.send(text)

    # ------------------------------------------------------------ venue events
    def on_public_trade(self, symbol: str, trade: PublicTrade) -> None:
        """Push ``@trade`` / ``@aggTrade`` events."""
        lower = self._lower[symbol]
        subs = self._subs.get(lower + "@trade")
        if subs:
            self._send(subs, dumps(payloads.ws_trade(symbol, trade, self._clock.now_ms())))
        subs = self._subs.get(lower + "@aggTrade")
        if subs:
            self._send(subs, dumps(payloads.ws_agg_trade(symbol, trade, self._clock.now_ms())))

    def on_book_changed(self, symbol: str) -> None:
        """Push ``@bookTicker`` when the top of book changed."""
        subs = self._subs.get(self._lower[symbol] + "@bookTicker")
        if not subs:
            return
        book = self._exchange.symbols[symbol].book
        bid, ask = book.best_bid(), book.best_ask()
        top = (bid, ask)
        if self._last_top.get(symbol) == top:
            return
        self._last_top[symbol] = top
        self._send(subs, dumps(payloads.ws_book_ticker(symbol, book.update_id, bid, ask)))

    def on_user_events(self, events: list[UserEvent]) -> None:
        """User data does not go to market streams."""

    # ------------------------------------------------------------ periodic streams
    async def run(self) -> None:
        """Depth, ticker and kline publishing loops (until cancelled)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._depth_loop())
            tg.create_task(self._periodic(self._config.ticker_interval_ms / 1000, self._publish_tickers))
            tg.create_task(self._periodic(self._config.kline_interval_ms / 1000, self._publish_klines))

    @staticmethod
    async def _periodic(interval_s: float, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            fn()

    async def _depth_loop(self) -> None:
        for tick in itertools.count(1):
            await asyncio.sleep(_DEPTH_FAST_S)
            for symbol, st in self._exchange.symbols.items():
                self._flush_depth(symbol, st, "100ms")
                if tick % _SLOW_EVERY == 0:
                    self._flush_depth(symbol, st, "1000ms")

    def flush_depth_now(self) -> None:
        """Publish pending depth changes of every symbol and cadence immediately."""
        for symbol, st in self._exchange.symbols.items():
            self._flush_depth(symbol, st, "100ms")
            self._flush_depth(symbol, st, "1000ms")

    def _flush_depth(self, symbol: str, st: SymbolState, cadence: str) -> None:
        # Drain even without subscribers, so every cadence stays in step with the book.
        delta = st.book.drain(cadence)
        if delta is None:
            return
        lower = self._lower[symbol]
        names = (lower + "@depth@100ms",) if cadence == "100ms" else (lower + "@depth", lower + "@depth@1000ms")
        subs = [m for n in names for m in self._subs.get(n, ())]
        if not subs:
            return
        if self._faults.take_depth_gap(symbol):
            return
        text = dumps(payloads.ws_depth_update(symbol, delta, self._clock.now_ms()))
        duplicate = self._faults.take_depth_duplicate(symbol)
        for mconn in subs:
            mconn.conn.send(text)
            if duplicate:
                mconn.conn.send(text)
            if mconn.late_acks:
                self._release_late_acks(mconn, names)

    @staticmethod
    def _release_late_acks(mconn: MarketConn, names: tuple[str, ...]) -> None:
        keep: list[tuple[str, Any]] = []
        sent: set[str] = set()
        for stream, req_id in mconn.late_acks:
            if stream in names:
                key = dumps(req_id)
                if key not in sent:
                    sent.add(key)
                    mconn.conn.send(dumps({"result": None, "id": req_id}))
            else:
                keep.append((stream, req_id))
        mconn.late_acks = keep

    def _publish_tickers(self) -> None:
        now = self._clock.now_ms()
        arr_mini = self._subs.get("!miniTicker@arr")
        arr_full = self._subs.get("!ticker@arr")
        minis: list[dict[str, Any]] = []
        fulls: list[dict[str, Any]] = []
        for symbol, st in self._exchange.symbols.items():
            lower = self._lower[symbol]
            mini_subs = self._subs.get(lower + "@miniTicker")
            full_subs = self._subs.get(lower + "@ticker")
            if not (mini_subs or full_subs or arr_mini or arr_full):
                continue
            stats = st.stats.rolling_24h(now)
            if mini_subs or arr_mini:
                mini = payloads.ws_mini_ticker(symbol, stats, now)
                minis.append(mini)
                if mini_subs:
                    self._send(mini_subs, dumps(mini))
            if full_subs or arr_full:
                full = payloads.ws_ticker(symbol, stats, st.book.best_bid(), st.book.best_ask(), now)
                fulls.append(full)
                if full_subs:
                    self._send(full_subs, dumps(full))
        if arr_mini and minis:
            self._send(arr_mini, dumps(minis))
        if arr_full and fulls:
            self._send(arr_full, dumps(fulls))

    def _publish_klines(self) -> None:
        now = self._clock.now_ms()
        for name, subs in list(self._subs.items()):
            stream = self._parsed.get(name)
            if stream is None or stream.kind != "kline" or stream.symbol is None or not subs:
                continue
            stats = self._exchange.symbols[stream.symbol].stats
            candle = stats.current_candle(stream.arg, now)
            last_open = self._kline_open.get(name)
            if last_open is not None and last_open != candle.open_time:
                closed = stats.candle_at(stream.arg, last_open)
                if closed is not None:
                    self._send(subs, dumps(payloads.ws_kline(stream.symbol, stream.arg, closed, True, now)))
            self._kline_open[name] = candle.open_time
            self._send(subs, dumps(payloads.ws_kline(stream.symbol, stream.arg, candle, False, now)))

    # ------------------------------------------------------------ fault actions
    def _select(self, stream_contains: str | None) -> list[MarketConn]:
        return [
            m for m in self._conns.values() if stream_contains is None or any(stream_contains in s for s in m.streams)
        ]

    async def drop(self, *, code: int | None = 1001, stream_contains: str | None = None) -> int:
        """Close matching connections with ``code`` (``None``: abort the TCP connection → 1006)."""
        targets = self._select(stream_contains)
        if code is None:
            for m in targets:
                m.conn.abort()
        else:
            await asyncio.gather(*(m.conn.close(code, "going away") for m in targets))
        return len(targets)

    def stall(self, *, stream_contains: str | None = None, blackhole: bool = False) -> int:
        """Stop sending on matching connections (``blackhole``: also stop answering pings)."""
        targets = self._select(stream_contains)
        for m in targets:
            m.conn.stalled = True
            m.conn.blackhole = blackhole
        return len(targets)
